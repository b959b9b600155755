"""PII in free text comes back masked (Presidio's pattern recognizers, no NLP model), ordinary text is
untouched, and keyed pseudonyms are deterministic and map back only through the caller's map."""

from __future__ import annotations

import pytest

from connectors.datapolicy.pii import Pseudonymizer, RedactionPolicy, Redactor
from connectors.errors import Category, ConnectorError

KEY = b"0123456789abcdef-test-key"


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize(
    ("planted", "entity"),
    [
        ("536-22-8751", "US_SSN"),
        ("536 22 8751", "US_SSN"),
        ("AB 12 34 56 C", "UK_NINO"),
        ("DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("GB82WEST12345698765432", "IBAN_CODE"),
        ("4111 1111 1111 1111", "CREDIT_CARD"),
        ("5500-0000-0000-0004", "CREDIT_CARD"),
        ("+1 415-555-2671", "PHONE_NUMBER"),
        ("(801) 555-0199", "PHONE_NUMBER"),
        ("+44 20 7946 0958", "PHONE_NUMBER"),
        ("ann.lee@acme.example.com", "EMAIL_ADDRESS"),
        ("Bo.Ng+hr@mail.example.co.uk", "EMAIL_ADDRESS"),
    ],
)
def test_planted_pii_in_a_note_is_masked(redactor: Redactor, planted: str, entity: str) -> None:
    note = f"Out for surgery, reach me at {planted} if needed."
    out = redactor.redact(note)
    assert planted not in out.text
    assert out.text == f"Out for surgery, reach me at <{entity}> if needed."
    assert [f.entity for f in out.findings] == [entity]


@pytest.mark.parametrize(
    "text",
    [
        "Back on 2024-05-01 after 3 days of leave; room 12, order 4417, version 2.3.1.",
        "10:30 meeting with employee #1004, cost 1,250.00 USD, zip 84042.",
        "Doctor's appointment on Friday",
        "Invalid card 4111 1111 1111 1112 and sample SSN 123-45-6789 and not-an-iban DE00 0000 0000 0000 0000 00",
        "",
    ],
)
def test_ordinary_text_is_untouched(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text).text == text


def test_several_in_one_note_and_in_record_fields(redactor: Redactor) -> None:
    request = {
        "id": "7",
        "notes": {"employee": "SSN 536-22-8751, IBAN DE89370400440532013000", "manager": "ok, call 801-555-0199"},
        "comment": "card 4111111111111111",
        "employee_id": "536228751",  # not a free-text field: left as it is
    }
    out = redactor.redact_fields(request, ["notes", "comment"])
    assert out["notes"] == {"employee": "SSN <US_SSN>, IBAN <IBAN_CODE>", "manager": "ok, call <PHONE_NUMBER>"}
    assert out["comment"] == "card <CREDIT_CARD>" and out["employee_id"] == "536228751"
    assert request["comment"] == "card 4111111111111111"  # the input is not changed in place


def test_entities_are_chosen_per_policy() -> None:
    only_ssn = Redactor(RedactionPolicy(entities=("US_SSN",), tokens={"US_SSN": "[hidden]"}))
    text = "SSN 536-22-8751, mail ann@acme.example.com"
    assert only_ssn.redact(text).text == "SSN [hidden], mail ann@acme.example.com"
    with pytest.raises(ValueError, match="NAME"):
        RedactionPolicy(entities=("US_SSN", "NAME"))
    with pytest.raises(ValueError, match="pseudonym"):
        RedactionPolicy(actions={"US_SSN": "pseudonym"})


def test_pseudonyms_are_deterministic_keyed_and_reversible_through_the_callers_map() -> None:
    reverse: dict[str, str] = {}
    pseudo = Pseudonymizer(KEY, reverse)
    first = pseudo.employee_id(42)
    assert first == pseudo.employee_id("42") and first.startswith("emp_")
    assert pseudo.email("Ann.Lee@Acme.example.com") == pseudo.email("ann.lee@acme.example.com")
    other = Pseudonymizer(b"another-key-of-16-bytes", {})
    assert other.employee_id(42) != first  # the key matters: no dictionary of ids reverses it
    assert reverse[first] == "42" and pseudo.reveal(first) == "42"
    assert Pseudonymizer(KEY, reverse).reveal(first) == "42"  # the map, not the object, carries it
    with pytest.raises(ConnectorError) as info:
        pseudo.reveal("emp_0000000000000000")
    assert info.value.category is Category.INVALID
    assert pseudo.reveal_all({"employee_id": first, "note": "x"}, ["employee_id"]) == {"employee_id": "42", "note": "x"}
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


def test_emails_in_text_can_become_pseudonyms() -> None:
    pseudo = Pseudonymizer(KEY, {})
    redactor = Redactor(RedactionPolicy(actions={"EMAIL_ADDRESS": "pseudonym"}), pseudo)
    out = redactor.redact("cc ann.lee@acme.example.com and SSN 536-22-8751").text
    mailbox = pseudo.email("ann.lee@acme.example.com")
    assert out == f"cc {mailbox} and SSN <US_SSN>"
    assert pseudo.reveal(mailbox) == "ann.lee@acme.example.com"


def test_national_phone_formats_follow_the_policys_regions(redactor: Redactor) -> None:
    text = "ring 020 7946 0958 tomorrow"
    assert redactor.redact(text).text == text  # a UK national number is not read as a US one
    uk = Redactor(RedactionPolicy(phone_regions=("US", "GB")))
    assert uk.redact(text).text == "ring <PHONE_NUMBER> tomorrow"
