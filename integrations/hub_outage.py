"""The hub's own database or Redis unreachable: every request still gets an answer with a category.

A view that fails because the hub's database (``OperationalError``, ``InterfaceError``: the connection,
not the query) or Redis (``RedisError``) is down is
answered 503 with ``Retry-After`` and the envelope the tools use — ``{"ok": false, "error": {"category":
"unavailable", "message", "retry_after", "permanent": false}}`` (plus DRF's ``detail``) — never Django's
500 page. DRF views get it from ``exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``), which also
puts a Retry-After on every other 503; other views from ``HubOutageMiddleware`` (JSON for the API and
for clients that ask for JSON, a line of text for pages).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from connectors.errors import wait_seconds

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds: what a caller is told to wait while the hub's own stores are down
# A database that cannot be reached, not a query that failed (an IntegrityError is a bug, not an outage).
DATABASE_DOWN = (OperationalError, InterfaceError)
OUTAGES = (*DATABASE_DOWN, RedisError)


def what_failed(exc: BaseException) -> str:
    return "database" if isinstance(exc, DatabaseError) else "Redis"


def body(exc: BaseException) -> dict[str, Any]:
    message = f"The hub's {what_failed(exc)} is unreachable; try again in {wait_seconds(RETRY_AFTER)} s."
    return {
        "ok": False,
        "error": {"category": "unavailable", "message": message, "retry_after": RETRY_AFTER, "permanent": False},
        "detail": message,
    }


def _note(exc: BaseException) -> None:
    log.warning("request refused: the hub's %s is unreachable (%s: %s)", what_failed(exc), type(exc).__name__, exc)
    if isinstance(exc, DatabaseError):
        close_old_connections()  # a connection the server dropped is not reused by the next request


def response(exc: BaseException) -> Response:
    """The DRF response for an outage of the hub's own stores."""
    _note(exc)
    return Response(body(exc), status=503, headers={"Retry-After": str(wait_seconds(RETRY_AFTER))})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OUTAGES):
        return response(exc)
    answer = drf_exception_handler(exc, context)
    if answer is not None and answer.status_code == 503 and "Retry-After" not in answer:
        answer["Retry-After"] = str(wait_seconds(RETRY_AFTER))  # every "unavailable" says when to come back
    return answer


class HubOutageMiddleware:
    """The same answer for views outside DRF (pages, /healthz's neighbours, the admin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OUTAGES):
            return None
        _note(exc)
        wants_json = request.path.startswith(("/api/", "/mcp")) or "json" in request.headers.get("Accept", "")
        content = body(exc)
        answer = (
            HttpResponse(json.dumps(content), status=503, content_type="application/json")
            if wants_json
            else HttpResponse(content["detail"] + "\n", status=503, content_type="text/plain; charset=utf-8")
        )
        answer["Retry-After"] = str(wait_seconds(RETRY_AFTER))
        return answer
