"""Create an API token for a user (``Authorization: Token <token>``); print it once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken
from knox.settings import knox_settings


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME. Only a hash is stored: the token is printed once, alone on the "
        "last line. It expires after --expires-days days (default: API_TOKEN_TTL_DAYS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--expires-days", type=int, default=None, metavar="N", help="Expire after N days.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no such user: {options['username']}")
        if not user.is_active:
            raise CommandError(f"user {options['username']} is inactive")
        lifetime = dt.timedelta(days=days) if days is not None else knox_settings.TOKEN_TTL
        instance, token = AuthToken.objects.create(user, expiry=lifetime)
        expires = f"expires {instance.expiry:%Y-%m-%d %H:%M} UTC" if instance.expiry else "never expires"
        self.stderr.write(
            f"Created an API token for {user.get_username()} (starts with {instance.token_key}, {expires}). "
            "It is shown once; store it now:"
        )
        self.stdout.write(token)
