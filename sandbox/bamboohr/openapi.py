"""Where BambooHR's OpenAPI description is: shipped in ``sandbox/bamboohr/spec/`` (with its MIT licence
and ``PROVENANCE.md``), so a clone needs nothing beside it; ``BAMBOOHR_OPENAPI`` may name another copy
(a newer one to try before it is shipped)."""

from __future__ import annotations

import os
from pathlib import Path

SPEC_DIR = Path(__file__).resolve().parent / "spec"
SHIPPED_OPENAPI = SPEC_DIR / "openapi.yaml"


def openapi_path() -> Path:
    """``BAMBOOHR_OPENAPI`` when set (read at each call), else the copy shipped with the project."""
    override = os.environ.get("BAMBOOHR_OPENAPI", "").strip()
    return Path(override) if override else SHIPPED_OPENAPI
