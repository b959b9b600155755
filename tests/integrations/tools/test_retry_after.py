"""Every refusal with a wait says it as a Retry-After header of at least 1 s, and never "0 s" (issue 24).

The breaker's last milliseconds: a call refused 30 ms before the cool-down ends used to be answered
``retry_after: 0.0`` with no header and "calls are refused for 0 s". The breaker's clock is set to that
instant (no sleeping on luck), and the refusal goes the way a worker's does: ConnectorError →
ToolError → envelope → the REST response.
"""

from __future__ import annotations

import re

import pytest

from connectors.circuit import MemoryCircuitBreaker
from connectors.errors import ConnectorError
from integrations.tools.api import envelope_response
from integrations.tools.errors import ToolError

ZERO_SECONDS = re.compile(r"(?<![0-9.])0(\.0+)? s\b")  # "0 s", "0.0 s"; not "10 s" or "1.0 s"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("left", [0.03, 0.0004, 0.49, 1.2])
def test_a_refusal_in_the_breakers_last_milliseconds_has_retry_after_of_at_least_one_second(left: float) -> None:
    clock = Clock()
    breaker = MemoryCircuitBreaker(threshold=1, cooldown=30.0, clock=clock)
    breaker.record_failure("hr")
    clock.now = 30.0 - left  # the cool-down is about to end
    with pytest.raises(ConnectorError) as refused:
        breaker.before_call("hr")
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= left + 0.001
    assert not ZERO_SECONDS.search(refused.value.message), refused.value.message

    envelope = ToolError.from_connector(refused.value).envelope(call_id=7)
    response = envelope_response(envelope)
    assert response.status_code == 200 and response.data["error"]["category"] == "unavailable"
    assert response.data["error"]["retry_after"] >= 1.0
    assert int(response["Retry-After"]) >= 1
    assert int(response["Retry-After"]) >= refused.value.retry_after  # rounded up, never down
    assert not ZERO_SECONDS.search(response.data["error"]["message"])

    clock.now = 30.0  # and at the end the call goes through (the probe)
    breaker.before_call("hr")


@pytest.mark.parametrize("category", ["unavailable", "rate_limited", "quota_exceeded", "conflict", "timeout"])
def test_every_category_with_a_wait_gets_the_header(category: str) -> None:
    response = envelope_response(ToolError(category, "wait a moment", retry_after=0.0).envelope())
    assert response["Retry-After"] == "1" and response.data["error"]["retry_after"] == 1.0
    longer = envelope_response(ToolError(category, "wait", retry_after=12.01).envelope())
    assert longer["Retry-After"] == "13"  # ceil: a client that waits what it is told is never early
    without = envelope_response(ToolError(category, "no wait known").envelope())
    assert "Retry-After" not in without and without.data["error"]["retry_after"] is None
