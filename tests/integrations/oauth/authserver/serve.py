"""Run the test authorization server: ``python -m tests.integrations.oauth.authserver.serve <sqlite-file>``.

Migrates its own database, registers the test user and client applications, binds a free loopback
port and prints ``{"port": N}`` on one line once it accepts connections.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ["AUTHSERVER_DB"] = sys.argv[1]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.integrations.oauth.authserver.settings"
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    from tests.integrations.oauth.authserver import clients

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user(clients.PROVIDER_USER, password=clients.PROVIDER_PASSWORD)
    Application.objects.create(
        name="Integration Hub (authorization code)",
        client_id=clients.CODE_CLIENT_ID,
        client_secret=clients.CODE_CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=clients.HUB_REDIRECT_URI,
        user=user,
        algorithm=Application.RS256_ALGORITHM if os.environ.get("AUTHSERVER_OIDC") == "1" else Application.NO_ALGORITHM,
    )
    Application.objects.create(
        name="Integration Hub (client credentials)",
        client_id=clients.CC_CLIENT_ID,
        client_secret=clients.CC_CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        user=user,
    )

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.set_app(get_wsgi_application())
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
