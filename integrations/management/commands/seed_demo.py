"""Seed a demo so that a first run shows live integrations at once.

    python manage.py seed_demo [--if-empty] [--sandbox-url URL] [--sandbox-key KEY] [--no-connect]

Creates a sample SQLite HR database (departments, employees, time off; fake but realistic people) and
two integrations: ``demo_bamboohr`` (the bundled BambooHR sandbox, started by scripts/run) and
``demo_hr_db`` (the SQLite file, read-only). Then asks a worker to connect both. Safe to run again:
existing integrations are left as they are.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from connectors.errors import ConnectorError
from integrations import services
from integrations.models import Integration

DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Finance", "People", "Support", "Operations"]


def build_hr_database(path: Path, employees: int = 200, seed: int = 7) -> None:
    """A small HR schema with fake people; rebuilt from scratch (same seed, same people)."""
    from faker import Faker

    fake = Faker()
    Faker.seed(seed)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.executescript(
        """
        CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE employees (
            id INTEGER PRIMARY KEY,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            email TEXT NOT NULL UNIQUE,
            department_id INTEGER REFERENCES departments(id),
            job_title TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
            hire_date TEXT NOT NULL,
            manager_id INTEGER REFERENCES employees(id),
            salary INTEGER
        );
        CREATE TABLE time_off_requests (
            id INTEGER PRIMARY KEY,
            employee_id INTEGER NOT NULL REFERENCES employees(id),
            type TEXT NOT NULL,
            start_date TEXT NOT NULL,
            end_date TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'denied', 'canceled'))
        );
        """
    )
    db.executemany("INSERT INTO departments (id, name) VALUES (?, ?)", list(enumerate(DEPARTMENTS, 1)))
    rows: list[tuple[Any, ...]] = []
    emails: set[str] = set()
    for employee_id in range(1, employees + 1):
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}".lower().replace(" ", "").replace("'", "") + "@example.com"
        while email in emails:
            email = f"{first}.{last}{rng.randint(2, 999)}".lower().replace(" ", "").replace("'", "") + "@example.com"
        emails.add(email)
        manager = rng.randint(1, employee_id - 1) if employee_id > 5 else None
        hired = date(2015, 1, 1) + timedelta(days=rng.randint(0, 3650))
        rows.append(
            (
                employee_id,
                first,
                last,
                email,
                rng.randint(1, len(DEPARTMENTS)),
                fake.job(),
                "active" if rng.random() > 0.08 else "inactive",
                hired.isoformat(),
                manager,
                rng.randrange(45_000, 180_000, 500),
            )
        )
    db.executemany("INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    requests = []
    for request_id in range(1, employees // 2 + 1):
        start = timezone.localdate() + timedelta(days=rng.randint(-60, 90))
        requests.append(
            (
                request_id,
                rng.randint(1, employees),
                rng.choice(["Vacation", "Sick", "Parental"]),
                start.isoformat(),
                (start + timedelta(days=rng.randint(0, 9))).isoformat(),
                rng.choice(["requested", "approved", "approved", "denied"]),
            )
        )
    db.executemany("INSERT INTO time_off_requests VALUES (?, ?, ?, ?, ?, ?)", requests)
    db.commit()
    db.close()
    os.replace(tmp, path)


class Command(BaseCommand):
    help = "Create the demo integrations (BambooHR sandbox, sample SQLite HR database) and connect them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any integration exists.")
        parser.add_argument(
            "--sandbox-url", default=os.environ.get("BAMBOOHR_SANDBOX_URL", "http://127.0.0.1:8765/api/v1/")
        )
        parser.add_argument(
            "--sandbox-key",
            default=os.environ.get("BAMBOOHR_SANDBOX_API_KEY"),
            help="The sandbox's API key (default: $BAMBOOHR_SANDBOX_API_KEY).",
        )
        parser.add_argument(
            "--hr-db",
            default=str(Path(settings.DATA_DIR) / "sqlite" / "demo_hr.sqlite3"),  # in the dev SQLITE_ALLOWED_DIRS
            help="Where to write the sample SQLite HR database.",
        )
        parser.add_argument("--no-connect", action="store_true", help="Create only; do not enqueue connects.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Integration.objects.exists():
            self.stdout.write("seed_demo: integrations exist already; nothing to do.")
            return
        if not options["sandbox_key"]:
            raise CommandError("the sandbox API key is needed: --sandbox-key KEY or BAMBOOHR_SANDBOX_API_KEY")
        owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        hr_db = Path(options["hr_db"]).absolute()
        if not hr_db.exists():
            build_hr_database(hr_db)
            self.stdout.write(f"seed_demo: wrote a sample HR database to {hr_db}")
        demos: list[dict[str, Any]] = [
            {
                "id": "demo_bamboohr",
                "name": "BambooHR (sandbox)",
                "kind": "bamboohr",
                "auth_type": "api_key",
                "config": {"subdomain": "acme", "base_url": options["sandbox_url"], "allow_insecure_loopback": True},
                "credentials": {"api_key": options["sandbox_key"]},
                "health_check_interval": 30,
            },
            {
                "id": "demo_hr_db",
                "name": "HR database (SQLite sample)",
                "kind": "sqlite",
                "auth_type": "none",
                "config": {"path": str(hr_db), "read_only": True},
                "health_check_interval": 30,
            },
        ]
        for demo in demos:
            if Integration.objects.filter(pk=demo["id"]).exists():
                continue
            try:
                services.create_integration(actor="seed_demo", owner=owner, **demo)
                if not options["no_connect"]:
                    services.request_connect(demo["id"], actor="seed_demo")
            except ConnectorError as exc:
                raise CommandError(f"seed_demo: {demo['id']}: {exc.message}") from None
            self.stdout.write(f"seed_demo: created {demo['id']} ({demo['name']})")
