"""Django's loaddata, refusing a fixture that carries a secret this hub cannot use.

Rows whose credentials do not decrypt (a ``<encrypted>`` placeholder, another key's ciphertext, an
altered value) or whose token or password hash is not one (``integrations/stored_secrets.py``) are
collected while the fixture is read; if there are any, the command names them all (never a value) and
loads nothing: Django runs the whole load in one transaction, which the error rolls back.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import loaddata

from integrations.stored_secrets import Problem, problems

SHOWN = 50  # rows listed in the error; the rest are counted


class Command(loaddata.Command):
    help = (
        f"{loaddata.Command.help} Refuses (and loads nothing of) a fixture whose credentials cannot be "
        "decrypted with CREDENTIALS_KEY or its fallbacks, or whose token or password hashes are not hashes."
    )

    def loaddata(self, fixture_labels: Any) -> None:
        self.refused: list[Problem] = []
        super().loaddata(fixture_labels)

    def load_label(self, fixture_label: str) -> None:
        try:
            super().load_label(fixture_label)
        except Exception:
            if not self.refused:
                raise
            # Most likely a row that depends on a refused one; the refusal is the cause to report.
        if self.refused:
            raise CommandError(self._refusal(fixture_label))

    def save_obj(self, obj: Any) -> bool:
        excluded = obj.object._meta.app_config in self.excluded_apps or type(obj.object) in self.excluded_models
        found = [] if excluded else problems(obj.object)
        if found:
            self.refused.extend(found)
            return False
        saved: bool = super().save_obj(obj)
        return saved

    def _refusal(self, fixture_label: str) -> str:
        rows = [f"  {problem}" for problem in self.refused[:SHOWN]]
        if len(self.refused) > SHOWN:
            rows.append(f"  … and {len(self.refused) - SHOWN} more")
        return "\n".join(
            [
                f"{fixture_label}: {len(self.refused)} stored secret(s) this hub cannot use; nothing was loaded.",
                *rows,
                "Credentials must come from dumpdata of this version of the hub, loaded under the source hub's "
                "CREDENTIALS_KEY (or with it in CREDENTIALS_KEY_FALLBACKS); token and password hashes as dumped.",
            ]
        )
