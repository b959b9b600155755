"""Credentials encryption, keyed only by CREDENTIALS_KEY.

Built on django-cryptography's FernetBytes (AES-CBC + HMAC-SHA256). Its ``encrypt()`` field wrapper
signs with SECRET_KEY whatever CRYPTOGRAPHY_KEY says and stores pickles; here both the cipher and the
signature keys derive from CREDENTIALS_KEY, and the payload is JSON, so rotating SECRET_KEY never
touches credentials and reading a row never unpickles it.

``dumpdata`` writes a credentials value as ``encrypted:<key id>:<base64 ciphertext>`` under
CREDENTIALS_KEY, never as plaintext; ``loaddata`` decrypts it with the key the id names (the current key
or a fallback) and stores it under the current key. A value that is not such a ciphertext (the
``<encrypted>`` placeholder of older dumps, another key's ciphertext, an altered one) becomes an
``UnreadableCredentials`` that can never be stored: loaddata names those rows and loads nothing
(``integrations/management/commands/loaddata.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.core.exceptions import ValidationError
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


@lru_cache(maxsize=8)
def key_id(key: str) -> str:
    """Eight hex characters that tell keys apart in a dump (32 bits of a PBKDF2 output: nothing to attack)."""
    return _derive(key, b"key-id")[:4].hex()


def decrypt_any(token: bytes) -> Any:
    """Try the current key, then the fallbacks (a rotation in progress keeps the hub working)."""
    for key in readable_keys():
        try:
            return decrypt_value(token, key)
        except CredentialsUnreadable:
            continue
    raise CredentialsUnreadable("stored credentials cannot be decrypted with CREDENTIALS_KEY (or its fallbacks)")


EXPORT_PREFIX = "encrypted:"
PLACEHOLDER = "<encrypted>"  # what dumpdata wrote before ciphertext exports: no secret in it


def export_value(value: Any) -> str:
    """The form a dump carries: ciphertext under CREDENTIALS_KEY, with the id of that key."""
    key: str = settings.CREDENTIALS_KEY
    return f"{EXPORT_PREFIX}{key_id(key)}:{base64.b64encode(encrypt_value(value, key)).decode()}"


class UnreadableCredentials:
    """An imported credentials value this hub cannot decrypt: it holds only why, never the value.

    ``EncryptedJSONField`` refuses to store it, so whatever imports it (loaddata, a deserializer and
    ``save()``) stops instead of keeping empty or wrong credentials.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<UnreadableCredentials: {self.reason}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableCredentials) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


def import_value(value: str) -> Any:
    """Read what ``export_value`` wrote; an ``UnreadableCredentials`` (with the reason) otherwise."""
    if value.strip() == PLACEHOLDER:
        return UnreadableCredentials(
            f'the placeholder "{PLACEHOLDER}" instead of ciphertext (a dump made before dumpdata exported '
            "credentials: dump the source hub again with this version)"
        )
    kid, _, data = value.removeprefix(EXPORT_PREFIX).partition(":")
    if not value.startswith(EXPORT_PREFIX) or not data:
        return UnreadableCredentials(f'not an exported ciphertext ("{EXPORT_PREFIX}<key id>:<base64>")')
    key = next((k for k in readable_keys() if key_id(k) == kid), None)
    if key is None:
        return UnreadableCredentials(
            "encrypted under another CREDENTIALS_KEY (set the source hub's key as CREDENTIALS_KEY, "
            "or add it to CREDENTIALS_KEY_FALLBACKS)"
        )
    try:
        return decrypt_value(base64.b64decode(data, validate=True), key)
    except (binascii.Error, CredentialsUnreadable):
        return UnreadableCredentials("altered or truncated: it does not decrypt under the key it names")


if TYPE_CHECKING:  # django-stubs' generic fields: what a model attribute is set to and reads back
    _BinaryField = models.BinaryField[Mapping[str, Any] | None, dict[str, Any] | None]
else:
    _BinaryField = models.BinaryField


class EncryptedJSONField(_BinaryField):
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
        """Plain values (the ORM, a fixture written by hand) pass; a string is an export to read back."""
        if isinstance(value, str):
            return import_value(value)
        if value is None or isinstance(value, (Mapping, UnreadableCredentials)):
            return value
        return UnreadableCredentials(f"not an exported ciphertext ({type(value).__name__})")

    def validate(self, value: Any, model_instance: Any) -> None:
        if isinstance(value, UnreadableCredentials):
            raise ValidationError(f"Credentials cannot be read: {value.reason}.", code="unreadable")
        super().validate(value, model_instance)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, UnreadableCredentials):
            raise CredentialsUnreadable(f"refusing to store credentials that cannot be read: {value.reason}")
        return encrypt_value(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        return connection.Database.Binary(value) if value is not None else None

    def value_to_string(self, obj: Any) -> str:
        return export_value(self.value_from_object(obj))  # dumpdata never writes plaintext
