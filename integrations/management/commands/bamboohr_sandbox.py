"""Run the bundled BambooHR sandbox in the foreground (a thin wrapper over ``sandbox.bamboohr``).

    python manage.py bamboohr_sandbox --port 8765 --api-key KEY --employees 200

Point a BambooHR integration at the printed URL with ``allow_insecure_loopback`` on and the key in
credentials. Faults for demos and resilience tests: ``POST /__sandbox__/faults`` with the same key,
e.g. ``{"throttle": {"retry_after": 5}}``, ``{"fail": {"status": 500, "count": 3}}``, ``{"clear": true}``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.bamboohr import BambooHRSandbox


class Command(BaseCommand):
    help = "Serve a BambooHR-compatible sandbox API with fake employees, time off and reports."
    requires_system_checks: list[str] = []  # needs neither the database nor the app's checks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8765, help="Port (0 picks a free one; default 8765).")
        parser.add_argument(
            "--api-key",
            default=os.environ.get("BAMBOOHR_SANDBOX_API_KEY"),
            help="The API key clients must send (default: $BAMBOOHR_SANDBOX_API_KEY, else a random one, printed).",
        )
        parser.add_argument("--employees", type=int, default=100, help="How many fake employees (default 100).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the fake data (same seed, same people).")
        parser.add_argument("--company", default="acme", help="Company subdomain in /api/gateway.php/{company}/v1/.")
        parser.add_argument(
            "--bearer-token",
            action="append",
            default=[],
            help="An OAuth2 access token to accept as well (repeatable).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        if not 0 <= options["employees"] <= 1_000_000:
            raise CommandError("--employees must be between 0 and 1000000")
        if options["api_key"] is not None and len(options["api_key"].strip()) < 8:
            raise CommandError("--api-key must be at least 8 characters")
        generated = options["api_key"] is None
        try:
            sandbox = BambooHRSandbox(
                api_key=options["api_key"],
                employees=options["employees"],
                host=options["host"],
                port=options["port"],
                seed=options["seed"],
                company=options["company"],
                bearer_tokens=options["bearer_token"] or None,
            )
            sandbox.start()
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the sandbox on {options['host']}:{options['port']}: {exc}") from None

        stopped = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"BambooHR sandbox ({options['employees']} employees) at {sandbox.url}")
        self.stdout.write(f"legacy path: {sandbox.gateway_url}")
        if generated:
            # A key made up for this run: the user needs to see it to configure the integration.
            self.stdout.write(f"API key: {sandbox.api_key}")
        self.stdout.write("Press Ctrl-C to stop.")
        sys.stdout.flush()
        try:
            stopped.wait()
        finally:
            sandbox.stop()
            self.stdout.write("BambooHR sandbox stopped.")
