"""The sandbox's webhooks as BambooHR documents them (README §4.12): managed over the API (every exchange
valid against the shipped OpenAPI description), fired on employee changes, signed with the webhook's
private key, a 5xx retried with BambooHR's backoff (scaled down here), a 4xx not retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.bamboohr import BambooHRSandbox
from tests.connectors.http.test_bamboohr_contract import _load_openapi, _violations

KEY = "feed" * 10


class Receiver:
    """A subscriber on loopback: records each POST, answers the statuses it is given (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                with receiver.arrived:
                    headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
                    receiver.received.append({"headers": headers, "body": body, "answered": status})
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    subscriber = Receiver()
    yield subscriber
    subscriber.server.shutdown()


@pytest.fixture
def sandbox() -> Iterator[BambooHRSandbox]:
    # Loopback http allowed (BambooHR itself wants https://); 5 minutes of backoff become 0.06 s.
    with BambooHRSandbox(
        api_key=KEY, employees=5, record=True, webhook_insecure_urls=True, webhook_backoff_scale=0.0002
    ) as server:
        yield server


def _client(sandbox: BambooHRSandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url, auth=(KEY, "x"), headers={"Accept": "application/json"}, timeout=10)


def _verify(delivery: dict[str, Any], private_key: str) -> bool:
    timestamp = delivery["headers"]["x-bamboohr-timestamp"]
    expected = hmac.new(private_key.encode(), delivery["body"] + timestamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, delivery["headers"]["x-bamboohr-signature"])


def test_webhooks_are_managed_as_the_spec_describes(sandbox: BambooHRSandbox) -> None:
    with _client(sandbox) as api:
        body = {
            "name": "hub",
            "url": "https://hub.example.com/hooks/bamboohr/hr/",
            "format": "json",
            "events": ["employee.created", "employee.updated", "employee.deleted"],
            "monitorFields": ["jobTitle", "department"],
        }
        created = api.post("webhooks", json=body)
        assert created.status_code == 201
        hook = created.json()
        assert len(hook["privateKey"]) == 64 and hook["monitorFields"] == ["jobTitle", "department"]
        # The private key is shown once, at creation.
        fetched = api.get(f"webhooks/{hook['id']}").json()
        assert "privateKey" not in fetched and fetched["events"] == body["events"]
        assert [w["id"] for w in api.get("webhooks").json()["webhooks"]] == [hook["id"]]
        replaced = api.put(f"webhooks/{hook['id']}", json={**body, "name": "renamed", "monitorFields": ["lastName"]})
        assert replaced.status_code == 200 and replaced.json()["name"] == "renamed"
        assert api.get(f"webhooks/{hook['id']}/log").json() == []
        monitor = api.get("webhooks/monitor_fields").json()["fields"]
        assert {"id": "12", "name": "Job Title", "alias": "jobTitle"} in monitor
        assert api.get("webhooks/post-fields").status_code == 200
        deleted = api.delete(f"webhooks/{hook['id']}")
        assert deleted.status_code == 200 and deleted.text == "Web hook has been deleted."
        assert api.get(f"webhooks/{hook['id']}").status_code == 404

        # Refusals, as documented: a missing format, updated events without monitorFields, mixed event kinds.
        assert api.post("webhooks", json={**body, "format": None}).status_code == 400
        assert api.post("webhooks", json={**body, "monitorFields": []}).status_code == 400
        mixed = {**body, "events": ["employee.created", "employee_with_fields.created"]}
        assert api.post("webhooks", json=mixed).status_code == 400
        unknown = api.post("webhooks", json={**body, "monitorFields": ["shoeSize"]})
        assert unknown.status_code == 403
        assert unknown.json()["errors"][0]["unknownFields"] == [{"id": None, "name": "shoeSize"}]
    # Every answer matches the spec; so does every request but the ones made wrong on purpose.
    problems = _violations(_load_openapi(), sandbox.exchanges)
    wrong_on_purpose = "POST /api/v1/webhooks? -> 400: request:"
    assert not [p for p in problems if not p.startswith(wrong_on_purpose)], "\n".join(problems)


def test_only_https_urls_unless_the_switch_allows_loopback_http() -> None:
    with BambooHRSandbox(api_key=KEY, employees=1) as strict, _client(strict) as api:
        body = {"name": "x", "url": "http://127.0.0.1:9/hooks", "format": "json", "events": ["employee.created"]}
        refused = api.post("webhooks", json=body)
        assert refused.status_code == 400 and "https://" in refused.text
        assert api.post("webhooks", json={**body, "url": "https://127.0.0.1:9/hooks"}).status_code == 201


def _hook(api: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "hub", "url": url, "format": "json", **fields}
    answer = api.post("webhooks", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_employee_changes_are_delivered_signed(sandbox: BambooHRSandbox, receiver: Receiver) -> None:
    with _client(sandbox) as api:
        events = ["employee.created", "employee.updated"]
        hook = _hook(api, receiver.url, events=events, monitorFields=["preferredName"])
        made = api.post("employees", json={"firstName": "Wen", "lastName": "Hook", "preferredName": "W"})
        eid = made.headers["Location"].rsplit("/", 1)[-1]
        api.post(f"employees/{eid}", json={"preferredName": "Wendy"})
        api.post(f"employees/{eid}", json={"workPhone": "555-0100"})  # not monitored: no event
        deliveries = receiver.wait_for(3)
        time.sleep(0.3)  # anything more would have arrived by now
        log = api.get(f"webhooks/{hook['id']}/log").json()

    payloads = [json.loads(d["body"]) for d in receiver.received]
    assert [p["type"] for p in payloads] == ["employee.created", "employee.updated", "employee.updated"]
    assert {p["data"]["employeeId"] for p in payloads} == {eid}
    assert [p["data"].get("changedFields") for p in payloads] == [None, ["preferredName"], ["preferredName"]]
    for delivery in deliveries:
        assert _verify(delivery, hook["privateKey"])
        assert abs(int(delivery["headers"]["x-bamboohr-timestamp"]) - time.time()) < 30
        assert not _verify(delivery | {"body": delivery["body"] + b" "}, hook["privateKey"])
    assert [entry["statusCode"] for entry in log] == ["200", "200", "200"]
    assert all(entry["employeeIds"] == [eid] for entry in log)


def test_a_5xx_is_retried_with_backoff_and_a_4xx_is_not(sandbox: BambooHRSandbox, receiver: Receiver) -> None:
    with _client(sandbox) as api:
        hook = _hook(api, receiver.url, events=["employee.updated"], monitorFields=["preferredName"])
        receiver.statuses = [500, 503, 200]
        api.post("employees/1", json={"preferredName": "Retry Me"})
        attempts = receiver.wait_for(3)
        assert [a["answered"] for a in attempts] == [500, 503, 200]
        assert len({a["body"] for a in attempts}) == 1  # the same event each time

        receiver.statuses = [410]
        api.post("employees/2", json={"preferredName": "Gone"})
        receiver.wait_for(4)
        time.sleep(0.5)  # the first retry would come 0.06 s later
        assert len(receiver.received) == 4
        log = api.get(f"webhooks/{hook['id']}/log").json()
    assert [entry["statusCode"] for entry in log] == ["500", "503", "200", "410"]


def test_paused_deliveries_are_lost_and_legacy_payloads_carry_post_fields(
    sandbox: BambooHRSandbox, receiver: Receiver
) -> None:
    with _client(sandbox) as api:
        root = sandbox.url.removesuffix("/api/v1/")
        post = {"preferredName": "Nickname", "firstName": "Name"}
        _hook(api, receiver.url, monitorFields=["preferredName"], postFields=post)
        assert api.post(root + "/__sandbox__/webhooks", json={"paused": True}).json()["paused"] is True
        api.post("employees/1", json={"preferredName": "Lost"})
        time.sleep(0.3)
        assert receiver.received == []
        api.post(root + "/__sandbox__/webhooks", json={"paused": False})
        api.post("employees/1", json={"preferredName": "Found"})
        (delivery,) = receiver.wait_for(1)
        first_name = api.get("employees/1", params={"fields": "firstName"}).json()["firstName"]
    (employee,) = json.loads(delivery["body"])["employees"]
    assert employee["action"] == "Updated" and employee["id"] == "1"
    assert employee["changedFields"] == ["Preferred Name"]
    assert employee["fields"] == {"Nickname": "Found", "Name": first_name}
