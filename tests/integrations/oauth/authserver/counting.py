"""Server-side counters of token-endpoint requests, by grant type and HTTP status.

The concurrency test reads them: however many hub processes raced, the provider must have seen
exactly one ``refresh_token`` request.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qs

from django.http import HttpRequest, HttpResponse, JsonResponse

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    with _lock:
        _counts.clear()


class CountTokenRequestsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        grant = None
        if request.method == "POST" and request.path == "/o/token/":
            grant = parse_qs(request.body.decode()).get("grant_type", ["?"])[0]
        response = self.get_response(request)
        if grant is not None:
            with _lock:
                _counts[grant] += 1
                _counts[f"{grant}:{response.status_code}"] += 1
        elif request.path == "/api/me":
            with _lock:
                _counts[f"resource:{response.status_code}"] += 1
        return response


def stats_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        reset()
    return JsonResponse(snapshot())
