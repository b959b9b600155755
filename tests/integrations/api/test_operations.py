"""connect / disconnect / test: 202 with an operation to follow, or the result inline with ?wait=.

The first tests need no worker (the operation stays pending); the last ones run a real Celery worker
against this run's test database and Redis, and a BambooHR sandbox on loopback for the good case.
"""

from __future__ import annotations

import time

import pytest

from integrations.models import Integration, IntegrationEvent
from tests.runtime_fixtures import free_port


@pytest.fixture
def alice(people, client_for):
    return client_for(people.owner)


@pytest.mark.parametrize("action", ["connect", "disconnect", "test"])
def test_accepted_with_an_operation_to_follow(alice, shared, action):
    response = alice.post(f"/api/integrations/{shared.id}/{action}")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending"
    assert (body["operation"], body["integration"], body["result"]) == (action, shared.id, None)
    assert body["url"] == f"http://testserver/api/operations/{body['id']}"
    assert response["Location"] == body["url"]
    followed = alice.get(body["url"])
    assert followed.status_code == 202  # still pending: no worker in this test
    assert followed.json() == body


def test_a_get_of_test_starts_nothing(alice, shared):
    """A test reaches the outside system and records an event: a GET (a link, a prefetch) must not start one.
    (Issue 14, item 6: the seed's GET used to be kept; it is now 405 and the client POSTs.)"""
    before = IntegrationEvent.objects.count()
    response = alice.get(f"/api/integrations/{shared.id}/test?wait=1")
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"
    assert IntegrationEvent.objects.count() == before
    shared.refresh_from_db()
    assert (shared.status, shared.last_checked_at) == ("disconnected", None)
    # The OpenAPI schema says the same: every route that starts work offers POST only.
    paths = alice.get("/api/schema/?format=json").json()["paths"]
    for action in ("connect", "disconnect", "test"):
        assert set(paths[f"/api/integrations/{{id}}/{action}/"]) == {"post"}, action


def test_connect_marks_connecting_and_records_who_asked(alice, shared):
    alice.post(f"/api/integrations/{shared.id}/connect/")
    shared.refresh_from_db()
    assert shared.status == "connecting"
    assert IntegrationEvent.objects.filter(integration=shared, type="connect", actor="alice").exists()


def test_connecting_a_disabled_integration_is_a_400(alice, make_integration, people):
    make_integration("off", owner=people.owner, enabled=False)
    response = alice.post("/api/integrations/off/connect")
    assert response.status_code == 400
    assert "enabled" in response.json()


@pytest.mark.parametrize("wait", ["abc", "-1", "31", "nan", "inf"])
def test_a_bad_wait_is_refused_before_anything_is_enqueued(alice, shared, wait):
    response = alice.post(f"/api/integrations/{shared.id}/connect?wait={wait}")
    assert response.status_code == 400
    assert "wait" in response.json()
    shared.refresh_from_db()
    assert shared.status == "disconnected"


def test_wait_without_a_worker_gives_up_after_the_given_time(alice, shared):
    started = time.monotonic()
    response = alice.post(f"/api/integrations/{shared.id}/test?wait=0.5")
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert 0.5 <= elapsed < 5


def test_following_with_wait_long_polls(alice, shared):
    operation = alice.post(f"/api/integrations/{shared.id}/test").json()
    started = time.monotonic()
    followed = alice.get(f"/api/operations/{operation['id']}?wait=0.5")
    assert followed.status_code == 202
    assert followed.json()["state"] == "pending"  # no worker in this test: still pending after the wait
    assert time.monotonic() - started >= 0.5
    assert alice.get(f"/api/operations/{operation['id']}?wait=99").status_code == 400


def test_unknown_operation_is_404(alice, db):
    assert alice.get("/api/operations/00000000-0000-0000-0000-000000000000").status_code == 404


# --- with a real worker ------------------------------------------------------------------------------------------


@pytest.fixture
def worker(clean_redis, celery_worker_process):
    return celery_worker_process


def _create(client, id, config, api_key):
    body = {
        "id": id,
        "name": id,
        "kind": "bamboohr",
        "auth_type": "api_key",
        "config": config,
        "credentials": {"api_key": api_key},
    }
    response = client.post("/api/integrations", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]  # the owner is not staff: the hub added a suffix to the id


@pytest.mark.django_db(transaction=True)
def test_wait_returns_the_failure_inline(people, client_for, worker):
    client = client_for(people.owner)
    port = free_port()  # nothing listens there
    hr_down = _create(
        client,
        "hr_down",
        {
            "subdomain": "acme",
            "base_url": f"http://127.0.0.1:{port}/api/v1/",
            "allow_insecure_loopback": True,
            "timeout_seconds": 2,
        },
        "k" * 40,
    )
    response = client.post(f"/api/integrations/{hr_down}/test?wait=30")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "failed"
    assert body["result"]["ok"] is False
    assert body["result"]["category"] == "network"
    assert "Location" not in response
    # A connect keeps retrying a network failure for longer than a client should wait: 202, to follow.
    connect = client.post(f"/api/integrations/{hr_down}/connect?wait=1")
    assert connect.status_code == 202
    assert connect.json()["state"] in ("pending", "running")
    assert connect["Location"] == connect.json()["url"]
    assert Integration.objects.get(pk=hr_down).status == "connecting"


@pytest.mark.django_db(transaction=True)
def test_test_with_latency_in_one_call_then_connect_metrics_and_delete(people, client_for, worker, bamboohr_sandbox):
    client = client_for(people.owner)
    config = {"subdomain": "acme", "base_url": bamboohr_sandbox.base_url, "allow_insecure_loopback": True}
    hr = _create(client, "hr", config, bamboohr_sandbox.api_key)

    pending = client.post(f"/api/integrations/{hr}/test")  # no wait: 202, then follow it with a long poll
    assert pending.status_code == 202
    followed = client.get(pending["Location"].replace("http://testserver", "") + "?wait=30")
    assert followed.status_code == 200
    assert (followed.json()["state"], followed.json()["result"]["ok"]) == ("succeeded", True)

    tested = client.post(f"/api/integrations/{hr}/test?wait=30")  # the seed's "test connection with latency"
    assert tested.status_code == 200, tested.content
    assert tested.json()["state"] == "succeeded"
    assert tested.json()["result"]["ok"] is True
    assert tested.json()["result"]["latency_ms"] > 0

    connected = client.post(f"/api/integrations/{hr}/connect?wait=30")
    assert connected.json()["state"] == "succeeded", connected.content
    assert client.get(f"/api/integrations/{hr}").json()["status"] == "connected"
    metrics = client.get(f"/api/integrations/{hr}/metrics").json()
    assert metrics["total"] >= 1 and metrics["successful"] >= 1

    disconnected = client.post(f"/api/integrations/{hr}/disconnect/?wait=30")
    assert disconnected.json()["state"] == "succeeded", disconnected.content
    assert client.get(f"/api/integrations/{hr}").json()["status"] == "disconnected"

    assert client.delete(f"/api/integrations/{hr}").status_code == 204
    history = set(IntegrationEvent.objects.filter(integration_ref=hr).values_list("type", flat=True))
    assert {"test", "connect", "disconnect", "config_change"} <= history


@pytest.fixture
def redis_down(settings):
    from integrations import redis_clients

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    redis_clients.reset()  # the next call connects to the dead URL
    yield
    redis_clients.reset()


def test_redis_down_is_a_clear_503(alice, shared, redis_down):
    response = alice.post(f"/api/integrations/{shared.id}/test")
    assert response.status_code == 503
    assert "Redis" in response.json()["detail"]
    assert alice.get("/api/operations/00000000-0000-0000-0000-000000000000").status_code == 503
    metrics = alice.get(f"/api/integrations/{shared.id}/metrics")
    assert metrics.status_code == 503
    assert "Redis" in metrics.json()["detail"]
    assert alice.get(f"/api/integrations/{shared.id}").status_code == 200  # the rest of the API still answers
