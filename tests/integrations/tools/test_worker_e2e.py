"""A real Celery worker killed with SIGKILL after the HRIS write but before the result is stored:
the retry with the same idempotency key finds the employee and never creates a second one."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest
from django.utils import timezone

from integrations.tools.invocation import Principal, invoke
from integrations.tools.models import IntentState, ToolCall, WriteIntent
from tests.factories import unique
from tests.runtime_fixtures import wait_until

# Seconds a call may run in a worker (the hard limit is 5 s later): room for the two slowed requests,
# so that it is the SIGKILL, not the time limit, that interrupts the call.
TIMEOUT = 15
LEASE = 22  # a pending intent belongs to its attempt this long: longer than the hard limit


# Slow (two worker processes, a lease to wait out): CI runs it with the SQLite hub database only.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_after_the_write_leaves_one_employee(
    fresh_sandbox, make_hr_integration, make_token, celery_worker_factory, settings
):
    settings.TOOLS_TIMEOUT_SECONDS = TIMEOUT
    settings.TOOLS_WRITE_LEASE_SECONDS = LEASE
    worker_env = {"TOOLS_TIMEOUT_SECONDS": str(TIMEOUT), "TOOLS_WRITE_LEASE_SECONDS": str(LEASE)}
    hr = make_hr_integration(fresh_sandbox)
    token, _raw = make_token(hr, access="write", name="retrying-agent")
    agent = Principal.for_token(token)
    doomed = celery_worker_factory("doomed", concurrency=1, **worker_env)

    last_name = unique("Shepherd")
    key = unique("kill-key")
    arguments = {
        "connector_id": hr.id,
        "entity_type": "employee",
        "idempotency_key": key,
        "data": {"firstName": "Alan", "lastName": last_name, "department": "Engineering"},
    }
    employees_before = len(fresh_sandbox.company.employees)

    def created() -> list[int]:
        return [eid for eid, rec in fresh_sandbox.company.employees.items() if rec.get("lastName") == last_name]

    # Every answer now takes 3 s: the worker's first request (its connect probe) returns after 3 s,
    # then its POST /employees sits in the sandbox for 3 s more before the employee is written.
    sent = fresh_sandbox.requests
    fresh_sandbox.slow(3.0)
    first = invoke("create_hris_record", arguments, agent, via="rest", wait=False)
    assert first["status"] == "running"
    wait_until(lambda: WriteIntent.objects.filter(key=key).exists(), 30, what="the write intent")
    wait_until(lambda: fresh_sandbox.requests > sent, 30, what="the worker's connect probe")
    time.sleep(1.5)  # the POST follows the probe at once (a loaded machine may take a while): in flight now
    assert created() == []
    doomed.signal(signal.SIGKILL)  # the whole worker: main process and pool child
    wait_until(lambda: not doomed.alive(), 10, what="the worker to die")

    # The HR system still completes the request it had received: the employee exists, but no
    # process is left to store the outcome.
    wait_until(created, 15, what="the sandbox to write the employee (was the worker killed before its POST?)")
    fresh_sandbox.slow(0)
    employee_id = str(created()[0])
    intent = WriteIntent.objects.get(key=key)
    assert intent.state == IntentState.PENDING and intent.result is None

    # A retry while the lease runs is told to come back later, and sends nothing.
    now = timezone.now()
    assert intent.lease_until > now, "the lease must outlast the kill for this check"
    requests_before = fresh_sandbox.requests
    early = invoke("create_hris_record", arguments, agent, via="rest", inline=True)
    assert early["ok"] is False and early["error"]["category"] == "conflict"
    assert 0 < early["error"]["retry_after"] <= LEASE
    assert fresh_sandbox.requests == requests_before

    # After the lease, the retry (in a new worker) looks the record up instead of writing again.
    celery_worker_factory("survivor", concurrency=1, **worker_env)
    wait_until(
        lambda: timezone.now() > WriteIntent.objects.get(key=key).lease_until,
        LEASE + 5,
        interval=0.2,
        what="the lease to end",
    )
    retry = invoke("create_hris_record", arguments, agent, via="rest", timeout=60)
    assert retry["ok"] is True, retry
    assert retry["result"]["id"] == employee_id
    assert retry["result"]["recovered"] is True
    assert created() == [int(employee_id)]
    assert len(fresh_sandbox.company.employees) == employees_before + 1
    assert WriteIntent.objects.get(key=key).state == IntentState.SUCCEEDED

    # And once more: the stored outcome, no request at all.
    requests_before = fresh_sandbox.requests
    again = invoke("create_hris_record", arguments, agent, via="rest", timeout=60)
    assert again["result"]["id"] == employee_id and again["result"]["replayed"] is True
    assert fresh_sandbox.requests == requests_before
    assert ToolCall.objects.filter(idempotency_key=key).count() == 4  # every attempt is in the trail
    assert ToolCall.objects.get(pk=retry["call_id"]).task_id  # the retry ran in the new worker


GRACE = 4  # TOOLS_INFLIGHT_GRACE_SECONDS for this test: how long a dead attempt's request may still land


@pytest.mark.django_db(transaction=True)
def test_a_write_whose_worker_was_killed_is_retried_within_ten_seconds_and_runs_once(
    fresh_sandbox, make_hr_integration, make_token, celery_worker_factory, settings
):
    """Issue 24: the retry does not wait out the lease (timeout + 20 s) once the hub knows the worker is
    gone: its attempt stops saying it is alive, and after the in-flight grace the retry looks first."""
    settings.TOOLS_TIMEOUT_SECONDS = TIMEOUT
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = GRACE
    worker_env = {"TOOLS_TIMEOUT_SECONDS": str(TIMEOUT), "TOOLS_INFLIGHT_GRACE_SECONDS": str(GRACE)}
    hr = make_hr_integration(fresh_sandbox)
    token, _raw = make_token(hr, access="write", name="quick-retry-agent")
    agent = Principal.for_token(token)
    doomed = celery_worker_factory("doomed-quick", concurrency=1, **worker_env)

    last_name = unique("Hopper")
    arguments = {
        "connector_id": hr.id,
        "entity_type": "employee",
        "idempotency_key": unique("quick-key"),
        "data": {"firstName": "Grace", "lastName": last_name, "department": "Engineering"},
    }

    def created() -> list[int]:
        return [eid for eid, rec in fresh_sandbox.company.employees.items() if rec.get("lastName") == last_name]

    def creates() -> int:  # create requests the sandbox handled (counted as it writes, after the delay)
        return int(fresh_sandbox.stats()["by_route"].get("create-employee", 0))

    # Each answer takes 2 s: the worker's connect probe, then its POST /employees, in flight at the kill.
    sent = fresh_sandbox.requests
    fresh_sandbox.slow(2.0)
    first = invoke("create_hris_record", arguments, agent, via="rest", wait=False)
    assert first["status"] == "running"
    wait_until(lambda: fresh_sandbox.requests > sent, 30, interval=0.02, what="the worker's connect probe")
    time.sleep(0.7)  # the POST follows the probe at once: in flight now
    assert creates() == 0 and created() == []
    doomed.signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: not doomed.alive(), 5, what="the worker to die")
    fresh_sandbox.slow(0)
    intent = WriteIntent.objects.get(key=arguments["idempotency_key"])
    assert intent.state == IntentState.PENDING
    assert intent.lease_until > timezone.now() + dt.timedelta(seconds=20)  # the lease alone would make it wait

    # The agent retries as told (conflict, retry_after) until the write goes through.
    answers = []
    while time.monotonic() - killed < 15:
        answer = invoke("create_hris_record", arguments, agent, via="rest", inline=True)
        answers.append(answer)
        if answer["ok"] or answer["error"]["category"] != "conflict":
            break
        assert 1 <= answer["error"]["retry_after"] <= GRACE + 1, answer
        time.sleep(min(answer["error"]["retry_after"], 1.0))
    done = time.monotonic() - killed
    assert answers[-1]["ok"] is True, answers[-1]
    assert done < 10, f"the retry went through {done:.1f} s after the kill"
    assert answers[-1]["result"]["recovered"] is True  # it looked first and found the dead worker's employee
    assert created() == [int(answers[-1]["result"]["id"])]  # one employee
    assert creates() == 1  # and one create request: the retry did not send another
    assert WriteIntent.objects.get(pk=intent.pk).state == IntentState.SUCCEEDED
