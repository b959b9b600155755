"""PII out of free text (notes, comments, time-off notes), and keyed pseudonyms for ids and e-mails.

Detection is Presidio's (presidio-analyzer): its predefined *pattern* recognizers — regular
expressions plus checksums (Luhn for cards, the IBAN check digits, the SSN's invalid ranges,
Google's libphonenumber for phones) — called directly. Presidio's ``AnalyzerEngine`` is not used:
it always builds an NLP engine, and its default loads a spaCy model (en_core_web_lg, downloaded at
run time); pattern recognizers need none (``analyze(text, entities, nlp_artifacts=None)``). Without
an NLP engine there is no context boost ("SSN:" before a number), so each entity has a score
threshold of its own. The e-mail recognizer checks the domain against the public suffix list; it is
given tldextract's bundled snapshot, because the default fetches the list from the network on
first use.

``Redactor(RedactionPolicy(...)).redact(text)`` replaces each finding by ``<ENTITY>`` (or a token
of the policy's choosing), or, for e-mails, by a pseudonym when asked. ``Pseudonymizer(key,
reverse)`` makes deterministic pseudonyms (HMAC-SHA256 under the hub's key) for employee ids and
e-mails, so an agent can join records without seeing them; every pseudonym it mints is written to
``reverse`` (a mapping the caller keeps — the Django side stores it) so the hub can map a pseudonym
back for a write.

Presidio (and tldextract) are imported by the first ``Redactor``, not by this module: a process that
only builds policies (the web process, reading a profile) never pays for them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from connectors.errors import Category, ConnectorError

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer, RecognizerResult

Action = Literal["mask", "pseudonym"]

# Numbers written the national way are found for these regions; a number written with its
# country code (+44 ...) is found whatever the regions. Each region costs ~0.7 ms per text with
# digits (libphonenumber's matcher), so the default is one.
PHONE_REGIONS = ("US",)

# entity -> default minimum score (Presidio's own, without context). The recognizers themselves come
# from ``_recognizers()``: presidio takes seconds to import, and only a process that redacts needs it
# (a web process that builds a profile's RedactionPolicy does not).
MIN_SCORES: dict[str, float] = {
    "US_SSN": 0.3,
    "UK_NINO": 0.3,
    "US_ITIN": 0.3,
    "US_PASSPORT": 0.1,
    "IBAN_CODE": 0.5,
    "US_BANK_NUMBER": 0.05,  # 8-17 digits: very broad, off by default
    "ABA_ROUTING_NUMBER": 0.3,
    "CREDIT_CARD": 0.5,
    "PHONE_NUMBER": 0.3,
    "EMAIL_ADDRESS": 0.5,
}
# Every entity but e-mail is mostly digits (the shortest, a UK NINO, has 6): a text with fewer is
# not run through them, which keeps ordinary notes ("Family trip") nearly free.
_MIN_DIGITS = 6
DEFAULT_ENTITIES = ("US_SSN", "UK_NINO", "US_ITIN", "IBAN_CODE", "CREDIT_CARD", "PHONE_NUMBER", "EMAIL_ADDRESS")


@cache
def _recognizers() -> dict[str, Callable[[RedactionPolicy], EntityRecognizer]]:
    """entity -> recognizer factory (imports presidio and tldextract on first use)."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        AbaRoutingRecognizer,
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UsBankRecognizer,
        UsItinRecognizer,
        UsPassportRecognizer,
        UsSsnRecognizer,
    )

    # tldextract with its bundled public suffix list: no download at run time.
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class _OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld(pattern_text).fqdn != ""

    return {
        "US_SSN": lambda _: UsSsnRecognizer(),
        "UK_NINO": lambda _: UkNinoRecognizer(),
        "US_ITIN": lambda _: UsItinRecognizer(),
        "US_PASSPORT": lambda _: UsPassportRecognizer(),
        "IBAN_CODE": lambda _: IbanRecognizer(),
        "US_BANK_NUMBER": lambda _: UsBankRecognizer(),
        "ABA_ROUTING_NUMBER": lambda _: AbaRoutingRecognizer(),
        "CREDIT_CARD": lambda _: CreditCardRecognizer(),
        "PHONE_NUMBER": lambda policy: PhoneRecognizer(supported_regions=policy.phone_regions),
        "EMAIL_ADDRESS": lambda _: _OfflineEmailRecognizer(),
    }


@dataclass(frozen=True)
class RedactionPolicy:
    """Which entities to act on and how: ``actions`` maps an entity to ``mask`` (the default) or
    ``pseudonym`` (e-mails only); ``tokens`` overrides the ``<ENTITY>`` mask; ``min_scores``
    overrides a threshold; ``phone_regions`` are where national-format phone numbers are read."""

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    actions: Mapping[str, Action] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)
    min_scores: Mapping[str, float] = field(default_factory=dict)
    phone_regions: tuple[str, ...] = PHONE_REGIONS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.entities) - set(MIN_SCORES))
        if unknown:
            raise ValueError(f"unknown PII entities: {', '.join(unknown)}; use {', '.join(MIN_SCORES)}")
        for entity, action in self.actions.items():
            if action not in ("mask", "pseudonym") or (action == "pseudonym" and entity != "EMAIL_ADDRESS"):
                raise ValueError(f"{entity}: action must be 'mask' ('pseudonym' is for EMAIL_ADDRESS)")


@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Redacted:
    text: str
    findings: tuple[Finding, ...] = ()


class Pseudonymizer:
    """Deterministic keyed pseudonyms; ``reverse`` (pseudonym -> real value) is the caller's."""

    def __init__(self, key: bytes, reverse: MutableMapping[str, str] | None = None, *, length: int = 16) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key
        self.reverse = reverse if reverse is not None else {}
        self.length = length

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[: self.length]

    def employee_id(self, value: str | int) -> str:
        real = str(value).strip()
        pseudonym = f"emp_{self._digest('employee', real)}"
        self.reverse[pseudonym] = real
        return pseudonym

    def email(self, value: str) -> str:
        real = value.strip().lower()  # the same mailbox however it is capitalised
        pseudonym = f"user_{self._digest('email', real)}@pseudonym.invalid"
        self.reverse[pseudonym] = real
        return pseudonym

    def reveal(self, pseudonym: str) -> str:
        """The real value behind a pseudonym this hub minted; a pseudonym it never minted is refused."""
        real = self.reverse.get(pseudonym.strip())
        if real is None:
            raise ConnectorError(f"unknown pseudonym {pseudonym!r}", category=Category.INVALID, permanent=True)
        return real

    def reveal_all(self, values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """``values`` with the named fields mapped back (for a write an agent sends with pseudonyms)."""
        out = dict(values)
        for name in fields:
            if isinstance(out.get(name), str) and out[name] in self.reverse:
                out[name] = self.reverse[out[name]]
        return out


class Redactor:
    def __init__(self, policy: RedactionPolicy | None = None, pseudonyms: Pseudonymizer | None = None) -> None:
        self.policy = policy or RedactionPolicy()
        wants_pseudonyms = "pseudonym" in self.policy.actions.values()
        if wants_pseudonyms and pseudonyms is None:
            raise ValueError("a pseudonym action needs a Pseudonymizer")
        self.pseudonyms = pseudonyms
        factories = _recognizers()
        self._recognizers = [(e, factories[e](self.policy), self._threshold(e)) for e in self.policy.entities]

    def _threshold(self, entity: str) -> float:
        return self.policy.min_scores.get(entity, MIN_SCORES[entity])

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings, left to right (on overlap the longer, then the surer, wins)."""
        found: list[Finding] = []
        digits = sum(c.isdigit() for c in text) >= _MIN_DIGITS
        at_sign = "@" in text
        for entity, recognizer, threshold in self._recognizers:
            if not (at_sign if entity == "EMAIL_ADDRESS" else digits):
                continue
            # No NLP artifacts: pattern recognizers accept None (EntityRecognizer's stub says otherwise).
            results: list[RecognizerResult] = recognizer.analyze(text, [entity], None)  # type: ignore[arg-type]
            found += [Finding(entity, r.start, r.end, r.score) for r in results if r.score >= threshold]
        found.sort(key=lambda f: (f.start, -(f.end - f.start), -f.score))
        kept: list[Finding] = []
        for finding in found:
            if kept and finding.start < kept[-1].end:
                continue
            kept.append(finding)
        return kept

    def redact(self, text: str) -> Redacted:
        if not text:
            return Redacted(text)
        findings = self.find(text)
        parts: list[str] = []
        last = 0
        for f in findings:
            parts.append(text[last : f.start])
            parts.append(self._replacement(f.entity, text[f.start : f.end]))
            last = f.end
        parts.append(text[last:])
        return Redacted("".join(parts), tuple(findings))

    def _replacement(self, entity: str, value: str) -> str:
        if self.policy.actions.get(entity) == "pseudonym" and self.pseudonyms is not None:
            return self.pseudonyms.email(value)
        return self.policy.tokens.get(entity, f"<{entity}>")

    def redact_fields(self, record: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """``record`` with the named free-text fields redacted (strings, or dicts of strings such as
        a time-off request's ``notes``)."""
        out = dict(record)
        for name in fields:
            value = out.get(name)
            if isinstance(value, str):
                out[name] = self.redact(value).text
            elif isinstance(value, Mapping):
                out[name] = {k: self.redact(v).text if isinstance(v, str) else v for k, v in value.items()}
        return out
