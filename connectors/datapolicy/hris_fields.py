"""Which HRIS fields a profile may read: a catalog that puts every field in a class, and the choice,
made before any request, of the fields a call asks for and the fields it withholds.

Classes (issue 16): ``public`` (names, work email, department, division, job title, location,
manager), ``internal`` (hire date, status, work phone), ``restricted`` (compensation, pay, date of
birth, SSN / national id, bank, home address, personal e-mail and phone), ``special`` (health,
leave reasons, notes, dependents, ethnicity). A field the catalog does not know — a company's
custom field, a numeric field id, a misspelling — is ``restricted`` until the operator classes it:
being wrong in that direction withholds a field, the other way leaks one.

Defaults are given for BambooHR's field aliases (its "list of field names" and the fields the
sandbox serves), for BambooHR's time-off records, and for the provider-neutral ``Employee`` and
``TimeOffRequest`` of ``connectors.hris``. A time-off type ("Sick", "Bereavement") is kept
``internal`` so that "who is out next week" works with internal access; the notes, where reasons
are written, are ``special``. An operator who wants the type treated as a reason reclasses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class FieldClass(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"
    SPECIAL = "special"


PUBLIC, INTERNAL, RESTRICTED, SPECIAL = (
    FieldClass.PUBLIC,
    FieldClass.INTERNAL,
    FieldClass.RESTRICTED,
    FieldClass.SPECIAL,
)


def _classes(**groups: Iterable[str]) -> dict[str, FieldClass]:
    return {name: FieldClass(cls) for cls, names in groups.items() for name in names}


# BambooHR employee field aliases (https://documentation.bamboohr.com/docs/list-of-field-names, the
# OpenAPI description in sandbox/bamboohr/spec/, and sandbox/bamboohr/data.py).
BAMBOOHR_EMPLOYEE_CLASSES: Mapping[str, FieldClass] = MappingProxyType(
    _classes(
        public=(
            "id",
            "firstName",
            "middleName",
            "lastName",
            "preferredName",
            "displayName",
            "fullName1",
            "fullName2",
            "fullName3",
            "fullName4",
            "fullName5",
            "workEmail",
            "department",
            "division",
            "jobTitle",
            "location",
            "supervisor",
            "supervisorEId",
            "supervisorId",
            "supervisorEmail",
            "isPhotoUploaded",
            "photoUploaded",
            "photoUrl",
        ),
        internal=(
            "employeeNumber",
            "status",
            "employmentHistoryStatus",
            "employmentStatus",
            "hireDate",
            "originalHireDate",
            "terminationDate",
            "workPhone",
            "workPhoneExtension",
            "workPhonePlusExtension",
            "standardHoursPerWeek",
            "flsaCode",
            "lastChanged",
            "canUploadPhoto",
        ),
        restricted=(
            # compensation and pay
            "payRate",
            "payType",
            "payPer",
            "paidPer",
            "payPeriod",
            "payFrequency",
            "paySchedule",
            "payScheduleId",
            "payGroup",
            "payGroupId",
            "payChangeReason",
            "payRateEffectiveDate",
            "exempt",
            "compensation",
            "bonusAmount",
            "bonusDate",
            "bonusReason",
            "commissionAmount",
            "commisionDate",  # BambooHR's kept typo
            # identity
            "dateOfBirth",
            "birthDate",
            "birthday",
            "age",
            "ssn",
            "sin",
            "nin",
            "nationalId",
            "ein",
            "gender",
            "maritalStatus",
            "marital",
            "nationality",
            "citizenship",
            # bank
            "bankName",
            "bankAccountNumber",
            "bankRoutingNumber",
            "directDeposit",
            # home address and personal contact
            "address1",
            "address2",
            "city",
            "state",
            "stateCode",
            "zipcode",
            "country",
            "homeEmail",
            "bestEmail",  # the work e-mail if set, else the home one
            "homePhone",
            "mobilePhone",
            "emergencyContacts",
        ),
        special=(
            "ethnicity",
            "eeo",
            "veteranStatus",
            "disability",
            "disabilityStatus",
            "dependents",
            "employeeDependents",
            "notes",
            "acaStatus",
            "acaStatusCategory",
        ),
    )
)

# BambooHR time-off request keys (GET /time_off/requests).
BAMBOOHR_TIME_OFF_CLASSES: Mapping[str, FieldClass] = MappingProxyType(
    _classes(
        public=("id", "employeeId", "name"),
        internal=("status", "start", "end", "created", "type", "amount", "dates", "actions"),
        special=("notes",),
    )
)

# The provider-neutral shapes of connectors.hris.
EMPLOYEE_CLASSES: Mapping[str, FieldClass] = MappingProxyType(
    _classes(
        public=(
            "id",
            "first_name",
            "last_name",
            "preferred_name",
            "display_name",
            "email",
            "department",
            "division",
            "location",
            "job_title",
            "manager_id",
        ),
        internal=("status", "hire_date", "termination_date", "employee_number"),
    )
)
TIME_OFF_CLASSES: Mapping[str, FieldClass] = MappingProxyType(
    _classes(
        public=("id", "employee_id", "employee_name"),
        internal=("type", "type_id", "start", "end", "amount", "unit", "status", "created"),
        special=("notes",),
    )
)

# Unified Employee field -> the BambooHR alias it is built from (bamboohr_shapes.to_employee).
EMPLOYEE_TO_BAMBOOHR: Mapping[str, str] = MappingProxyType(
    {
        "id": "id",
        "first_name": "firstName",
        "last_name": "lastName",
        "preferred_name": "preferredName",
        "display_name": "displayName",
        "email": "workEmail",
        "department": "department",
        "division": "division",
        "location": "location",
        "job_title": "jobTitle",
        "status": "status",
        "hire_date": "hireDate",
        "termination_date": "terminationDate",
        "manager_id": "supervisorEId",
        "employee_number": "employeeNumber",
    }
)
BAMBOOHR_TO_EMPLOYEE: Mapping[str, str] = MappingProxyType({v: k for k, v in EMPLOYEE_TO_BAMBOOHR.items()})


@dataclass(frozen=True)
class FieldCatalog:
    """Field name -> class; anything unknown is ``default`` (restricted)."""

    classes: Mapping[str, FieldClass]
    default: FieldClass = RESTRICTED

    def class_of(self, name: str) -> FieldClass:
        return self.classes.get(name, self.default)

    def knows(self, name: str) -> bool:
        return name in self.classes

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names this catalog has no class for (for a profile form: "unknown field(s): ...")."""
        return sorted({n for n in names if n not in self.classes})

    def with_classes(self, overrides: Mapping[str, FieldClass | str]) -> FieldCatalog:
        """The operator's classes for custom fields (or changed defaults) on top of this catalog.
        A bad class name is a ``ValueError`` naming it."""
        merged = dict(self.classes)
        for name, cls in overrides.items():
            try:
                merged[name] = FieldClass(cls)
            except ValueError:
                raise ValueError(f"unknown field class {cls!r} for {name!r}: use one of {_CLASS_NAMES}") from None
        return FieldCatalog(MappingProxyType(merged), self.default)

    def fields_in(self, classes: Iterable[FieldClass | str]) -> list[str]:
        wanted = {FieldClass(c) for c in classes}
        return [name for name, cls in self.classes.items() if cls in wanted]


_CLASS_NAMES = ", ".join(c.value for c in FieldClass)

BAMBOOHR_EMPLOYEES = FieldCatalog(BAMBOOHR_EMPLOYEE_CLASSES)
BAMBOOHR_TIME_OFF = FieldCatalog(BAMBOOHR_TIME_OFF_CLASSES)
EMPLOYEES = FieldCatalog(EMPLOYEE_CLASSES)
TIME_OFF = FieldCatalog(TIME_OFF_CLASSES)


@dataclass(frozen=True)
class FieldAccess:
    """What a profile allows: whole classes and/or named fields (a named field is allowed whatever
    its class: that is how an operator opens one restricted field to one profile)."""

    classes: frozenset[FieldClass] = frozenset()
    fields: frozenset[str] = frozenset()

    @classmethod
    def build(cls, classes: Iterable[str] = (), fields: Iterable[str] = ()) -> FieldAccess:
        """From plain values (a profile row); an unknown class is a ``ValueError`` naming it."""
        parsed = set()
        for name in classes:
            try:
                parsed.add(FieldClass(name))
            except ValueError:
                raise ValueError(f"unknown field class {name!r}: use one of {_CLASS_NAMES}") from None
        return cls(frozenset(parsed), frozenset(fields))

    def allows(self, name: str, catalog: FieldCatalog) -> bool:
        return name in self.fields or catalog.class_of(name) in self.classes


@dataclass(frozen=True)
class FieldSelection:
    """``request``: the fields to ask the provider for, in the caller's order. ``withheld``: the
    fields the call wanted that policy kept back (to tell the agent). ``strip``: fields requested
    only because the record scope must read them, to drop from the answer before it leaves."""

    request: tuple[str, ...]
    withheld: tuple[str, ...] = ()
    strip: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, list[str]]:
        return {"request": list(self.request), "withheld": list(self.withheld), "strip": list(self.strip)}


def select_fields(
    catalog: FieldCatalog,
    access: FieldAccess,
    wanted: Iterable[str],
    *,
    scope_fields: Iterable[str] = (),
) -> FieldSelection:
    """The fields a call may request, and those it may not.

    ``wanted``: what the call would ask for without a policy (its explicit fields, or the
    connector's defaults). ``scope_fields``: what the record scope must read to decide (department,
    status, manager...): requested even when the profile may not see them, but only if they are
    ``public`` or ``internal`` — a scope that would need a restricted field is a ``ValueError``, since
    a restricted field is never requested.
    """
    request: list[str] = []
    withheld: list[str] = []
    for name in dict.fromkeys(str(n) for n in wanted):
        (request if access.allows(name, catalog) else withheld).append(name)
    strip: list[str] = []
    for name in dict.fromkeys(scope_fields):
        if name in request:
            continue
        if catalog.class_of(name) not in (PUBLIC, INTERNAL):
            raise ValueError(f"the record scope reads {name!r}, which is {catalog.class_of(name).value}")
        request.append(name)
        strip.append(name)
    return FieldSelection(tuple(request), tuple(sorted(withheld)), tuple(strip))


def unified_to_bamboohr(fields: Iterable[str]) -> list[str]:
    """Unified Employee names -> BambooHR aliases (a name with no alias is passed on as given, and
    the catalog then judges it: unknown means restricted)."""
    return [EMPLOYEE_TO_BAMBOOHR.get(f, f) for f in fields]
