"""Rules of the integration lifecycle that depend on who asks (issue 14, items 1 and 7).

``services.create_integration`` and ``services.update_integration`` apply them, so the API, the admin
and the dashboard wizard all get them; the admin form asks the same functions first so that a refusal
is a form error. Refusals are ``ConfigError`` with field errors under dotted names (``config.path``).

Files on the hub's machine (a kind whose config names a ``path``: SQLite):
- a file that backs another owner's integration is refused: sharing goes through the integration's
  group sharing, not a second integration on the same file. The message does not say whose it is, and
  the check compares resolved paths only, so the answer is the same whether the file exists or not;
- a writable one (``read_only: false``) is created, repointed or switched to writable by staff only.
Which folders are allowed at all, and the hub's own files, are the file policy's (connectors/).

Ids: an integration you cannot see must look as if it did not exist, and ids are one namespace (the
primary key). So only staff (who see everything) pick an exact id and hear "already exists". For anyone
else the id they give (or one made from the name) is a prefix to which the hub adds ``_`` and six random
letters or digits: the answer is the same whether someone else holds that prefix or not. ``new`` is never
an id (``/integrations/new`` is the dashboard's wizard).

The hub itself (a management command, which passes its name as the actor) counts as staff.
"""

from __future__ import annotations

import os
import secrets
import string
import unicodedata
from collections.abc import Mapping
from typing import Any

from connectors import registry
from connectors.errors import ConfigError
from integrations.models import Integration

FILE_REFUSED = (
    "This file cannot be used for this integration. A database that backs someone else's integration is "
    "shared through that integration (ask its owner to share it with your group), not opened a second time."
)
WRITABLE_FILE_STAFF_ONLY = (
    "Only staff may make an integration on a database file of the hub's machine writable; keep read_only true."
)


def is_trusted(actor: Any) -> bool:
    """Staff, or the hub itself (``None`` or a name: management commands and internal callers)."""
    if actor is None or isinstance(actor, str):
        return True
    return bool(getattr(actor, "is_staff", False))


def _file_kinds() -> list[str]:
    return [kind for kind in registry.kinds() if "path" in registry.get(kind).config_class.model_fields]


def local_file(kind: str, config: Mapping[str, Any] | None) -> str | None:
    """The resolved path (symlinks followed) of the file the config names, for kinds that name one."""
    if kind not in _file_kinds():
        return None
    path = (config or {}).get("path")
    if not isinstance(path, str) or not path or "\x00" in path:
        return None
    return os.path.realpath(os.path.expanduser(path))


def _writable(config: Mapping[str, Any] | None) -> bool:
    # read_only defaults to true in every database config: only an explicit false makes it writable.
    return (config or {}).get("read_only", True) is False


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # a hard link is the same file under another name
    except OSError:
        return False


def file_errors(
    *,
    actor: Any,
    kind: str,
    config: Mapping[str, Any] | None,
    owner_id: Any,
    integration_id: str | None = None,
    before: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Field errors for a config that names a file; ``before`` is the stored config on an update."""
    path = local_file(kind, config)
    if path is None:
        return {}
    errors: dict[str, list[str]] = {}
    if _writable(config) and not is_trusted(actor):
        # A writable integration that staff set up may keep its file; pointing it elsewhere is staff's call.
        unchanged = before is not None and _writable(before) and local_file(kind, before) == path
        if not unchanged:
            errors["config.read_only"] = [WRITABLE_FILE_STAFF_ONLY]
    others = Integration.objects.filter(kind__in=_file_kinds()).values_list("pk", "kind", "config", "owner_id")
    for other_id, other_kind, other_config, other_owner_id in others:
        if other_id == integration_id or other_owner_id == owner_id:
            continue
        other_path = local_file(other_kind, other_config)
        if other_path is not None and _same_file(path, other_path):
            errors["config.path"] = [FILE_REFUSED]
            break
    return errors


def check_file(**kwargs: Any) -> None:
    """``file_errors`` as a ConfigError (see there for the arguments)."""
    errors = file_errors(**kwargs)
    if errors:
        raise ConfigError("refused: " + ", ".join(sorted(errors)), errors)


RESERVED_IDS = frozenset({"new"})
RESERVED_ID = "This id is reserved (the dashboard's /integrations/new); choose another."
ID_TAKEN = "An integration with this id already exists."
SUFFIX_LENGTH = 6
MAX_ID_LENGTH = 63
MAX_PREFIX_LENGTH = MAX_ID_LENGTH - 1 - SUFFIX_LENGTH
PREFIX_TOO_LONG = (
    f"At most {MAX_PREFIX_LENGTH} characters: the hub adds '_' and {SUFFIX_LENGTH} random letters or digits."
)
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def id_from_name(name: str) -> str:
    """A slug of ``name`` (lowercase letters, digits and underscores, starting with a letter)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = "_".join(part for part in "".join(c if c.isalnum() else " " for c in ascii_name).split())
    slug = slug.lstrip("0123456789_")[:MAX_PREFIX_LENGTH].rstrip("_")
    return slug if len(slug) >= 2 else "integration"


def new_id(*, actor: Any, requested: str | None, name: str) -> str:
    """The id a new integration gets (see the module's docstring). Raises ConfigError with an ``id`` error."""
    if requested in RESERVED_IDS:
        raise ConfigError(f"the id {requested!r} is reserved", {"id": [RESERVED_ID]})
    if requested and is_trusted(actor):
        if Integration.objects.filter(pk=requested).exists():
            raise ConfigError(f"an integration with id {requested!r} already exists", {"id": [ID_TAKEN]})
        return requested
    if requested and len(requested) > MAX_PREFIX_LENGTH:
        raise ConfigError("id too long for a suffix", {"id": [PREFIX_TOO_LONG]})
    prefix = requested or id_from_name(name)
    while True:  # 36**6 suffixes: a clash is rare, and retried where nobody sees it
        candidate = f"{prefix}_{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))}"
        if not Integration.objects.filter(pk=candidate).exists():
            return candidate
