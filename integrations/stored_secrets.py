"""Every column that keeps a secret, and what an imported value must look like to be kept.

A dump moves secrets only as ciphertext (credentials, ``integrations/crypto.py``) or as one-way hashes
(API tokens, agent tokens, passwords). An import that carries a placeholder, another key's ciphertext, a
tampered value or an empty hash would leave integrations without credentials or tokens that can never
authenticate, found out only when something fails. ``problems()`` names such a row (by its id, never by
a value); ``loaddata`` refuses the whole fixture with the list, and ``refuse_raw_save`` stops any other
import (``serializers.deserialize(...)`` then ``save()``, which Django marks ``raw``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, identify_hasher
from django.db import models
from django.db.models.signals import pre_save

from integrations.crypto import EncryptedJSONField, UnreadableCredentials


class StoredSecretRefused(Exception):
    """An import would store a secret this hub cannot use; the message names the rows, never a value."""


@dataclass(frozen=True)
class Problem:
    model: str  # app_label.ModelName
    row: str  # how an operator finds the row: its id, a user name or a token's first characters
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.model} {self.row} {self.field}: {self.reason}"


def _hex_digest(length: int, what: str) -> Callable[[Any], str | None]:
    pattern = re.compile(rf"[0-9a-f]{{{length}}}")

    def check(value: Any) -> str | None:
        if isinstance(value, str) and pattern.fullmatch(value):
            return None
        return f"not a {what} ({length} lowercase hexadecimal characters): such a token could never authenticate"

    return check


def _password(value: Any) -> str | None:
    if value == "" or (isinstance(value, str) and value.startswith(UNUSABLE_PASSWORD_PREFIX)):
        return None  # no password login, as in the source hub (set_unusable_password, or never set)
    try:
        identify_hasher(value)
    except (TypeError, ValueError):
        return "not a password hash this hub knows (the user could never log in with a password)"
    return None


def _knox_digest_check() -> Callable[[Any], str | None]:
    from knox.settings import knox_settings

    return _hex_digest(knox_settings.SECURE_HASH_ALGORITHM().digest_size * 2, "token digest")


def _hashed_columns(model: type[models.Model]) -> dict[str, Callable[[Any], str | None]]:
    """The one-way hashes of each model. Agent tokens are matched by model name: their app may move."""
    opts = model._meta
    if opts.label == settings.AUTH_USER_MODEL:
        return {"password": _password}
    if opts.label == "knox.AuthToken":
        return {"digest": _knox_digest_check()}
    if opts.object_name == "AgentToken" and "token_hash" in {f.name for f in opts.fields}:
        return {"token_hash": _hex_digest(64, "SHA-256 token hash")}
    return {}


def _row_name(instance: models.Model) -> str:
    if instance._meta.label == "knox.AuthToken":  # its primary key is the digest itself: name it otherwise
        return f"token {getattr(instance, 'token_key', '')!r}…"
    if instance._meta.label == settings.AUTH_USER_MODEL:
        return f"{instance.get_username()!r}"  # type: ignore[attr-defined]
    return f"{instance.pk!r}"


def problems(instance: models.Model) -> list[Problem]:
    """What in this (deserialized, not yet saved) row is not a secret the hub can use."""
    found: list[Problem] = []
    checks = _hashed_columns(type(instance))
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        reason: str | None = None
        if isinstance(field, EncryptedJSONField):
            reason = value.reason if isinstance(value, UnreadableCredentials) else None
        elif field.name in checks:
            reason = checks[field.name](value)
        if reason:
            found.append(Problem(instance._meta.label, _row_name(instance), field.name, reason))
    return found


def models_with_secrets() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models()
        if _hashed_columns(model) or any(isinstance(f, EncryptedJSONField) for f in model._meta.concrete_fields)
    ]


def refuse_raw_save(sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any) -> None:
    if raw and (found := problems(instance)):
        raise StoredSecretRefused("; ".join(str(p) for p in found))


def connect() -> None:
    for model in models_with_secrets():
        pre_save.connect(refuse_raw_save, sender=model, dispatch_uid=f"stored-secrets:{model._meta.label}")
