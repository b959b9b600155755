"""The sandbox company's data: fields, lists, employees, time off and saved reports, seeded with Faker.

Everything is deterministic for a given seed (and day: time off is placed around today so that
"who is out next week" has answers). Values are kept the way BambooHR shows them: text, ``Active``
/ ``Inactive``, ``YYYY-MM-DD`` dates, employee ids as the key of ``Company.employees``.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

# (id, name, type, alias). Ids of account-defined ("custom") fields start at 4000 as in BambooHR.
FIELDS: list[tuple[int, str, str, str]] = [
    (1, "Employee #", "text", "employeeNumber"),
    (2, "First Name", "text", "firstName"),
    (3, "Middle Name", "text", "middleName"),
    (4, "Last Name", "text", "lastName"),
    (5, "Preferred Name", "text", "preferredName"),
    (6, "Display Name", "text", "displayName"),
    (7, "Status", "status", "status"),
    (8, "Work Email", "email", "workEmail"),
    (9, "Home Email", "email", "homeEmail"),
    (10, "Work Phone", "phone", "workPhone"),
    (11, "Mobile Phone", "phone", "mobilePhone"),
    (12, "Job Title", "list", "jobTitle"),
    (13, "Department", "list", "department"),
    (14, "Division", "list", "division"),
    (15, "Location", "list", "location"),
    (16, "Hire Date", "date", "hireDate"),
    (17, "Original Hire Date", "date", "originalHireDate"),
    (18, "Termination Date", "date", "terminationDate"),
    (19, "Birth Date", "date", "dateOfBirth"),
    (20, "Gender", "gender", "gender"),
    (21, "Supervisor EID", "int", "supervisorEId"),
    (22, "Reporting to", "employee", "supervisor"),
    (23, "Address Line 1", "text", "address1"),
    (24, "City", "text", "city"),
    (25, "State", "state", "state"),
    (26, "Country", "country", "country"),
    (27, "Zip Code", "text", "zipcode"),
    (28, "Last changed", "timestamp", "lastChanged"),
    (4001, "Shirt Size", "list", "customShirtSize"),
    (4002, "Allergies", "textarea", "customAllergies"),
    (4003, "Laptop Model", "text", "customLaptopModel"),
    (4004, "Remote Eligible", "checkbox", "customRemoteEligible"),
]
FIELD_BY_ALIAS = {alias: (fid, name, ftype) for fid, name, ftype, alias in FIELDS}
FIELD_ALIAS_BY_ID = {str(fid): alias for fid, _name, _type, alias in FIELDS}
DATE_FIELDS = {alias for _id, _name, ftype, alias in FIELDS if ftype == "date"}
# Computed by BambooHR; writes to them are ignored, as BambooHR ignores writes to age or fullName1.
READ_ONLY_FIELDS = {"displayName", "supervisor", "lastChanged", "age"}

DEPARTMENTS: dict[str, list[str]] = {
    "Engineering": ["Software Engineer", "Senior Software Engineer", "Engineering Manager", "QA Analyst"],
    "Product": ["Product Manager", "Product Designer", "UX Researcher"],
    "Sales": ["Account Executive", "Sales Development Representative", "Sales Manager"],
    "Marketing": ["Marketing Specialist", "Content Strategist", "Marketing Manager"],
    "Customer Success": ["Customer Success Manager", "Support Engineer", "Support Specialist"],
    "Finance": ["Accountant", "Financial Analyst", "Controller"],
    "Human Resources": ["HR Generalist", "Recruiter", "HR Manager"],
    "Operations": ["Operations Coordinator", "Office Manager", "IT Administrator"],
}
EXECUTIVE_TITLES = ["Chief Executive Officer", "VP of Engineering", "VP of Sales", "VP of People"]
DIVISIONS = ["North America", "EMEA", "APAC"]
LOCATIONS = {
    "Lindon, Utah": ("North America", "UT", "USA"),
    "New York, New York": ("North America", "NY", "USA"),
    "Remote - US": ("North America", "CA", "USA"),
    "London, UK": ("EMEA", "", "United Kingdom"),
    "Berlin, Germany": ("EMEA", "", "Germany"),
    "Sydney, Australia": ("APAC", "NSW", "Australia"),
}
SHIRT_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
LAPTOPS = ["MacBook Pro 14", "MacBook Air 13", "ThinkPad X1 Carbon", "Dell XPS 13"]
GENDERS = ["Female", "Male", "Nonbinary"]

# id, name, units, color, icon
TIME_OFF_TYPES: list[tuple[int, str, str, str, str]] = [
    (78, "Vacation", "days", "56afdd", "palm-trees"),
    (79, "Sick", "days", "e27d60", "medical-briefcase"),
    (80, "Bereavement", "days", "8b8b8b", "heart"),
    (81, "Comp/In Lieu Time", "hours", "c3a6ea", "time-reversed"),
]
TIME_OFF_NOTES = ["Family trip", "Doctor's appointment", "Long weekend", "Moving house", "Conference", ""]

# Saved ("company") reports: id -> (title, fields).
REPORTS: dict[int, tuple[str, list[str]]] = {
    1: ("Employee list", ["employeeNumber", "firstName", "lastName", "workEmail", "department", "jobTitle", "status"]),
    2: ("Headcount by location", ["location", "division", "department", "status", "hireDate"]),
    3: ("Terminations", ["firstName", "lastName", "department", "hireDate", "terminationDate", "status"]),
}


def list_options() -> dict[str, list[str]]:
    """List-type field alias -> its options (BambooHR's /meta/lists)."""
    titles = sorted({t for ts in DEPARTMENTS.values() for t in ts} | set(EXECUTIVE_TITLES))
    return {
        "department": sorted(DEPARTMENTS),
        "division": list(DIVISIONS),
        "location": list(LOCATIONS),
        "jobTitle": titles,
        "customShirtSize": list(SHIRT_SIZES),
    }


@dataclass
class TimeOff:
    id: int
    employee_id: int
    type_id: int
    start: dt.date
    end: dt.date
    created: dt.date
    status: str  # BambooHR spelling: requested, approved, denied, canceled, superceded
    status_changed: dt.date
    status_changed_by: int
    amount: float
    unit: str
    dates: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class Company:
    name: str
    employees: dict[int, dict[str, str | None]] = field(default_factory=dict)
    # employee id -> (action, when): what /employees/changed reports.
    changes: dict[int, tuple[str, dt.datetime]] = field(default_factory=dict)
    time_off: dict[int, TimeOff] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=list_options)
    next_employee_id: int = 1
    next_time_off_id: int = 1


def _ascii(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())


def utc_today() -> dt.date:
    """The sandbox's calendar day: UTC, like the hub's (TIME_ZONE = "UTC")."""
    return dt.datetime.now(dt.UTC).date()


def working_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def display_name(record: dict[str, Any]) -> str:
    first = record.get("preferredName") or record.get("firstName") or ""
    return f"{first} {record.get('lastName') or ''}".strip()


def seed_company(name: str, employees: int, seed: int, today: dt.date | None = None) -> Company:
    """A company of ``employees`` people with a management tree, some leavers, and time off."""
    today = today or utc_today()
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    # Faker is slow per call (tens of microseconds); pools of its names combined at random give
    # realistic people fast enough for 10,000+ employees.
    pool = max(20, min(employees, 600))
    first_names = [fake.first_name() for _ in range(pool)]
    last_names = [fake.last_name() for _ in range(pool)]
    streets = [fake.street_address() for _ in range(min(pool, 200))]
    allergies = ["", "", "", "Peanuts", "Shellfish", "Gluten", "Lactose"]
    company = Company(name=name)
    domain = f"{_ascii(name) or 'company'}.example.com"
    emails: set[str] = set()
    managers_by_department: dict[str, list[int]] = {}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    for eid in range(1, employees + 1):
        first, last = rng.choice(first_names), rng.choice(last_names)
        base = f"{_ascii(first)}.{_ascii(last)}"
        email, n = f"{base}@{domain}", 1
        while email in emails:
            n += 1
            email = f"{base}{n}@{domain}"
        emails.add(email)
        if eid <= len(EXECUTIVE_TITLES):
            department = ["Operations", "Engineering", "Sales", "Human Resources"][eid - 1]
            title = EXECUTIVE_TITLES[eid - 1]
            manager: int | None = None if eid == 1 else 1
        else:
            department = rng.choice(list(DEPARTMENTS))
            title = rng.choice(DEPARTMENTS[department])
            candidates = managers_by_department.get(department) or [1]
            manager = rng.choice(candidates[-20:])
        if "Manager" in title or eid <= len(EXECUTIVE_TITLES):
            managers_by_department.setdefault(department, []).append(eid)
        location = rng.choice(list(LOCATIONS))
        division, state, country = LOCATIONS[location]
        hire = today - dt.timedelta(days=rng.randint(1, 12 * 365))
        inactive = eid > 10 and rng.random() < 0.1
        termination = hire + dt.timedelta(days=rng.randint(30, max(31, (today - hire).days))) if inactive else None
        if termination and termination >= today:
            termination = today - dt.timedelta(days=1)
        rehired = rng.random() < 0.05
        record: dict[str, str | None] = {
            "employeeNumber": str(1000 + eid),
            "firstName": first,
            "middleName": None,
            "lastName": last,
            "preferredName": first if rng.random() < 0.15 else None,
            "status": "Inactive" if inactive else "Active",
            "workEmail": email,
            "homeEmail": f"{base}{rng.randint(1, 99)}@example.net",
            "workPhone": f"801-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            "mobilePhone": f"801-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            "jobTitle": title,
            "department": department,
            "division": division,
            "location": location,
            "hireDate": hire.isoformat(),
            # BambooHR leaves dates it does not know as "0000-00-00" (kept as None here, rendered so).
            "originalHireDate": (hire - dt.timedelta(days=rng.randint(400, 2000))).isoformat() if rehired else None,
            "terminationDate": termination.isoformat() if termination else None,
            "dateOfBirth": (hire - dt.timedelta(days=rng.randint(20 * 365, 45 * 365))).isoformat(),
            "gender": rng.choice(GENDERS),
            "supervisorEId": str(manager) if manager else None,
            "address1": rng.choice(streets),
            "city": location.split(",")[0].replace("Remote - US", "Sacramento"),
            "state": state or None,
            "country": country,
            "zipcode": f"{rng.randint(10000, 99999)}",
            "customShirtSize": rng.choice(SHIRT_SIZES),
            "customAllergies": rng.choice(allergies) or None,
            "customLaptopModel": rng.choice(LAPTOPS),
            "customRemoteEligible": "yes" if location.startswith("Remote") or rng.random() < 0.3 else "no",
        }
        company.employees[eid] = record
        changed = dt.datetime.combine(hire, dt.time(9), tzinfo=dt.UTC) + dt.timedelta(
            seconds=rng.randint(
                0, max(1, int((now - dt.datetime.combine(hire, dt.time(9), tzinfo=dt.UTC)).total_seconds()))
            )
        )
        company.changes[eid] = ("Inserted" if (today - hire).days < 30 else "Updated", min(changed, now))
    company.next_employee_id = employees + 1
    refresh_derived(company)

    active = [eid for eid, rec in company.employees.items() if rec["status"] == "Active"]
    for eid in active:
        if rng.random() >= 0.3:
            continue
        for _ in range(rng.randint(1, 3)):
            type_id, _tname, unit, _c, _i = rng.choice(TIME_OFF_TYPES)
            start = today + dt.timedelta(days=rng.randint(-120, 120))
            end = start + dt.timedelta(days=rng.randint(0, 4))
            days = working_days(start, end) or [start]
            per_day = 8.0 if unit == "hours" else 1.0
            if start > today:
                status = rng.choice(["requested", "requested", "approved"])
            else:
                status = rng.choice(["approved", "approved", "approved", "denied", "canceled"])
            created = min(today, start) - dt.timedelta(days=rng.randint(1, 30))
            note = rng.choice(TIME_OFF_NOTES)
            add_time_off(
                company,
                employee_id=eid,
                type_id=type_id,
                start=start,
                end=end,
                status=status,
                dates={d.isoformat(): per_day for d in days},
                notes={"employee": note} if note else {},
                created=created,
                changed_by=int(company.employees[eid].get("supervisorEId") or 1),
            )
    return company


def refresh_derived(company: Company, only: int | None = None) -> None:
    """Fields BambooHR computes: the display name and the supervisor's name."""
    ids = [only] if only is not None else list(company.employees)
    for eid in ids:
        record = company.employees[eid]
        record["displayName"] = display_name(record)
    # Renaming one employee changes the "Reporting to" of everyone under them.
    for record in company.employees.values():
        supervisor = record.get("supervisorEId")
        manager = company.employees.get(int(supervisor)) if supervisor else None
        record["supervisor"] = f"{manager['lastName']}, {manager['firstName']}" if manager else None


def add_time_off(
    company: Company,
    *,
    employee_id: int,
    type_id: int,
    start: dt.date,
    end: dt.date,
    status: str,
    dates: dict[str, float],
    notes: dict[str, str],
    created: dt.date,
    changed_by: int,
    amount: float | None = None,
) -> TimeOff:
    unit = next(t[2] for t in TIME_OFF_TYPES if t[0] == type_id)
    request = TimeOff(
        id=company.next_time_off_id,
        employee_id=employee_id,
        type_id=type_id,
        start=start,
        end=end,
        created=created,
        status=status,
        status_changed=created,
        status_changed_by=changed_by,
        amount=amount if amount is not None else sum(dates.values()),
        unit=unit,
        dates=dates,
        notes=notes,
    )
    company.time_off[request.id] = request
    company.next_time_off_id += 1
    return request
