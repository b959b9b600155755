"""Existing DRF tokens (raw keys in ``authtoken_token``) become knox tokens that keep working with the
same key; the raw rows are then deleted.

DRF's authtoken app is no longer installed, so its table is read with plain SQL when it exists (a database
created before this change); a new database never had it. The empty table is left in place: should
someone install DRF's authtoken app again, its recorded migrations still match the schema.

knox looks a token up by its first 15 characters (``token_key``, stored in clear) and checks the SHA-512
of the whole token. For a DRF key (40 hex characters) that leaves 100 unknown bits next to the digest:
nothing to brute-force. Converted tokens get the default lifetime (REST_KNOX TOKEN_TTL) from now on.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings

DRF_TABLE = "authtoken_token"


def hash_drf_tokens(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('key')}, {qn('user_id')} FROM {qn(DRF_TABLE)}")
        rows = cursor.fetchall()
    AuthToken = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + knox_settings.TOKEN_TTL if knox_settings.TOKEN_TTL else None
    for key, user_id in rows:
        AuthToken.objects.create(
            digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id, expiry=expiry
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {qn(DRF_TABLE)}")


class Migration(migrations.Migration):
    initial = True

    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop, elidable=False)]
