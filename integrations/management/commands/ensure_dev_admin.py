"""Create the development admin user (DEBUG on only) and print how to log in.

The password is random, made once, and kept next to the development credentials key in a file only
the owner can read, so every `scripts/run` can print it again without it living in the repository.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "In development (DEBUG on), make sure an admin user exists and print how to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("HUB_DEV_ADMIN_USER", "admin"))
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/", help="Where the admin is served.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no development admin user is created (use `manage.py createsuperuser`).")
            return
        username: str = options["username"]
        password_file = Path(settings.DATA_DIR) / "dev-admin-password"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.unlink(missing_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            self.stdout.write(f"Created the development admin user {username!r}.")
        elif password_file.exists() and user.check_password(password_file.read_text().strip()):
            password = password_file.read_text().strip()
        else:
            password = "(unchanged - the one you set)"
        self.stdout.write(
            self.style.SUCCESS(f"Log in at {options['url']} as {username} / {password}")
            + f"\n(development only; the password is kept in {password_file}, mode 0600)"
        )
