"""The base of the hub's tasks (integrations/task_base.py): what each task used to repeat."""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from integrations.task_base import hub_task


@hub_task("tests.task_base.slow", timeout_message="took too long", soft_time_limit=1, time_limit=2)
def slow(self: Any) -> dict[str, Any]:
    raise SoftTimeLimitExceeded()  # what the worker raises in the task when the soft limit passes


@hub_task("tests.task_base.strict", soft_time_limit=1, time_limit=2)
def strict(self: Any) -> dict[str, Any]:
    raise SoftTimeLimitExceeded()


@hub_task("tests.task_base.echo")
def echo(self: Any, value: int) -> dict[str, Any]:
    return {"value": value, "retries": self.request.retries, "eager": bool(self.request.is_eager)}


def test_soft_time_limit_returns_the_timeout_result():
    assert slow.apply().get() == {"ok": False, "category": "timeout", "message": "took too long"}


def test_without_a_timeout_message_the_limit_fails_the_task():
    result = strict.apply()
    assert result.state == "FAILURE"
    assert isinstance(result.result, SoftTimeLimitExceeded)


def test_the_task_sees_its_own_request_and_can_be_called_directly():
    assert echo.apply(args=[3]).get() == {"value": 3, "retries": 0, "eager": True}
    assert echo(4)["value"] == 4
    assert echo.acks_late is True and echo.reject_on_worker_lost is True
