"""The services layer without worker processes: validation, history, credentials, hysteresis, operations.

Connectors are real (the in-process BambooHR sandbox, a SQLite file); Redis is real (REDIS_URL).
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from django.test import override_settings

from connectors.errors import ConfigError, ConnectorError
from integrations import services, tasks
from integrations.models import EventType, Integration, IntegrationEvent, Status
from tests import factories


def make_hr(server, *, id: str = "hr", **extra) -> Integration:
    return factories.bamboohr(id, sandbox=server, config={"subdomain": "acme"}, actor="tester", **extra)


@pytest.fixture(autouse=True)
def _fast_connectors(settings, clean_redis):
    # One attempt per call: the hysteresis tests count failed checks, not retries.
    settings.CONNECTOR_MAX_RETRIES = 0
    settings.HEALTH_FAILURES_TO_ERROR = 3
    settings.HEALTH_SUCCESSES_TO_RECOVER = 2
    settings.CIRCUIT_FAILURE_THRESHOLD = 50
    yield
    services.live_connectors.close_all()


# --- write side -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_validates_through_the_registry_with_field_errors(bamboohr_server):
    with pytest.raises(ConfigError) as bad_kind:
        services.create_integration(actor="t", id="x1", name="X", kind="nope")
    assert "kind" in bad_kind.value.errors
    with pytest.raises(ConfigError) as bad_config:
        services.create_integration(
            actor="t",
            id="x2",
            name="X",
            kind="bamboohr",
            auth_type="api_key",
            config={"subdomain": "acme", "colour": "blue"},
            credentials={"api_key": "k" * 20},
        )
    assert "colour" in bad_config.value.errors
    with pytest.raises(ConfigError) as bad_id:
        make_hr(bamboohr_server, id="Bad Id!")
    assert "id" in bad_id.value.errors
    make_hr(bamboohr_server)
    with pytest.raises(ConfigError) as duplicate:
        make_hr(bamboohr_server)
    assert duplicate.value.errors == {"id": ["An integration with this id already exists."]}
    assert Integration.objects.count() == 1


@pytest.mark.django_db
def test_update_merges_credentials_bumps_version_and_masks_secrets(bamboohr_server):
    integration = make_hr(bamboohr_server)
    assert integration.config_version == 1
    services.update_integration(integration, actor="alice", name="People")
    integration.refresh_from_db()
    assert (integration.name, integration.config_version) == ("People", 1)  # not a connector change

    new_key = "new-secret-key-" + uuid.uuid4().hex
    updated = services.update_integration(integration, actor="alice", credentials={"api_key": new_key})
    assert updated.config_version == 2
    assert Integration.objects.get(pk="hr").credentials == {"api_key": new_key}
    updated = services.update_integration(
        updated, actor="alice", credentials={}, config={**updated.config, "timeout_seconds": 5}
    )
    assert Integration.objects.get(pk="hr").credentials == {"api_key": new_key}  # absent key: kept
    assert updated.config_version == 3

    change = IntegrationEvent.objects.filter(integration_ref="hr", type=EventType.CONFIG_CHANGE, actor="alice")
    fields = [e.detail["fields"] for e in change.order_by("created_at", "id")]
    assert fields == [["name"], ["credentials.api_key"], ["config.timeout_seconds"]]
    for event in IntegrationEvent.objects.all():
        assert new_key not in repr(event.detail) + event.message
        assert bamboohr_server.api_key not in repr(event.detail) + event.message

    with pytest.raises(ConfigError) as cleared:
        services.update_integration(updated, actor="alice", credentials={"api_key": None})
    assert "api_key" in cleared.value.errors  # required for api_key auth: clearing it is refused
    with pytest.raises(ConfigError) as unknown:
        services.update_integration(updated, actor="alice", kind="postgresql")
    assert unknown.value.errors == {"kind": ["not updatable"]}


@pytest.mark.django_db
def test_delete_keeps_history(bamboohr_server):
    make_hr(bamboohr_server)
    services.delete_integration("hr", actor="bob")
    assert not Integration.objects.filter(pk="hr").exists()
    history = IntegrationEvent.objects.filter(integration_ref="hr")
    assert history.filter(message="deleted", actor="bob").exists()
    assert history.filter(message="created").exists()
    with pytest.raises(Integration.DoesNotExist):
        services.delete_integration("hr", actor="bob")


# --- operations through Celery (eager) --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_connect_and_test_operations_report_their_outcome(celery_eager, bamboohr_server):
    make_hr(bamboohr_server)
    op = services.request_connect("hr", actor="carol")
    status = services.wait_for_operation(op, 10)
    assert status["state"] == "succeeded" and status["operation"] == "connect" and status["integration"] == "hr"
    assert Integration.objects.get(pk="hr").status == Status.CONNECTED

    bamboohr_server.fail(status=401)
    op = services.request_test("hr", actor="carol")
    status = services.operation_status(op)
    assert status["state"] == "failed"
    assert status["result"]["category"] == "auth"
    assert Integration.objects.get(pk="hr").status == Status.CONNECTED  # a test reports, it does not flip status

    with pytest.raises(services.OperationNotFound):
        services.operation_status(str(uuid.uuid4()))


@pytest.mark.django_db(transaction=True)
def test_permanent_connect_failure_is_not_retried(celery_eager, bamboohr_server):
    make_hr(bamboohr_server)
    bamboohr_server.fail(status=401)
    before = bamboohr_server.requests
    status = services.wait_for_operation(services.request_connect("hr", actor="dave"), 10)
    assert status["state"] == "failed" and status["result"]["category"] == "auth"
    assert bamboohr_server.requests - before == 1
    hr = Integration.objects.get(pk="hr")
    assert hr.status == Status.ERROR and hr.last_error.startswith("auth")
    assert bamboohr_server.api_key not in hr.last_error


@pytest.mark.django_db(transaction=True)
def test_rate_limited_connect_is_rescheduled_with_retry_after_not_slept(celery_eager, bamboohr_server, settings):
    """A Retry-After beyond the clamp comes back as retryable with retry_after: the task reschedules."""
    make_hr(bamboohr_server)
    bamboohr_server.throttle(retry_after=120, count=1)
    result = services.connect("hr", final=False)
    assert result["ok"] is False and result["retryable"] is True and result["retry_after"] >= 100
    assert Integration.objects.get(pk="hr").status == Status.DISCONNECTED  # not final: status untouched


# --- health checks and hysteresis -------------------------------------------------------------


@pytest.mark.django_db
def test_health_hysteresis_degrades_then_errors_then_recovers(bamboohr_server):
    make_hr(bamboohr_server)
    assert services.connect("hr")["ok"]

    bamboohr_server.fail(status=500)
    statuses = [services.health_check("hr")["status"] for _ in range(3)]
    assert statuses == [Status.DEGRADED, Status.DEGRADED, Status.ERROR]
    bamboohr_server.clear_faults()
    statuses = [services.health_check("hr")["status"] for _ in range(2)]
    assert statuses == [Status.ERROR, Status.CONNECTED]

    changes = list(
        IntegrationEvent.objects.filter(integration_ref="hr", type=EventType.STATUS_CHANGE)
        .order_by("created_at", "id")
        .values_list("detail__to", flat=True)
    )
    assert changes == ["connected", "degraded", "error", "connected"]
    checks = IntegrationEvent.objects.filter(integration_ref="hr", type=EventType.HEALTH_CHECK)
    assert checks.count() == 5 and checks.filter(ok=False).count() == 3


@pytest.mark.django_db
def test_one_blip_does_not_flap_to_error(bamboohr_server):
    make_hr(bamboohr_server)
    services.connect("hr")
    bamboohr_server.fail(status=500, count=1)
    assert services.health_check("hr")["status"] == Status.DEGRADED
    assert services.health_check("hr")["status"] == Status.DEGRADED
    assert services.health_check("hr")["status"] == Status.CONNECTED


@pytest.mark.django_db
def test_disconnected_integrations_are_not_checked(bamboohr_server):
    make_hr(bamboohr_server)
    before = bamboohr_server.requests
    assert services.health_check("hr") == {"ok": None, "skipped": True}
    assert bamboohr_server.requests == before


@pytest.mark.django_db
def test_dispatcher_enqueues_each_due_integration_once(bamboohr_server, redis_url, settings):
    import json

    import redis

    settings.HEALTH_CHECK_BATCH_SIZE = 1

    for n in range(3):
        make_hr(bamboohr_server, id=f"hr{n}", health_check_interval=60)
    Integration.objects.filter(pk__in=["hr0", "hr1"]).update(status=Status.CONNECTED)
    assert tasks.dispatch_health_checks.apply().get() == {"enqueued": 2}
    assert tasks.dispatch_health_checks.apply().get() == {"enqueued": 0}  # claimed: not due again for 60 s

    queued = [json.loads(raw) for raw in redis.Redis.from_url(redis_url).lrange("celery", 0, -1)]
    assert sorted((m["headers"]["task"], m["headers"]["argsrepr"]) for m in queued) == [
        ("integrations.health_check_batch", "[['hr0']]"),
        ("integrations.health_check_batch", "[['hr1']]"),
    ]


@pytest.mark.django_db
def test_prune_removes_only_old_health_events(bamboohr_server, settings):
    from datetime import timedelta

    from django.utils import timezone

    integration = make_hr(bamboohr_server)
    old = timezone.now() - timedelta(days=settings.HEALTH_EVENT_RETENTION_DAYS + 1)
    services.record_event(integration, EventType.HEALTH_CHECK, ok=True)
    stale = services.record_event(integration, EventType.HEALTH_CHECK, ok=True)
    kept_status = services.record_event(integration, EventType.STATUS_CHANGE, ok=True)
    IntegrationEvent.objects.filter(pk__in=[stale.pk, kept_status.pk]).update(created_at=old)
    assert tasks.prune_events.apply().get() == {"deleted": 1}
    assert not IntegrationEvent.objects.filter(pk=stale.pk).exists()
    assert IntegrationEvent.objects.filter(pk=kept_status.pk).exists()


# --- live connectors per process --------------------------------------------------------------


@pytest.fixture
def hr_db(tmp_path):
    path = tmp_path / "hr.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT); "
        "INSERT INTO employees (name) VALUES ('Ada'), ('Grace');"
    )
    db.commit()
    db.close()
    return path


@pytest.mark.django_db
def test_run_operation_reuses_the_connector_until_the_config_changes(hr_db):
    integration = services.create_integration(
        actor="t", id="hrdb", name="HR DB", kind="sqlite", config={"path": str(hr_db)}
    )
    with pytest.raises(ConnectorError) as refused:
        services.run_operation("hrdb", "query", "SELECT 1")
    assert refused.value.category == "config"  # disconnected: connect first
    services.connect("hrdb")
    rows = services.run_operation("hrdb", "query", "SELECT name FROM employees ORDER BY id")
    assert rows == [{"name": "Ada"}, {"name": "Grace"}]
    first = services.live_connectors.get("hrdb", 1)
    services.run_operation("hrdb", "query", "SELECT 1 AS one")
    assert services.live_connectors.get("hrdb", 1) is first

    services.update_integration(integration, actor="t", config={"path": str(hr_db), "max_rows": 1})
    assert services.live_connectors.held().get("hrdb") is None  # closed in this process on change
    assert services.run_operation("hrdb", "query", "SELECT name FROM employees ORDER BY id") == [{"name": "Ada"}]
    assert services.live_connectors.held()["hrdb"] == 2

    with pytest.raises(ConnectorError) as private:
        services.run_operation("hrdb", "_execute", "SELECT 1")
    assert private.value.category == "invalid"
    metrics = services.get_metrics("hrdb")
    assert metrics["total"] >= 4 and metrics["failed"] == 0

    services.delete_integration("hrdb", actor="t")
    assert "hrdb" not in services.live_connectors.held()


@pytest.mark.django_db
def test_health_summary_counts_what_the_user_may_see(bamboohr_server, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    stranger = django_user_model.objects.create_user("stranger")
    make_hr(bamboohr_server, id="mine", owner=owner)
    make_hr(bamboohr_server, id="theirs", owner=stranger)
    Integration.objects.filter(pk="mine").update(status=Status.ERROR)
    summary = services.health_summary(owner)
    assert summary["total"] == 1 and summary["counts"]["error"] == 1 and summary["overall"] == "unhealthy"
    assert [i["id"] for i in summary["integrations"]] == ["mine"]


@override_settings(METRICS_PUBLIC=False, METRICS_TOKEN="tok-" + "x" * 20)
@pytest.mark.django_db
def test_metrics_and_healthz_endpoints(client, django_user_model):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok-" + "x" * 20).status_code == 200
    client.force_login(django_user_model.objects.create_user("plain"))
    assert client.get("/metrics").status_code == 401
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    assert b"hub_workers_alive" in client.get("/metrics").content

    health = client.get("/healthz")
    body = health.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"]["alive"] == 0 and health.status_code == 503  # no worker in this test
