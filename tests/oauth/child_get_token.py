"""One hub worker process that needs the integration's token: ``python -m tests.oauth.child_get_token <id>``.

It sets Django up against the test database it is given (HUB_CHILD_DB_NAME), builds the token provider
the way a worker does, prints ``ready``, waits for ``go`` on stdin (so that all processes ask at once),
then gets the token, calls the provider's API with it and prints one JSON line about the outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def main() -> None:
    integration_id, api_url = sys.argv[1], sys.argv[2]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["HUB_CHILD_DB_NAME"]
    if os.environ.get("OAUTH2_LOCK"):
        settings.OAUTH2_LOCK = os.environ["OAUTH2_LOCK"]
    import django

    django.setup()
    import httpx

    from integrations.models import Integration
    from integrations.oauth import token_provider_for

    provider = token_provider_for(Integration.objects.get(pk=integration_id))
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        token = provider.get_token()
    except Exception as exc:  # reported to the test, which fails on it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
    status = httpx.get(api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code
    print(json.dumps({"token_sha256": hashlib.sha256(token.encode()).hexdigest(), "api_status": status}), flush=True)


if __name__ == "__main__":
    main()
