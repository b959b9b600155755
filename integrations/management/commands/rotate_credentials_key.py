"""Re-encrypt every stored credential from an old CREDENTIALS_KEY to the current one.

Usage (new key in CREDENTIALS_KEY, old key in OLD_CREDENTIALS_KEY or --old-key):

    CREDENTIALS_KEY=<new> OLD_CREDENTIALS_KEY=<old> python manage.py rotate_credentials_key [--dry-run]

Safety properties:
- A pre-scan reads every row first; if any row can be read with neither key, nothing is written and
  the command exits non-zero naming how many rows could not be read (a wrong old key destroys nothing).
- Rows are rewritten in batches, each inside its own transaction, in primary-key order. A run that is
  interrupted leaves every row under exactly one of the two keys; running again recognises the rows
  already under the new key and leaves them alone.
- Ciphertext is read with a raw cursor: the model field would decrypt with whatever key it can, which
  hides which key a row is actually under.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, models, transaction

from integrations.crypto import CredentialsUnreadable, EncryptedJSONField, decrypt_value, encrypt_value


@dataclass
class Counts:
    total: int = 0
    empty: int = 0
    current: int = 0  # already under the new key
    rotated: int = 0  # rewritten by this run (or, in a dry run, that would be)
    unreadable: int = 0

    def add(self, other: Counts) -> None:
        for name in ("total", "empty", "current", "rotated", "unreadable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedJSONField]]:
    """Every encrypted column in the project (today: Integration.credentials, which holds all secrets)."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedJSONField):
                found.append((model, field))
    return found


def _column(field: models.Field[Any, Any]) -> str:
    """The column of a field on a model (None only before the field is added to a model)."""
    if field.column is None:
        raise CommandError(f"{field} has no database column")
    return field.column


class Command(BaseCommand):
    help = "Re-encrypt stored credentials from the old key (--old-key or OLD_CREDENTIALS_KEY) to CREDENTIALS_KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--old-key",
            help="The previous CREDENTIALS_KEY. Prefer the OLD_CREDENTIALS_KEY environment variable: "
            "command-line arguments are visible to other users of the machine.",
        )
        parser.add_argument("--batch-size", type=int, default=200, help="Rows per transaction (default 200).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        old_key = (options["old_key"] or os.environ.get("OLD_CREDENTIALS_KEY") or "").strip()
        new_key: str = settings.CREDENTIALS_KEY
        batch_size: int = options["batch_size"]
        self.verbosity: int = options["verbosity"]
        if not old_key:
            raise CommandError("give the old key with --old-key or the OLD_CREDENTIALS_KEY environment variable")
        if old_key == new_key:
            raise CommandError("the old key is the same as CREDENTIALS_KEY: nothing to rotate")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")

        fields = encrypted_fields()
        # Pass 1: read everything, write nothing.
        scan = Counts()
        for model, field in fields:
            for _pk, token in self._rows(model, field, batch_size):
                scan.add(self._classify(token, old_key, new_key))
        if scan.unreadable:
            raise CommandError(
                f"{scan.unreadable} of {scan.total} stored credentials cannot be decrypted with the old key "
                "or with CREDENTIALS_KEY; nothing was changed. Check the old key."
            )
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: {scan.rotated} of {scan.total} stored credentials would be re-encrypted "
                f"({scan.current} already under the new key, {scan.empty} empty); nothing was changed."
            )
            return

        # Pass 2: rewrite, one transaction per batch, re-checking each row under its lock.
        done = Counts()
        for model, field in fields:
            try:
                self._rotate(model, field, old_key, new_key, batch_size, done)
            except DatabaseError as exc:
                raise CommandError(
                    f"stopped after re-encrypting {done.rotated} stored credentials ({type(exc).__name__}: {exc}); "
                    "every row is under either the old or the new key - run the command again to finish"
                ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {done.rotated} of {done.total} stored credentials "
                f"({done.current} already under the new key, {done.empty} empty)."
            )
        )

    @staticmethod
    def _classify(token: bytes | None, old_key: str, new_key: str) -> Counts:
        counts = Counts(total=1)
        if token is None:
            counts.empty = 1
            return counts
        for key, attr in ((new_key, "current"), (old_key, "rotated")):
            try:
                decrypt_value(token, key)
            except CredentialsUnreadable:
                continue
            setattr(counts, attr, 1)
            return counts
        counts.unreadable = 1
        return counts

    def _batch(
        self, model: type[models.Model], field: EncryptedJSONField, after: Any, size: int, *, lock: bool = False
    ) -> list[tuple[Any, bytes | None]]:
        qn = connection.ops.quote_name
        pk = qn(_column(model._meta.pk))
        where, params = ("", []) if after is None else (f"WHERE {pk} > %s ", [after])
        sql = f"SELECT {pk}, {qn(_column(field))} FROM {qn(model._meta.db_table)} {where}ORDER BY {pk} LIMIT %s"
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, size])
            return [(pk, None if raw is None else bytes(raw)) for pk, raw in cursor.fetchall()]

    def _rows(
        self, model: type[models.Model], field: EncryptedJSONField, size: int
    ) -> Iterator[tuple[Any, bytes | None]]:
        """Keyset pagination: memory stays bounded whatever the table size."""
        after = None
        while True:
            batch = self._batch(model, field, after, size)
            yield from batch
            if len(batch) < size:
                return
            after = batch[-1][0]

    def _rotate(
        self,
        model: type[models.Model],
        field: EncryptedJSONField,
        old_key: str,
        new_key: str,
        size: int,
        done: Counts,
    ) -> None:
        qn = connection.ops.quote_name
        update_sql = (
            f"UPDATE {qn(model._meta.db_table)} SET {qn(_column(field))} = %s WHERE {qn(_column(model._meta.pk))} = %s"
        )
        after = None
        while True:
            batch_counts = Counts()
            with transaction.atomic():
                batch = self._batch(model, field, after, size, lock=True)
                for pk, token in batch:
                    counts = self._classify(token, old_key, new_key)
                    if counts.unreadable:
                        # Written by something else since the pre-scan, under a third key.
                        raise CommandError(
                            f"{model._meta.label} {pk!r} changed during the rotation and cannot be decrypted; "
                            f"{done.rotated} rows were re-encrypted before it - investigate, then run again"
                        )
                    if counts.rotated:
                        assert token is not None
                        fresh = encrypt_value(decrypt_value(token, old_key), new_key)
                        with connection.cursor() as cursor:
                            # Each backend's wrapper has .Database (its DB-API module); the stubs' base lacks it.
                            binary = connection.Database.Binary(fresh)  # type: ignore[attr-defined]
                            cursor.execute(update_sql, [binary, pk])
                    batch_counts.add(counts)
            done.add(batch_counts)  # counted only once the batch is committed
            if self.verbosity >= 2:
                self.stdout.write(f"  {model._meta.label}: {done.rotated} re-encrypted so far")
            if len(batch) < size:
                return
            after = batch[-1][0]
