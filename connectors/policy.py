"""Where a connector may point: the one target policy for network addresses, URLs and SQLite files.

Plain values in (the Django side reads them from settings), a ``ConnectorError`` out. The same
``TargetPolicy`` is asked at validation (a field error) and at every connect, where a host name is
resolved once, EVERY address it resolves to is checked (one refused address refuses the target:
DNS rebinding), and the connection goes to one of the vetted addresses, never to a second lookup.
A refusal is decided before any packet is sent, so an open and a closed port get the same answer.

Always refused, whatever the lists say: link-local (169.254.0.0/16, fe80::/10) with the cloud
metadata addresses, unspecified, multicast and broadcast addresses, also in IPv4-mapped or embedded
IPv6 form. Loopback is refused unless ``allow_loopback``. ``blocked`` (networks or host:port) wins
over ``allowed``, which opens a network or one host:port (a sidecar on loopback) for the rest.
Private ranges stay allowed: that is where company databases live.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from connectors.errors import Category, ConnectorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# One answer for every refused SQLite path, whether or not the file exists (no existence oracle).
SQLITE_REFUSAL = "path is not in an allowed folder (SQLITE_ALLOWED_DIRS), or is one of the hub's own files: refused"
_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack...
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$"
)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64, 6to4)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if address in _NAT64 or (packed[:12] == bytes(12) and int(address) > 1):
        return ipaddress.IPv4Address(packed[12:])
    return None


def _always_refused(address: IPAddress) -> str | None:
    if address in _METADATA:
        return "a cloud metadata address (always refused)"
    if address.is_link_local:
        return "a link-local address (always refused)"
    if address.is_unspecified:
        return "an unspecified address (always refused)"
    if address.is_multicast:
        return "a multicast address (always refused)"
    if address == _BROADCAST:
        return "the broadcast address (always refused)"
    return None


def is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.match(value.lower()))


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetRule:
    """One entry of HUB_ALLOWED_TARGETS / HUB_BLOCKED_TARGETS: a network (CIDR or one address), or host:port."""

    text: str
    network: IPNetwork | None = None
    host: str | None = None  # a host name, for name:port entries
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> TargetRule:
        """Raise ValueError with a one-line reason for anything that is not a network or host:port."""
        entry = text.strip()
        host, port = entry, None
        if entry.startswith("["):  # [v6] or [v6]:port
            inside, _, rest = entry[1:].partition("]")
            if rest and not rest.startswith(":"):
                raise ValueError(f"{text!r} is not a network (CIDR) or host:port")
            host, port = inside, rest[1:] or None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        number = None
        if port is not None:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
            number = int(port)
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            network = None
        if network is not None:
            if number is not None and "/" in host:
                raise ValueError(f"{text!r}: a port goes with one address, not a network")
            return cls(entry, network=network, port=number)
        if not is_hostname(host):
            raise ValueError(f"{text!r} is not a network (CIDR) or host:port")
        if number is None:
            raise ValueError(f"{text!r}: a host name needs a port (host:port)")
        return cls(entry, host=host.lower().rstrip("."), port=number)

    def matches(self, address: IPAddress, port: int, host: str) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host.lower().rstrip(".")
        assert self.network is not None
        return address.version == self.network.version and address in self.network


def parse_rules(entries: Iterable[str]) -> tuple[TargetRule, ...]:
    return tuple(TargetRule.parse(entry) for entry in entries if entry.strip())


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """One place a config points to, named by its config field (for the field error)."""

    field: str
    kind: Literal["host", "url", "oauth_url", "sqlite"]
    value: str
    port: int | None = None


@dataclass(frozen=True)
class TargetPolicy:
    """The default refuses loopback and every SQLite file: a runtime must be given a wider policy."""

    allow_loopback: bool = False
    allowed: tuple[TargetRule, ...] = ()
    blocked: tuple[TargetRule, ...] = ()
    sqlite_dirs: tuple[str, ...] = ()  # real paths
    protected_paths: frozenset[str] = frozenset()  # real paths of the hub's own files
    resolver: Resolver = field(default=_system_resolver, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        allow_loopback: bool = False,
        allowed: Iterable[str] = (),
        blocked: Iterable[str] = (),
        sqlite_dirs: Iterable[str] = (),
        protected_paths: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> TargetPolicy:
        """From plain values (settings); a bad allowed/blocked entry raises ValueError."""
        return cls(
            allow_loopback=allow_loopback,
            allowed=parse_rules(allowed),
            blocked=parse_rules(blocked),
            sqlite_dirs=tuple(os.path.realpath(os.path.expanduser(d)) for d in sqlite_dirs if d.strip()),
            protected_paths=frozenset(os.path.realpath(p) for p in protected_paths if p),
            resolver=resolver or _system_resolver,
        )

    # ------------------------------------------------------------------ addresses
    def refusal(self, address: IPAddress, port: int, host: str = "") -> str | None:
        """Why ``address`` (reached as ``host``:``port``) is refused, or None when it may be used."""
        inner = _embedded_ipv4(address)
        for candidate in (address, inner):
            if candidate is not None and (reason := _always_refused(candidate)):
                return reason
        plain = inner or address
        name = host or str(address)
        if any(rule.matches(plain, port, name) or rule.matches(address, port, name) for rule in self.blocked):
            return "blocked by HUB_BLOCKED_TARGETS"
        if any(rule.matches(plain, port, name) or rule.matches(address, port, name) for rule in self.allowed):
            return None
        if plain.is_loopback and not self.allow_loopback:
            return "a loopback address (set HUB_ALLOW_LOOPBACK_TARGETS, or name host:port in HUB_ALLOWED_TARGETS)"
        return None

    def resolve(self, host: str, port: int, *, what: str = "host") -> list[str]:
        """The vetted addresses of ``host`` (all of them checked), to connect to; else ConnectorError."""
        host = host.strip()
        literal = ip_literal(host)
        if literal is None and not is_hostname(host):
            raise ConnectorError(f"{what} {host!r} is not a host name or an IP address", category=Category.CONFIG)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = self.resolver(host, port)
            except (OSError, UnicodeError):
                raise ConnectorError(
                    f"{what} {host!r}: unknown host (the name does not resolve)",
                    category=Category.NETWORK,
                    permanent=False,
                ) from None
            addresses = []
            for text in found:
                address = ip_literal(text)
                if address is None:
                    raise ConnectorError(f"{what} {host!r} resolves to an unusable address", category=Category.CONFIG)
                if address not in addresses:
                    addresses.append(address)
            if not addresses:
                raise ConnectorError(f"{what} {host!r}: unknown host", category=Category.NETWORK, permanent=False)
        for address in addresses:
            reason = self.refusal(address, port, host)
            if reason is not None:
                shown = f"{host}:{port}" if literal is not None else f"{host}:{port} (resolves to {address})"
                raise ConnectorError(
                    f"{what} {shown} is refused by the hub's network policy: {reason}",
                    category=Category.PERMISSION,
                    permanent=True,
                )
        return [str(address) for address in addresses]

    def check_url(self, url: str, *, what: str = "URL", https_only: bool = False) -> list[str]:
        """Check a URL's host (resolved) and, with ``https_only``, its scheme: http only to a loopback host."""
        host, port = url_endpoint(url, what=what, https_only=https_only)
        return self.resolve(host, port, what=what)

    # ------------------------------------------------------------------ files
    def check_sqlite_path(self, path: str) -> str:
        """The real path (symlinks resolved) to open, or ConnectorError(permission) with one message."""
        try:
            real = os.path.realpath(os.path.expanduser(path))
        except ValueError:  # a NUL byte
            raise ConnectorError(f"SQLite {SQLITE_REFUSAL}", category=Category.PERMISSION, permanent=True) from None
        base = real
        for suffix in _SQLITE_SIBLINGS:
            if real.endswith(suffix):
                base = real[: -len(suffix)]
        inside = any(_within(real, folder) for folder in self.sqlite_dirs)
        if not inside or real in self.protected_paths or base in self.protected_paths:
            raise ConnectorError(f"SQLite {SQLITE_REFUSAL}", category=Category.PERMISSION, permanent=True)
        return real

    # ------------------------------------------------------------------ validation
    def field_errors(self, targets: Iterable[Target]) -> dict[str, list[str]]:
        """Config field -> refusal messages, for validation. A name that does not resolve here passes:
        a worker may see other DNS, and it checks again at connect."""
        errors: dict[str, list[str]] = {}
        for target in targets:
            try:
                if target.kind == "sqlite":
                    self.check_sqlite_path(target.value)
                elif target.kind == "host":
                    self.resolve(target.value, target.port or 0, what="host")
                else:
                    self.check_url(target.value, what=target.field, https_only=target.kind == "oauth_url")
            except ConnectorError as exc:
                if exc.category == Category.NETWORK:
                    continue
                errors.setdefault(target.field, []).append(exc.message)
        return errors


def url_endpoint(url: str, *, what: str = "URL", https_only: bool = False) -> tuple[str, int]:
    """A URL's host and port; with ``https_only`` plain http is refused except to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(f"{what} must be an absolute https:// URL", category=Category.CONFIG)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConnectorError(f"{what} has an invalid port", category=Category.CONFIG) from None
    if https_only and parts.scheme == "http" and not _is_loopback_name(host):
        raise ConnectorError(
            f"{what} must use https:// (http:// only to a loopback host where loopback is allowed)",
            category=Category.CONFIG,
        )
    return host, port


def _within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False


def _is_loopback_name(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    literal = ip_literal(host)
    if literal is None:
        return False
    inner = _embedded_ipv4(literal)
    return (inner or literal).is_loopback
