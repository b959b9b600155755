"""Operation records (keyed by Celery task id) in Redis: what was asked, on which integration, by whom,
and an error when the task could not even be enqueued. The task's own state is in the result backend,
read through the current Celery app (this module never imports config.celery).
"""

from __future__ import annotations

import contextlib
import time
from typing import cast

import redis
from celery import current_app
from celery.result import AsyncResult
from django.conf import settings

from connectors.errors import Category, ConnectorError
from integrations.redis_clients import redis_client


def _unavailable() -> ConnectorError:
    return ConnectorError(
        "the task queue (Redis at REDIS_URL) is unreachable; is redis-server running?",
        category=Category.UNAVAILABLE,
        permanent=False,
        retry_after=5,
    )


def _op_key(operation_id: str) -> str:
    return f"hub:op:{operation_id}"


def remember_operation(operation_id: str, operation: str, integration_id: str, actor: str) -> None:
    try:
        client = redis_client()
        client.hset(
            _op_key(operation_id),
            mapping={"operation": operation, "integration": integration_id, "actor": actor, "created": time.time()},
        )
        client.expire(_op_key(operation_id), int(settings.CELERY_RESULT_EXPIRES))
    except redis.RedisError:
        raise _unavailable() from None


def fail_operation(operation_id: str, message: str) -> None:
    with contextlib.suppress(redis.RedisError):
        redis_client().hset(_op_key(operation_id), "error", message)


def operation_record(operation_id: str) -> dict[str, str] | None:
    try:
        raw = cast(dict[bytes, bytes], redis_client().hgetall(_op_key(operation_id)))
    except redis.RedisError:
        raise _unavailable() from None
    if not raw:
        return None
    return {k.decode(): v.decode() for k, v in raw.items()}


def task_result(operation_id: str) -> AsyncResult:
    """The operation's task as the result backend has it (state, and result or exception)."""
    return AsyncResult(operation_id, app=current_app)
