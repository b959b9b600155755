"""Credentials out of error texts: a secret is masked where it stands as a whole token, and nowhere else.

Masking every occurrence of a secret as a substring is an oracle: with the password ``a``, "database"
came back as "d***t***b***s***", which tells anyone reading the error what the password is. So a
secret counts only where it is not glued to other letters or digits. The boundary is checked only at
an edge that is itself a word character, so secrets that begin or end with punctuation (``!pa55``,
``s3cret&``) are still found next to quotes, ``=``, ``:`` or ``@``, as drivers print them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"


def _pattern(secret: str) -> str:
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return before + re.escape(secret) + after


def mask_secrets(text: str, secrets: Iterable[object]) -> str:
    """``text`` with every whole-token occurrence of each non-empty string in ``secrets`` replaced by ***."""
    values = sorted({s for s in secrets if isinstance(s, str) and s}, key=len, reverse=True)
    if not values or not text:
        return text
    return re.sub("|".join(_pattern(value) for value in values), MASK, text)
