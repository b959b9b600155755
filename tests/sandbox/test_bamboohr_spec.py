"""The OpenAPI description shipped in sandbox/bamboohr/spec/ is the one its PROVENANCE.md describes:
an edit to the spec without a new checksum (a refresh half done, or a silent change) fails here."""

from __future__ import annotations

import hashlib
import re

from sandbox.bamboohr.openapi import SHIPPED_OPENAPI, SPEC_DIR

PROVENANCE = SPEC_DIR / "PROVENANCE.md"


def _recorded(name: str) -> list[str]:
    """The checksums PROVENANCE.md records for ``name``, as ``sha256sum`` prints them."""
    return re.findall(rf"^([0-9a-f]{{64}})  {re.escape(name)}$", PROVENANCE.read_text(encoding="utf-8"), re.MULTILINE)


def test_the_shipped_spec_matches_the_checksum_in_its_provenance() -> None:
    recorded = _recorded(SHIPPED_OPENAPI.name)
    assert len(recorded) == 1, f"{PROVENANCE} must record exactly one sha256 line for {SHIPPED_OPENAPI.name}"
    actual = hashlib.sha256(SHIPPED_OPENAPI.read_bytes()).hexdigest()
    assert actual == recorded[0], (
        f"{SHIPPED_OPENAPI} changed (sha256 {actual}) but PROVENANCE.md still records {recorded[0]}: "
        "refresh it as README.md says (new copy, new date and checksum, contract test)"
    )


def test_the_provenance_names_source_date_and_licence() -> None:
    text = PROVENANCE.read_text(encoding="utf-8")
    assert "BambooHR/bhr-api-python" in text and "specs/public.yaml" in text
    assert re.search(r"\*\*Copied into this repository:\*\* \d{4}-\d{2}-\d{2}", text)
    licence = (SPEC_DIR / "LICENSE-openapi").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Copyright (c) 2026 BambooHR" in licence
