"""Where a connector may point (issue 14, items 1-3): the target policy, at validation and at connect.

A refused target must get no packet: a real listening socket on loopback counts the connections it
accepts while the connectors are told to reach it. Host names are resolved through a resolver handed
to the policy (a collaborator, like the rate limiter), so a name can resolve to a metadata address
without DNS on this machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import Runtime, build, registry
from connectors.auth.oauth2 import OAuth2Config, authorization_request, fetch_client_credentials
from connectors.errors import Category, ConfigError, ConnectorError
from connectors.policy import SQLITE_REFUSAL, TargetPolicy, TargetRule
from connectors.retry import RetryPolicy

ALWAYS_REFUSED = [
    "169.254.169.254",  # cloud metadata
    "169.254.1.1",  # link-local
    "fe80::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "0.0.0.0",
    "::",
    "224.0.0.1",  # multicast
    "ff02::1",
    "255.255.255.255",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::169.254.169.254",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
]


class CountingServer:
    """A TCP listener on loopback that counts the connections it accepts (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def runtime(policy: TargetPolicy) -> Runtime:
    return Runtime(key="policy-test", retry=RetryPolicy(max_retries=0), policy=policy)


STRICT = TargetPolicy()  # the default: no loopback, no SQLite file


# ---------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_always_refused_addresses_cannot_be_opened_by_any_setting(address: str) -> None:
    wide_open = TargetPolicy.build(
        allow_loopback=True, allowed=["0.0.0.0/0", "::/0", f"[{address}]:5432" if ":" in address else f"{address}:5432"]
    )
    with pytest.raises(ConnectorError) as refused:
        wide_open.resolve(address, 5432)
    assert refused.value.category == Category.PERMISSION and "always refused" in refused.value.message


def test_loopback_is_refused_unless_allowed_and_private_ranges_stay_open() -> None:
    with pytest.raises(ConnectorError, match="loopback"):
        STRICT.resolve("127.0.0.1", 5432)
    with pytest.raises(ConnectorError, match="loopback"):
        STRICT.resolve("::ffff:127.0.0.1", 5432)
    assert TargetPolicy(allow_loopback=True).resolve("127.0.0.1", 5432) == ["127.0.0.1"]
    assert STRICT.resolve("10.1.2.3", 5432) == ["10.1.2.3"]
    assert STRICT.resolve("192.168.0.10", 3306) == ["192.168.0.10"]


def test_one_allowed_host_port_opens_that_port_only_and_blocked_wins() -> None:
    sidecar = TargetPolicy.build(allowed=["127.0.0.1:9000"])
    assert sidecar.resolve("127.0.0.1", 9000) == ["127.0.0.1"]
    with pytest.raises(ConnectorError, match="loopback"):
        sidecar.resolve("127.0.0.1", 9001)
    both = TargetPolicy.build(allowed=["10.0.0.0/8"], blocked=["10.9.0.0/16", "10.1.1.1:5432"])
    assert both.resolve("10.2.3.4", 5432) == ["10.2.3.4"]
    for host, port in (("10.9.8.7", 5432), ("10.1.1.1", 5432)):
        with pytest.raises(ConnectorError, match="HUB_BLOCKED_TARGETS"):
            both.resolve(host, port)
    assert both.resolve("10.1.1.1", 6543) == ["10.1.1.1"]


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "example.com", "10.0.0.0/8:80", "host:99999", "a b:80", ""])
def test_a_bad_list_entry_is_refused_with_a_reason(entry: str) -> None:
    if not entry:
        assert TargetPolicy.build(allowed=[entry]).allowed == ()
        return
    with pytest.raises(ValueError):
        TargetRule.parse(entry)


def test_every_address_a_name_resolves_to_is_checked() -> None:
    policy = TargetPolicy(resolver=resolver({"db.corp.test": ["10.0.0.5", "169.254.169.254"]}))
    with pytest.raises(ConnectorError) as refused:
        policy.resolve("db.corp.test", 5432)
    assert "169.254.169.254" in refused.value.message and refused.value.category == Category.PERMISSION


def test_host_must_be_a_name_or_an_address() -> None:
    for host in ("/var/run/postgresql", "10.0.0.1,169.254.169.254", "db host"):
        with pytest.raises(ConnectorError) as refused:
            STRICT.resolve(host, 5432)
        assert refused.value.category == Category.CONFIG


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("postgresql", {"host": "169.254.169.254", "database": "x"}, "host"),
        ("mysql", {"host": "metadata.test", "database": "x"}, "host"),
        ("postgresql", {"host": "fe80::1", "database": "x"}, "host"),
        ("bamboohr", {"subdomain": "acme", "base_url": "https://169.254.169.254/api/v1/"}, "base_url"),
        ("bamboohr", {"subdomain": "acme", "base_url": "https://metadata.test/api/"}, "base_url"),
        (
            "bamboohr",
            {"subdomain": "acme", "oauth2": {"client_id": "c", "token_url": "https://metadata.test/token"}},
            "oauth2.token_url",
        ),
        (
            "bamboohr",
            {
                "subdomain": "acme",
                "oauth2": {
                    "client_id": "c",
                    "token_url": "https://acme.example/token",
                    "authorize_url": "https://[fd00:ec2::254]/authorize",
                },
            },
            "oauth2.authorize_url",
        ),
        (
            "bamboohr",
            {"subdomain": "acme", "oauth2": {"client_id": "c", "token_url": "http://acme.example/token"}},
            "oauth2.token_url",
        ),
    ],
)
def test_refused_targets_are_field_errors_at_validation(kind: str, config: dict[str, Any], field: str) -> None:
    policy = TargetPolicy(resolver=resolver({"metadata.test": ["169.254.169.254"], "acme.example": ["93.184.215.14"]}))
    typed = registry.validate_config(kind, config)
    with pytest.raises(ConfigError) as refused:
        registry.check_targets(kind, typed, policy)
    assert list(refused.value.errors) == [field], refused.value.errors


def test_a_name_that_does_not_resolve_here_passes_validation_and_is_checked_at_connect() -> None:
    typed = registry.validate_config("postgresql", {"host": "db.elsewhere.test", "database": "x"})
    registry.check_targets("postgresql", typed, TargetPolicy(resolver=resolver({})))


def test_oauth_urls_are_https_only_except_loopback_where_loopback_is_allowed() -> None:
    typed = registry.validate_config(
        "bamboohr", {"subdomain": "acme", "oauth2": {"client_id": "c", "token_url": "http://127.0.0.1:8000/token"}}
    )
    registry.check_targets("bamboohr", typed, TargetPolicy(allow_loopback=True))
    with pytest.raises(ConfigError) as refused:
        registry.check_targets("bamboohr", typed, STRICT)
    assert "loopback" in refused.value.errors["oauth2.token_url"][0]


# ---------------------------------------------------------------------------------------------- no packet


def _refusal(connect: Callable[[], Any]) -> ConnectorError:
    with pytest.raises(ConnectorError) as refused:
        connect()
    assert refused.value.category == Category.PERMISSION, refused.value
    return refused.value


def _database(kind: str, host: str, port: int, policy: TargetPolicy) -> Callable[[], Any]:
    def connect() -> Any:
        db = build(
            kind,
            {"host": host, "port": port, "database": "x", "connect_timeout": 1},
            {},
            runtime(policy),
            auth_type="none",
        )
        try:
            db.connect()
        finally:
            db.disconnect()

    return connect


def _bamboohr(base_url: str, policy: TargetPolicy) -> Callable[[], Any]:
    def connect() -> Any:
        config = {"subdomain": "acme", "base_url": base_url, "allow_insecure_loopback": True, "timeout_seconds": 2}
        hr = build("bamboohr", config, {"api_key": "k" * 40}, runtime(policy), auth_type="api_key")
        try:
            hr.get_employee(1)
        finally:
            hr.disconnect()

    return connect


def _token(url: str, policy: TargetPolicy) -> Callable[[], Any]:
    config = OAuth2Config(client_id="c", token_url=url, grant_type="client_credentials")
    return lambda: fetch_client_credentials(config, "secret", timeout=2, policy=policy)


def _targets(port: int, policy: TargetPolicy) -> dict[str, Callable[[], Any]]:
    return {
        "postgresql": _database("postgresql", "127.0.0.1", port, policy),
        "mysql": _database("mysql", "127.0.0.1", port, policy),
        "mysql by name": _database("mysql", "localhost", port, policy),
        "base_url": _bamboohr(f"http://127.0.0.1:{port}/api/v1/", policy),
        "token_url": _token(f"http://127.0.0.1:{port}/token", policy),
    }


def test_a_refused_target_gets_no_packet_and_the_same_answer_open_or_closed(listener: CountingServer) -> None:
    open_answers = {name: _refusal(connect).message for name, connect in _targets(listener.port, STRICT).items()}
    assert listener.accepted == 0  # not one connection reached the listening socket
    listener.close()
    closed_answers = {name: _refusal(connect).message for name, connect in _targets(listener.port, STRICT).items()}
    assert closed_answers == open_answers
    assert all("loopback" in message for message in open_answers.values())


def test_a_name_resolving_to_metadata_is_refused_at_connect_for_every_family(listener: CountingServer) -> None:
    policy = TargetPolicy(allow_loopback=True, resolver=resolver({"metadata.test": ["169.254.169.254"]}))
    port = listener.port
    for connect in (
        _database("postgresql", "metadata.test", port, policy),
        _database("mysql", "metadata.test", port, policy),
        _bamboohr(f"https://metadata.test:{port}/api/v1/", policy),
        _token(f"https://metadata.test:{port}/token", policy),
    ):
        assert "169.254.169.254" in _refusal(connect).message
    config = OAuth2Config(
        client_id="c", token_url="https://acme.example/token", authorize_url="https://metadata.test/authorize"
    )
    with pytest.raises(ConnectorError, match="169.254.169.254"):
        authorization_request(config, redirect_uri="https://hub.example/cb", state="s", policy=policy)
    assert listener.accepted == 0


def test_rebinding_after_validation_is_refused_at_connect(listener: CountingServer) -> None:
    answers = [["10.20.30.40"], ["169.254.169.254"]]
    policy = TargetPolicy(allow_loopback=True, resolver=lambda host, port: answers.pop(0))
    typed = registry.validate_config("postgresql", {"host": "rebind.test", "port": listener.port, "database": "x"})
    registry.check_targets("postgresql", typed, policy)  # the first answer is harmless
    assert "169.254.169.254" in _refusal(_database("postgresql", "rebind.test", listener.port, policy)).message
    assert listener.accepted == 0


def test_connections_go_to_the_vetted_address_not_a_second_lookup(listener: CountingServer) -> None:
    # "db.internal.test" exists only in the policy's resolver: a second lookup by the driver would fail.
    policy = TargetPolicy(allow_loopback=True, resolver=resolver({"db.internal.test": ["127.0.0.1"]}))
    for kind in ("postgresql", "mysql"):
        with pytest.raises(ConnectorError) as failed:  # the listener hangs up: not a database, but reached
            _database(kind, "db.internal.test", listener.port, policy)()
        assert failed.value.category != Category.PERMISSION
    assert listener.accepted >= 2


def test_one_allowed_loopback_port_is_reachable(listener: CountingServer) -> None:
    sidecar = TargetPolicy.build(allowed=[f"127.0.0.1:{listener.port}"])
    with pytest.raises(ConnectorError) as failed:
        _database("postgresql", "127.0.0.1", listener.port, sidecar)()
    assert failed.value.category != Category.PERMISSION and listener.accepted >= 1


# ---------------------------------------------------------------------------------------------- files


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    for path in (allowed / "hr.sqlite3", allowed / "hub.sqlite3", outside / "secret.sqlite3"):
        import sqlite3

        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    return {"allowed": allowed, "outside": outside}


def _file_policy(folders: dict[str, Path]) -> TargetPolicy:
    return TargetPolicy.build(
        sqlite_dirs=[str(folders["allowed"])], protected_paths=[str(folders["allowed"] / "hub.sqlite3")]
    )


def test_sqlite_files_are_refused_with_one_message_whether_or_not_they_exist(folders: dict[str, Path]) -> None:
    policy = _file_policy(folders)
    assert policy.check_sqlite_path(str(folders["allowed"] / "hr.sqlite3")) == str(folders["allowed"] / "hr.sqlite3")
    refused = [
        "/etc/passwd",
        str(folders["outside"] / "secret.sqlite3"),
        str(folders["outside"] / "missing.sqlite3"),
        "/nonexistent/folder/x.sqlite3",
        str(folders["allowed"] / "hub.sqlite3"),  # the hub's own database, inside an allowed folder
        str(folders["allowed"] / "hub.sqlite3-wal"),
        str(folders["allowed"] / "hub.sqlite3-journal"),
        os.path.join(folders["allowed"], os.pardir, "outside", "secret.sqlite3"),  # climbs out of the folder
        "relative/nowhere.sqlite3",
        "bad\x00path",
    ]
    messages = set()
    for path in refused:
        with pytest.raises(ConnectorError) as info:
            policy.check_sqlite_path(path)
        assert info.value.category == Category.PERMISSION
        messages.add(info.value.message)
    assert messages == {f"SQLite {SQLITE_REFUSAL}"}
    with pytest.raises(ConnectorError):
        STRICT.check_sqlite_path(str(folders["allowed"] / "hr.sqlite3"))  # no folder named: nothing allowed


def test_a_symlink_swapped_after_validation_is_refused_at_connect(folders: dict[str, Path]) -> None:
    policy = _file_policy(folders)
    link = folders["allowed"] / "link.sqlite3"
    link.symlink_to(folders["allowed"] / "hr.sqlite3")
    typed = registry.validate_config("sqlite", {"path": str(link)})
    registry.check_targets("sqlite", typed, policy)  # valid now
    db = build("sqlite", typed, {}, runtime(policy))
    assert db.query("SELECT count(*) AS n FROM t") == [{"n": 0}]
    db.disconnect()
    for target in (folders["allowed"] / "hub.sqlite3", folders["outside"] / "secret.sqlite3"):
        link.unlink()
        link.symlink_to(target)
        with pytest.raises(ConnectorError) as refused:
            db.connect()
        assert refused.value.category == Category.PERMISSION and refused.value.message == f"SQLite {SQLITE_REFUSAL}"
    with pytest.raises(ConfigError) as invalid:
        registry.check_targets("sqlite", typed, policy)
    assert list(invalid.value.errors) == ["path"]


def test_the_default_runtime_refuses_loopback_and_sqlite(folders: dict[str, Path], listener: CountingServer) -> None:
    db = build("sqlite", {"path": str(folders["allowed"] / "hr.sqlite3")})
    assert db.test_connection().category == Category.PERMISSION
    pg = build("postgresql", {"host": "127.0.0.1", "port": listener.port, "database": "x"})
    assert pg.test_connection().category == Category.PERMISSION
    assert listener.accepted == 0


def test_the_embedded_ipv4_forms_are_recognised() -> None:
    assert STRICT.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), 80) is not None
    assert STRICT.refusal(ipaddress.ip_address("::ffff:10.0.0.1"), 80) is None
    assert os.path.isabs(TargetPolicy.build(sqlite_dirs=["."]).sqlite_dirs[0])


def test_http_requests_go_to_the_vetted_address_with_the_name_kept(bamboohr_server: Any) -> None:
    # "hr.localhost" resolves only through the policy's resolver; the request still names it.
    port = bamboohr_server.url.split(":")[2].split("/")[0]
    policy = TargetPolicy(allow_loopback=True, resolver=resolver({"hr.localhost": ["127.0.0.1"]}))
    config = {
        "subdomain": bamboohr_server.company.name,
        "base_url": f"http://hr.localhost:{port}/api/v1/",
        "allow_insecure_loopback": True,
    }
    hr = build("bamboohr", config, {"api_key": bamboohr_server.api_key}, runtime(policy), auth_type="api_key")
    try:
        assert hr.test_connection().ok
    finally:
        hr.disconnect()
    strict = TargetPolicy(resolver=policy.resolver)
    refused = build("bamboohr", config, {"api_key": bamboohr_server.api_key}, runtime(strict), auth_type="api_key")
    assert refused.test_connection().category == Category.PERMISSION
