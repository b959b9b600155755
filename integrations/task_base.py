"""The base of every hub task: what each of them would otherwise repeat.

- Acknowledged late and rejected when the worker is lost (a task whose worker dies runs again), unless
  a task says otherwise (``acks_late=False`` for the at-most-once ones).
- A message delivered again after the task finished (the worker died before the ack) returns the stored
  result instead of running again.
- The soft time limit: a task that sets ``timeout_message`` returns ``{"ok": False, "category":
  "timeout", "message": ...}`` when it is reached, instead of failing.
- ``delay_on_commit`` (Celery's DjangoTask): enqueue after the current transaction commits.

``hub_task(name, ...)`` declares one: ``shared_task`` with this base, bound (the task gets ``self``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from celery.result import AsyncResult


class HubTask(DjangoTask):
    acks_late = True
    reject_on_worker_lost = True
    #: returned (with ok False and category "timeout") when the soft time limit is reached; None: it raises
    timeout_message: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request_stack.top is None:  # called directly as a function, not run by a worker or apply()
            return super().__call__(*args, **kwargs)
        # A worker (or apply()) has pushed this run's request, as it does before calling ``run`` itself.
        done = self.finished_result()
        if done is not None:
            return done
        try:
            return self.run(*args, **kwargs)
        except SoftTimeLimitExceeded:
            if self.timeout_message is None:
                raise
            return {"ok": False, "category": "timeout", "message": self.timeout_message}

    def finished_result(self) -> dict[str, Any] | None:
        """The stored result when this message is a redelivery of a run that already succeeded."""
        delivery_info = self.request.delivery_info
        if not delivery_info or not delivery_info.get("redelivered"):
            return None
        previous = AsyncResult(self.request.id, app=self.app)
        return previous.result if previous.state == "SUCCESS" and isinstance(previous.result, dict) else None


def hub_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], HubTask]:
    """``@shared_task`` with the hub's base class; the task function takes ``self`` first.

    What it makes is a task (``.delay``, ``.apply_async``, ``.delay_on_commit``), not the function.
    """
    decorator: Callable[[Callable[..., Any]], HubTask] = shared_task(name=name, base=HubTask, bind=True, **options)
    return decorator
