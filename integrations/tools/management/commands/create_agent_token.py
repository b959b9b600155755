"""Create an agent API token scoped to integrations and to read or write; print it once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from integrations.models import Integration
from integrations.tools.models import Access, AgentToken


class Command(BaseCommand):
    help = (
        "Create an agent token for the REST tools API and the MCP server. Only its hash is stored: "
        "the token is printed once, now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who or what uses it, e.g. hr-assistant.")
        parser.add_argument(
            "--integration",
            "-i",
            action="append",
            required=True,
            dest="integrations",
            metavar="ID",
            help="An integration the token may use (repeat for several).",
        )
        parser.add_argument("--write", action="store_true", help="Allow write tools (default: read only).")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after this many days.")
        parser.add_argument("--created-by", default=None, help="User name recorded as the token's creator.")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["integrations"]
        found = list(Integration.objects.filter(pk__in=ids))
        missing = sorted(set(ids) - {i.pk for i in found})
        if missing:
            raise CommandError(f"no such integration: {', '.join(missing)}")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1")
        creator = None
        if options["created_by"]:
            creator = get_user_model().objects.filter(username=options["created_by"]).first()
            if creator is None:
                raise CommandError(f"no such user: {options['created_by']}")
        token, raw = AgentToken.issue(
            name=options["name"],
            access=Access.WRITE if options["write"] else Access.READ,
            integrations=found,
            created_by=creator,
            expires_at=timezone.now() + dt.timedelta(days=days) if days else None,
        )
        self.stderr.write(
            f"Created agent token #{token.pk} {token.name!r} ({token.access}) for {', '.join(sorted(ids))}. "
            "It is shown once; store it now:"
        )
        self.stdout.write(raw)
