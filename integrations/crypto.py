"""Credentials encryption, keyed only by CREDENTIALS_KEY.

Built on django-cryptography's FernetBytes (AES-CBC + HMAC-SHA256). Its ``encrypt()`` field wrapper
signs with SECRET_KEY whatever CRYPTOGRAPHY_KEY says and stores pickles; here both the cipher and the
signature keys derive from CREDENTIALS_KEY, and the payload is JSON, so rotating SECRET_KEY never
touches credentials and reading a row never unpickles it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.db import models
from django_cryptography.core.signing import BadSignature, FernetSigner
from django_cryptography.utils.crypto import FernetBytes, InvalidToken


class CredentialsUnreadable(Exception):
    """Stored credentials that no configured key can decrypt."""


def _derive(key: str, purpose: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"integration-hub:" + purpose, iterations=100_000)
    return kdf.derive(key.encode())


@lru_cache(maxsize=8)
def fernet_for(key: str) -> FernetBytes:
    return FernetBytes(_derive(key, b"cipher"), FernetSigner(key=_derive(key, b"signature")))


def encrypt_value(value: Any, key: str | None = None) -> bytes:
    return fernet_for(key or settings.CREDENTIALS_KEY).encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_value(token: bytes, key: str) -> Any:
    """Raise ``CredentialsUnreadable`` when ``key`` did not encrypt ``token``."""
    try:
        return json.loads(fernet_for(key).decrypt(bytes(token)))
    except (BadSignature, InvalidToken, ValueError) as exc:
        raise CredentialsUnreadable("credentials cannot be decrypted with this key") from exc


def readable_keys() -> list[str]:
    return [settings.CREDENTIALS_KEY, *getattr(settings, "CREDENTIALS_KEY_FALLBACKS", [])]


def decrypt_any(token: bytes) -> Any:
    """Try the current key, then the fallbacks (a rotation in progress keeps the hub working)."""
    for key in readable_keys():
        try:
            return decrypt_value(token, key)
        except CredentialsUnreadable:
            continue
    raise CredentialsUnreadable("stored credentials cannot be decrypted with CREDENTIALS_KEY (or its fallbacks)")


class EncryptedJSONField(models.BinaryField):
    """A dict of secrets, encrypted at rest. Not searchable, never editable in forms."""

    description = "Encrypted JSON"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return decrypt_any(bytes(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt_value(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        return connection.Database.Binary(value) if value is not None else None

    def value_to_string(self, obj: Any) -> str:
        return "<encrypted>"  # dumpdata never writes plaintext
