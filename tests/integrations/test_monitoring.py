"""/metrics after real activity: requests, rate limiting (the hub's bucket and the provider's 429),
the broker's queue backlog and heartbeats, as the alert rules and the Grafana dashboard read them.

Connectors are real (the in-process BambooHR sandbox), Redis is real (this run's REDIS_URL database,
also the Celery broker here); no worker runs, so the tasks sent stay in the queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from celery import current_app
from prometheus_client.parser import text_string_to_metric_families

from connectors.errors import Category, ConnectorError
from integrations import services
from tests import factories
from tests.runtime_fixtures import wait_until

Sample = tuple[str, frozenset[tuple[str, str]]]
OPS = Path(__file__).resolve().parents[2] / "ops"
# Series Prometheus makes itself (not the hub's /metrics).
PROMETHEUS_OWN = {"up"}
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


def scrape(client: Any) -> dict[Sample, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def _fast_connectors(settings: Any, clean_redis: None, redis_url: str) -> Iterator[None]:
    settings.CONNECTOR_MAX_RETRIES = 0  # one attempt per call: each refusal is counted once
    yield
    services.live_connectors.close_all()
    redis.Redis.from_url(redis_url).flushdb()  # the tasks sent to the broker below


@pytest.fixture
def staff_client(client: Any, db: None) -> Any:
    client.force_login(factories.staff("metrics-reader"))
    return client


@pytest.mark.usefixtures("_fast_connectors")
def test_metrics_count_rate_limiting_queue_backlog_and_requests(staff_client: Any, hr_sandbox: Any) -> None:
    factories.bamboohr(
        "limited",
        sandbox=hr_sandbox,
        connect=True,
        config={"rate_limit": {"requests": 100, "per_seconds": 3600, "max_wait_seconds": 0}},
    )
    services.run_operation("limited", "get_directory")
    hr_sandbox.throttle(retry_after=60, count=1)  # the provider's 429: the hub pauses its bucket 60 s
    try:
        with pytest.raises(ConnectorError) as provider:
            services.run_operation("limited", "get_directory")
        with pytest.raises(ConnectorError) as bucket:  # paused, and this call may not wait
            services.run_operation("limited", "get_directory")
    finally:
        hr_sandbox.clear_faults()
    assert provider.value.category == bucket.value.category == Category.RATE_LIMITED
    for _ in range(3):  # no worker: they wait in the broker
        current_app.send_task("integrations.prune_events")

    def counted() -> dict[Sample, float] | None:
        samples = scrape(staff_client)
        refused = value(
            samples, "hub_integration_rate_limit_refusals_total", integration="limited", kind="bamboohr", source="hub"
        )
        return samples if refused else None

    samples = wait_until(counted, 5, what="the refusals to reach Redis")
    labels = {"integration": "limited", "kind": "bamboohr"}
    assert value(samples, "hub_integration_rate_limit_refusals_total", **labels, source="hub") == 1
    assert value(samples, "hub_integration_rate_limit_refusals_total", **labels, source="provider") == 1
    successes = value(samples, "hub_integration_requests_total", **labels, outcome="success")
    assert successes is not None and successes >= 2  # connect's round trips and the call that passed
    assert value(samples, "hub_integration_requests_total", **labels, outcome="failure") == 1  # the 429
    # every attempt asked for a token: the requests made, and the one the paused bucket refused
    assert value(samples, "hub_integration_rate_limit_acquires_total", **labels) == successes + 1 + 1
    assert value(samples, "hub_integration_status", **labels, status="connected") == 1
    assert value(samples, "hub_queue_messages", queue="celery") == 3
    assert value(samples, "hub_workers_alive") == 0 and value(samples, "hub_beat_alive") == 0


@pytest.mark.usefixtures("_fast_connectors")
def test_an_empty_queue_reads_zero(staff_client: Any) -> None:
    assert value(scrape(staff_client), "hub_queue_messages", queue="celery") == 0


def promql_metric_names(expr: str) -> set[str]:
    """The series names an expression reads: what is left once strings, label matchers and lists,
    ranges, variables, numbers, function names and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # dashboard variables
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if not call and word not in _PROMQL_WORDS:
            names.add(word)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((OPS / "grafana" / "integration-hub.json").read_text(encoding="utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert metric, variable["definition"]
            queries.append(metric.group(1))
    return queries


def rule_queries() -> tuple[list[str], set[str]]:
    """Every rule's expression, and the names the recording rules define."""
    groups = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return [rule["expr"] for rule in rules], {rule["record"] for rule in rules if "record" in rule}


def test_the_name_finder_sees_series_and_skips_the_rest() -> None:
    expr = (
        'sum by (integration, le) (rate(hub_a_total{outcome="failure",integration=~"$integration"}[5m])) '
        "/ ignoring(source) group_left hub:b:ratio > 0.5 and on(x) up == 0"
    )
    assert promql_metric_names(expr) == {"hub_a_total", "hub:b:ratio", "up"}


@pytest.mark.usefixtures("_fast_connectors")
def test_dashboard_and_alert_rules_query_only_what_metrics_serves(staff_client: Any, hr_sandbox: Any) -> None:
    factories.bamboohr("watched", sandbox=hr_sandbox, connect=True)
    services.run_operation("watched", "get_directory")
    served = {name for name, _labels in wait_until(lambda: scrape(staff_client), 5, what="a scrape")}
    expressions, recorded = rule_queries()
    rule_names = set().union(*(promql_metric_names(expr) for expr in expressions))
    dashboard_names = set().union(*(promql_metric_names(expr) for expr in dashboard_queries()))
    # the alert rules read the hub's series, their own recordings and Prometheus's ``up``
    assert rule_names - served - recorded - PROMETHEUS_OWN == set()
    assert dashboard_names - served == set()  # the dashboard works without the rules loaded
    assert len(dashboard_names) >= 8 and len(rule_names - recorded) >= 6  # the finder found them


def test_dashboard_panels_are_distinct_and_read_the_chosen_prometheus() -> None:
    dashboard = json.loads((OPS / "grafana" / "integration-hub.json").read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "integration-hub"
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {target["datasource"]["uid"] for target in panel["targets"]} == {"${datasource}"}, panel["title"]
