"""The HR mirror against the BambooHR sandbox: a change made in the sandbox reaches the mirror through a
signed webhook delivered over real HTTP to the hub (live server, tasks run eagerly); forged, replayed,
stale and oversized deliveries are refused and recorded; with webhooks lost, reconciliation through
/employees/changed catches up, deletes included."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from integrations import services
from integrations.sync import services as sync
from integrations.sync.models import MirroredEmployee, WebhookDelivery
from sandbox.bamboohr import BambooHRSandbox
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _eager(celery_eager: None) -> None:
    return None


@pytest.fixture
def sandbox() -> Iterator[BambooHRSandbox]:
    # Loopback http for the hub's receiver (BambooHR itself wants https://); retries in milliseconds.
    with BambooHRSandbox(
        api_key=os.urandom(20).hex(), employees=12, seed=5, webhook_insecure_urls=True, webhook_backoff_scale=0.0002
    ) as server:
        yield server


def _api(sandbox: BambooHRSandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.url, auth=(sandbox.api_key, "x"), headers={"Accept": "application/json"}, timeout=10
    )


def _hr(sandbox: BambooHRSandbox, key: str = "") -> Any:
    integration = factories.bamboohr(sandbox=sandbox, connect=True)
    if key:
        services.update_integration(integration, actor="tests", credentials={"webhook_private_key": key})
    return integration


def _wait(condition: Callable[[], bool], timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _preferred(integration: Any, eid: str) -> str | None:
    row = MirroredEmployee.objects.filter(integration=integration, remote_id=eid).first()
    return None if row is None else row.data.get("preferred_name")


def test_a_change_in_the_sandbox_reaches_the_mirror_through_a_signed_webhook(
    sandbox: BambooHRSandbox, live_server: Any
) -> None:
    integration = _hr(sandbox)
    assert sync.full_sync(integration.id) == {"employees": 12, "deleted": 0}
    assert MirroredEmployee.objects.filter(integration=integration, deleted_at=None).count() == 12

    with _api(sandbox) as api:
        url = f"{live_server.url}/hooks/bamboohr/{integration.id}/"
        events = ["employee.created", "employee.updated"]
        made = api.post(
            "webhooks",
            json={
                "name": "hub",
                "url": url,
                "format": "json",
                "events": events,
                "monitorFields": ["preferredName", "department"],
            },
        )
        assert made.status_code == 201
        key = made.json()["privateKey"]
        services.update_integration(integration, actor="tests", credentials={"webhook_private_key": key})
        api.post("employees/3", json={"preferredName": "Webhooked"})
        assert _wait(lambda: _preferred(integration, "3") == "Webhooked")

        created = api.post("employees", json={"firstName": "New", "lastName": "Hire", "preferredName": "Newbie"})
        new_id = created.headers["Location"].rsplit("/", 1)[-1]
        assert _wait(lambda: _preferred(integration, new_id) == "Newbie")
        # Three deliveries: the update, then created and updated for the new hire.
        log_url = f"webhooks/{made.json()['id']}/log"
        assert _wait(lambda: len(api.get(log_url).json()) == 3)
        log = api.get(log_url).json()

    assert [entry["statusCode"] for entry in log] == ["200", "200", "200"]
    accepted = WebhookDelivery.objects.filter(integration_ref=integration.id, verdict="accepted")
    assert sorted(accepted.values_list("event_type", flat=True)) == [
        "employee.created",
        "employee.updated",
        "employee.updated",
    ]
    assert not WebhookDelivery.objects.filter(verdict="refused").exists()
    status = sync.status(integration)
    assert status["employees"] == 13 and status["last_webhook_at"] is not None


def _signed(key: str, body: bytes, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    signature = hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return {
        "HTTP_X_BAMBOOHR_TIMESTAMP": timestamp,
        "HTTP_X_BAMBOOHR_SIGNATURE": signature,
        "content_type": "application/json",
    }


def test_forged_replayed_stale_and_oversized_deliveries_are_refused(sandbox: BambooHRSandbox) -> None:
    key = "k" * 64
    integration = _hr(sandbox, key)
    url = f"/hooks/bamboohr/{integration.id}/"
    body = b'{"type":"employee.updated","timestamp":"2026-11-30T10:00:00+0000","data":{"companyId":"acme","employeeId":"2","changedFields":["preferredName"]}}'
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF token: only the signature counts

    forged = client.post(url, body, **_signed("not-the-key", body))
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    tampered = _signed(key, body)
    assert client.post(url, body.replace(b'"2"', b'"1"'), **tampered).status_code == 401

    good = _signed(key, body)
    first = client.post(url, body, **good)
    assert first.status_code == 200, first.content
    assert MirroredEmployee.objects.filter(integration=integration, remote_id="2").exists()  # refreshed
    replayed = client.post(url, body, **good)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["message"]

    stale = client.post(url, body, **_signed(key, body, at=time.time() - 600))
    assert stale.status_code == 401 and "timestamp" in stale.json()["message"]
    big = b'{"type":"employee.updated","data":{"employeeId":"2"},"pad":"' + b"x" * 300_000 + b'"}'
    assert client.post(url, big, **_signed(key, big)).status_code == 401
    assert client.post(f"/hooks/bamboohr/{integration.id}-nope/", body, **good).status_code == 404
    assert client.get(url).status_code == 405

    reasons = list(
        WebhookDelivery.objects.filter(integration_ref=integration.id, verdict="refused").values_list(
            "reason", flat=True
        )
    )
    assert len(reasons) == 5, reasons
    assert WebhookDelivery.objects.filter(integration_ref=integration.id, verdict="accepted").count() == 1


def test_with_webhooks_lost_reconciliation_catches_up_deletes_included(sandbox: BambooHRSandbox) -> None:
    integration = _hr(sandbox)
    sync.full_sync(integration.id)
    with _api(sandbox) as api:
        api.post("employees/4", json={"preferredName": "Missed"})
    # An employee deleted in BambooHR (the API has no delete: done to the sandbox's data directly).
    with sandbox.app.lock:
        sandbox.company.employees.pop(5)
        sandbox.company.changes[5] = ("Deleted", dt.datetime.now(dt.UTC))
    assert _preferred(integration, "4") != "Missed"

    result = sync.reconcile(integration.id)
    assert result["updated"] >= 1 and result["deleted"] == 1
    assert _preferred(integration, "4") == "Missed"
    tombstone = MirroredEmployee.objects.get(integration=integration, remote_id="5")
    assert tombstone.deleted_at is not None
    # Run again: nothing new, nothing doubled.
    again = sync.reconcile(integration.id)
    assert again["deleted"] == 0
    assert MirroredEmployee.objects.filter(integration=integration).count() == 12


def test_beat_reconciles_every_mirror_and_only_those(sandbox: BambooHRSandbox, settings: Any) -> None:
    from integrations.sync.tasks import reconcile_all

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == reconcile_all.name)
    assert entry["schedule"] == 300.0
    mirrored, plain = _hr(sandbox), _hr(sandbox)
    sync.full_sync(mirrored.id)
    with _api(sandbox) as api:
        api.post("employees/6", json={"preferredName": "Beat"})
    assert reconcile_all.apply().get() == 1
    assert _preferred(mirrored, "6") == "Beat"
    assert not MirroredEmployee.objects.filter(integration=plain).exists()


def test_a_change_the_mirror_sees_drops_the_cached_record_scopes(sandbox: BambooHRSandbox) -> None:
    from integrations.tools import scope_cache

    integration = _hr(sandbox)
    sync.full_sync(integration.id)
    computed: list[int] = []

    def compute() -> set[str]:
        computed.append(1)
        return {"1", "2"}

    scope_cache.in_scope_ids(integration.id, "dept:Sales", compute)
    scope_cache.in_scope_ids(integration.id, "dept:Sales", compute)
    assert len(computed) == 1  # kept
    with _api(sandbox) as api:
        api.post("employees/2", json={"preferredName": "Moved"})
    sync.refresh_employees(integration.id, ["2"])  # what a webhook delivery makes a worker do
    scope_cache.in_scope_ids(integration.id, "dept:Sales", compute)
    assert len(computed) == 2  # asked again after the change
