"""Create an agent API token and print it once.

``--profile P``: the token gets profile P's tools, grants, data rules and quotas. The older form
(``--integration ID ... [--write]``) still works: it generates a profile with just that scope.
"""

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
            dest="integrations",
            metavar="ID",
            help="Without --profile: an integration the token may use (repeat for several); a profile "
            "with that scope is generated.",
        )
        parser.add_argument("--profile", "-p", default=None, help="The agent profile (name or id) of the token.")
        parser.add_argument("--write", action="store_true", help="Allow write tools (default: read only).")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after this many days.")
        parser.add_argument("--created-by", default=None, help="User name recorded as the token's creator.")

    def handle(self, *args: Any, **options: Any) -> None:
        from integrations.agents.models import AgentProfile

        ids: list[str] = options["integrations"] or []
        profile = None
        if options["profile"]:
            if ids or options["write"]:
                raise CommandError("--profile sets the scope: leave out --integration and --write")
            ref = options["profile"]
            profile = AgentProfile.objects.filter(name=ref).first() or (
                AgentProfile.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
            )
            if profile is None:
                raise CommandError(f"no such agent profile: {ref}")
        elif not ids:
            raise CommandError("name a profile (--profile P) or the integrations (--integration ID)")
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
            profile=profile,
        )
        scope = sorted(token.integrations.values_list("id", flat=True))
        self.stderr.write(
            f"Created agent token #{token.pk} {token.name!r} (profile {token.profile}, {token.access}) for "
            f"{', '.join(scope) or 'no integration'}. It is shown once; store it now:"
        )
        self.stdout.write(raw)
