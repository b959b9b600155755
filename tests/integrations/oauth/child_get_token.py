"""Hub worker processes that need the integration's token at the same moment.

``python -m tests.integrations.oauth.child_get_token <integration id> <provider API url> <processes> [calls]`` sets Django up once
against the test database it is given (HUB_CHILD_DB_NAME), then forks that many worker processes. Each
opens its own database connection, builds the token provider the way a worker does, waits at a barrier
so that all ask at once, gets the token and calls the provider's API with it (``calls`` threads per
process do so at once, sharing the process's provider; default 1). One JSON line comes out: a list of
{pid, token_sha256, api_status} (or {pid, error}), one per call.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from typing import Any


def worker(integration_id: str, api_url: str, barrier: Any, results: Any, calls: int = 1) -> None:
    import threading

    from integrations.models import Integration
    from integrations.services import token_provider_for

    provider = token_provider_for(Integration.objects.get(pk=integration_id))
    barrier.wait(timeout=60)
    threads = [threading.Thread(target=call, args=(provider, api_url, results)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def call(provider: Any, api_url: str, results: Any) -> None:
    import httpx

    try:
        token = provider.get_token()
        status = httpx.get(api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code
        results.put(
            {"pid": os.getpid(), "token_sha256": hashlib.sha256(token.encode()).hexdigest(), "api_status": status}
        )
    except Exception as exc:  # reported to the test, which fails on it
        results.put({"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})


def main() -> None:
    integration_id, api_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["HUB_CHILD_DB_NAME"]
    if os.environ.get("OAUTH2_LOCK"):
        settings.OAUTH2_LOCK = os.environ["OAUTH2_LOCK"]
    import django

    django.setup()
    import httpx  # noqa: F401 - imported once here, so that forked workers start at the same speed
    from django.db import connections

    import integrations.services  # noqa: F401

    connections.close_all()  # each worker opens its own connection after the fork
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(count), context.Queue()
    processes = [
        context.Process(target=worker, args=(integration_id, api_url, barrier, results, calls)) for _ in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(count * calls)]
    for process in processes:
        process.join(timeout=30)
    print(json.dumps(outcomes), flush=True)


if __name__ == "__main__":
    main()
