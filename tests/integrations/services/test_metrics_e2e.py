"""N requests made by two worker processes: the API and /metrics (served by Daphne) both count all N."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from integrations import services
from integrations.tools.invocation import Principal, invoke
from integrations.tools.models import Outcome, ToolCall
from tests.runtime_fixtures import wait_until

pytestmark = pytest.mark.slow

METRICS_TOKEN = "runtime-metrics-token-0123456789"
N = 40


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    return {"METRICS_TOKEN": METRICS_TOKEN}


def scrape(url: str, integration_id: str) -> dict[str, float]:
    body = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert body.status_code == 200, body.text
    figures = {"requests": 0.0, "latency_count": 0.0, "health": -1.0}
    for family in text_string_to_metric_families(body.text):
        for sample in family.samples:
            if sample.labels.get("integration") != integration_id:
                continue
            if sample.name == "hub_integration_requests_total":
                figures["requests"] += sample.value
            elif sample.name == "hub_integration_request_latency_seconds_count":
                figures["latency_count"] = sample.value
            elif sample.name == "hub_integration_health":
                figures["health"] = sample.value
    return figures


def test_requests_from_two_workers_are_counted_once_each_everywhere(
    clean_redis, celery_worker_factory, daphne_server, staff_user, pg_url
):
    from knox.models import AuthToken

    first = celery_worker_factory("alpha", concurrency=1)
    second = celery_worker_factory("beta", concurrency=1)
    pg = urlparse(pg_url)
    services.create_integration(
        actor=staff_user,
        id="counted",
        name="Counted",
        kind="postgresql",
        auth_type="basic",
        config={
            "host": pg.hostname,
            "port": pg.port or 5432,
            "database": pg.path.lstrip("/"),
            "username": pg.username or "postgres",
            "pool_size": 1,
        },
        credentials={"password": "unused-with-trust-auth"},
    )
    op = services.request_connect("counted", actor=staff_user)
    assert services.wait_for_operation(op, 30)["state"] == "succeeded"
    api = httpx.Client(
        base_url=daphne_server.url,
        timeout=10,
        headers={"Authorization": f"Token {AuthToken.objects.create(staff_user)[1]}"},
    )

    def api_total() -> int:
        response = api.get("/api/integrations/counted/metrics")
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    baseline = wait_until(lambda: api_total() or None, 10, what="the connect probe to be counted")
    assert scrape(daphne_server.url, "counted")["requests"] == baseline

    # N agent tool calls, each run by whichever worker takes it; each sleeps a little so that both
    # workers take a share.
    principal = Principal.for_user(staff_user)
    query = {"connector_id": "counted", "query": "SELECT pg_sleep(0.02) AS slept"}
    calls = [invoke("query_database", query, principal, via="rest", wait=False) for _ in range(N)]
    assert all(call["status"] == "running" for call in calls), calls[:3]
    ids = [call["call_id"] for call in calls]
    wait_until(
        lambda: not ToolCall.objects.filter(pk__in=ids, outcome=Outcome.RUNNING).exists(), 60, what="the calls to end"
    )
    outcomes = list(ToolCall.objects.filter(pk__in=ids).values_list("outcome", "error_message"))
    assert outcomes == [(Outcome.OK, "")] * N, outcomes[:3]
    for worker in (first, second):
        assert "integrations.tools.run[" in worker.log_path.read_text(), f"{worker.name} ran none"

    wait_until(lambda: api_total() == baseline + N, 10, what=f"the API to count {baseline + N}")
    assert services.get_metrics("counted")["total"] == baseline + N
    assert services.get_metrics("counted")["failed"] == 0
    figures = wait_until(
        lambda: (f := scrape(daphne_server.url, "counted"))["latency_count"] == baseline + N and f,
        10,
        what="the latency histogram to catch up",
    )
    assert figures["requests"] == baseline + N
    assert figures["health"] == 1.0


def test_metrics_endpoint_is_not_open_to_the_world(clean_redis, daphne_server, staff_user):
    anonymous = httpx.get(f"{daphne_server.url}/metrics", timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.get(f"{daphne_server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    right = httpx.get(f"{daphne_server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert right.status_code == 200 and "hub_workers_alive" in right.text
