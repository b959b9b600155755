"""Load: 50 tool calls at once, through the REST API, over two workers, against one rate-limited integration.

The bucket holds 8 tokens and refills one every 450 s, so exactly 8 requests may reach BambooHR in
this test, whatever the number of workers and pool processes: the sandbox counts what arrives. Every
call comes back (a result, or rate_limited / timeout with a retry time), and the audit trail holds all 50.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.resilience.conftest import Hub, Report
from tests.resilience.helpers import Call, agent_token, call_tool, connect, create

pytestmark = pytest.mark.slow

CALLS = 50
BURST = 8


def test_fifty_concurrent_calls_hold_the_rate_limit_exactly(hub: Hub, report: Report):
    from integrations.tools.models import ToolCall

    # A BambooHR of its own: the hub's sandbox also serves the other tests' scheduled checks.
    target = hub.new_sandbox()
    api = hub.api(hub.people.staff)
    create(
        api,
        id="hr_load",
        kind="bamboohr",
        auth_type="api_key",
        config={
            "subdomain": "acme",
            "base_url": target.base_url,
            "allow_insecure_loopback": True,
            "timeout_seconds": 5,
            "rate_limit": {"requests": BURST, "per_seconds": BURST * 450, "burst": BURST, "max_wait_seconds": 2},
        },
        credentials={"api_key": target.api_key},
        health_check_interval=3600,
    )
    connect(api, "hr_load")
    assert len(hub.live_workers()) >= 2
    token = agent_token("hr_load")
    # A full bucket and zeroed counters: from here on, the sandbox sees exactly what the limiter admits.
    client = redis.Redis.from_url(hub.redis_url)
    client.delete("hub:ratelimit:hr_load")
    client.close()
    hub.sandbox_stats(reset=True, sandbox=target)

    gate = threading.Barrier(CALLS)

    def one(_: int) -> Call:
        gate.wait(30)
        return call_tool(
            hub.url, token, "query_hris", {"connector_id": "hr_load", "resource": "employees", "limit": 5}, timeout=30
        )

    with report.fault(f"{CALLS} concurrent tool calls over two workers against a limit of {BURST} requests"):
        with ThreadPoolExecutor(CALLS) as pool:
            calls = list(pool.map(one, range(CALLS)))
        report.requests(len(calls), sum(1 for c in calls if c.lost))

        assert [c.lost for c in calls if c.lost] == []
        outcomes = [("ok" if c.ok else c.category) for c in calls]
        assert set(outcomes) <= {"ok", "rate_limited", "timeout"}, outcomes
        for call in calls:
            if call.category == "rate_limited":
                assert call.status == 429 and "rate limit" in call.message, call

        stats = hub.sandbox_stats(sandbox=target)
        # Exactly the bucket: not one request more (the limit holds across processes), not one less
        # (no token is taken without a request being sent).
        assert stats["requests"] == BURST, stats
        # Each successful call is one listing (a custom report); the other requests were the connection
        # probes (meta/fields) of pool processes that had not used this integration yet.
        probes = stats["by_route"].get("list-fields", 0)
        assert stats["requests"] - probes == outcomes.count("ok") >= 1, (stats, outcomes)

        rows = ToolCall.objects.filter(integration_ref="hr_load")
        assert rows.count() == CALLS and not rows.filter(finished_at__isnull=True).exists()
        assert rows.filter(outcome="ok").count() == outcomes.count("ok")
        assert rows.filter(error_category="rate_limited").count() == outcomes.count("rate_limited")

        # Both workers took calls.
        task_ids = set(rows.exclude(task_id="").values_list("task_id", flat=True))
        served = {}
        for worker in hub.live_workers():
            text = worker.log_path.read_text(errors="replace")
            served[worker.name] = len(
                task_ids & set(re.findall(r"integrations\.tools\.run\[([0-9a-f-]+)\] received", text))
            )
        assert sum(served.values()) == len(task_ids) and all(served.values()), served
