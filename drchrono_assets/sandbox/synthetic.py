"""Deterministic synthetic practice: three doctors, two offices, ~300 patients, and a
calendar of visits, documents and billing line items between two dates. A
`PracticeSize` makes it bigger (`LARGE`: 8 doctors, 5,000 patients, ~100 appointments a
weekday); the default size is the small practice, unchanged draw for draw.

Every part draws from its own `random.Random` seeded with a string derived from the
seed, so the same seed gives the same practice on any machine and port, and changing
how one part is generated does not reshuffle the others.

In evolving mode this is the practice once everything has happened (`today` after the
history's end); `evolution` derives the versions that led to it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar

from drchrono_assets.sandbox import charges

Record = dict[str, Any]

APPOINTMENT_STATUSES = (
    "",
    "Arrived",
    "Cancelled",
    "Complete",
    "Confirmed",
    "In Session",
    "No Show",
    "Not Confirmed",
    "Rescheduled",
)
#: Statuses of days already past, weighted: mostly seen, some cancelled or missed.
PAST_STATUS_WEIGHTS = {
    "Complete": 80,
    "Cancelled": 6,
    "No Show": 4,
    "Rescheduled": 3,
    "Arrived": 2,
    "In Session": 1,
    "Confirmed": 1,
    "Not Confirmed": 1,
    "": 2,
}
#: Statuses of today and later.
FUTURE_STATUS_WEIGHTS = {
    "Confirmed": 45,
    "Not Confirmed": 32,
    "": 15,
    "Cancelled": 5,
    "Rescheduled": 3,
}
#: Visits that produce billing line items.
BILLABLE_STATUSES = ("Complete", "Arrived", "In Session")

SETTLED_BILLING_WEIGHTS = {
    "Paid in Full": 50,
    "Partially Paid": 9,
    "ERA Received": 12,
    "Coordination of Benefits": 4,
    "ERA Denied": 4,
    "Rejected Payer": 2,
    "In Process Payer": 5,
    "Payer Acknowledged": 4,
    "Incomplete Information": 3,
    "Rejected Emdeon": 1,
    "Rejected iHCFA": 1,
    "In Process Emdeon": 1,
    "In Process iHCFA": 1,
    "": 3,
}
RECENT_BILLING_WEIGHTS = {
    "Paid in Full": 10,
    "ERA Received": 8,
    "Partially Paid": 5,
    "In Process Payer": 25,
    "Payer Acknowledged": 15,
    "In Process Emdeon": 10,
    "In Process iHCFA": 5,
    "Incomplete Information": 6,
    "": 10,
    "ERA Denied": 2,
    "Rejected Payer": 1,
    "Rejected Emdeon": 2,
    "Rejected iHCFA": 1,
}

FIRST_NAMES = (
    "Avery", "Blake", "Casey", "Dana", "Eden", "Finley", "Gray", "Harper", "Indigo", "Jordan",
    "Kai", "Lane", "Morgan", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Taylor",
    "Uma", "Val", "Wren", "Xena", "Yael", "Zion", "Ada", "Boris", "Clara", "Dmitri",
    "Elsa", "Felix", "Greta", "Hugo", "Iris", "Jonas", "Kira", "Lars", "Mila", "Nils",
)  # fmt: skip
#: Obviously made-up surnames: nobody mistakes a sandbox chart for a real one.
LAST_NAMES = (
    "Testwell", "Samplesby", "Mockridge", "Dummington", "Placeholder", "Fixtureson",
    "Stubworth", "Examplar", "Pretendini", "Sandboxer", "Notreal", "Fictitious", "Madeupson",
    "Specimen", "Mockwell", "Imaginary", "Protofield", "Synthetica", "Genericson", "Loremson",
    "Ipsumova", "Dolorsit", "Fauxman", "Shamwell", "Phantomly", "Nonesuch", "Hypothetico",
    "Makebelieve", "Nobodyson", "Anonymo",
)  # fmt: skip
INSURERS = (
    # company, payer id, plan name, plan type, claim office number
    ("Acme Health Plans (sandbox)", "99001", "Acme Choice PPO", "PPO", "800-555-0101"),
    ("Placeholder Mutual (sandbox)", "99002", "Placeholder Basic HMO", "HMO", "800-555-0102"),
    ("Medicare (sandbox)", "99003", "Medicare Part B", "Medicare Part B", "800-555-0103"),
    ("Medicaid (sandbox)", "99004", "State Medicaid", "Medicaid", "800-555-0104"),
    ("Example Blue (sandbox)", "99005", "Example Blue EPO", "EPO", "800-555-0105"),
)
#: Contract rate of each payer above: the share of billed it allows.
ALLOWED_RATES = (
    Decimal("0.80"),
    Decimal("0.72"),
    Decimal("0.58"),
    Decimal("0.50"),
    Decimal("0.85"),
)
STREETS = ("Example Ave", "Sample St", "Placeholder Rd", "Fixture Ln", "Mock Blvd", "Stub Way")
CITIES = ("Anytown", "Sampleville", "Exampleton")
LANGUAGES = ("English", "English", "English", "Spanish", "German", "Vietnamese", "")
RACES = ("", "white", "black", "asian", "other", "declined")
ETHNICITIES = ("", "not_hispanic", "hispanic", "declined")
REASONS = (
    "Back pain", "Follow-up on labs", "Cough", "Medication review", "Headache", "Rash",
    "Blood pressure check", "Sore throat", "Annual exam", "Knee pain", "Fatigue", "Allergies",
)  # fmt: skip
ICD9 = ("401.9", "250.00", "272.4", "477.9", "724.2", "780.79", "462", "786.2", "719.46")
DOCUMENT_KINDS = (
    ("Lab results", ["lab"]),
    ("Referral letter", ["referral"]),
    ("Insurance card scan", ["insurance", "scan"]),
    ("Signed intake form", ["intake"]),
    ("Imaging report", ["imaging", "radiology"]),
    ("Consent form", ["consent"]),
)

DOCTORS = (
    # id, first, last, suffix, specialty, npi, user id, username
    (101, "Ada", "Testwell", "MD", "Family Medicine", "1000000011", 301, "atestwell"),
    (102, "Basil", "Mockridge", "DO", "Internal Medicine", "1000000029", 302, "bmockridge"),
    (103, "Cora", "Samplesby", "MD", "Pediatrics", "1000000037", 303, "csamplesby"),
)
#: Degrees and specialties of the doctors a larger practice adds, in turn.
EXTRA_SPECIALTIES = (
    ("MD", "Family Medicine"),
    ("DO", "Internal Medicine"),
    ("MD", "Pediatrics"),
    ("MD", "Obstetrics and Gynecology"),
    ("DO", "Sports Medicine"),
    ("MD", "Geriatric Medicine"),
)
#: User ids of the two staff users; a larger practice's extra doctors' users follow them.
STAFF_USER_IDS = (304, 305)
MAIN_OFFICE, SATELLITE_OFFICE = 201, 202
#: Office and exam room of the doctors beyond the three named ones (see `doctor_location`).
EXTRA_LOCATIONS = (
    (SATELLITE_OFFICE, 2),
    (MAIN_OFFICE, 1),
    (SATELLITE_OFFICE, 1),
    (MAIN_OFFICE, 2),
    (MAIN_OFFICE, 3),
)
PROFILES = (
    # id, name, duration, color, reason, online_scheduling
    (401, "Office Visit", 30, "#4A90D9", "Office visit", True),
    (402, "Follow-up", 15, "#7ED321", "Follow-up visit", True),
    (403, "New Patient", 45, "#F5A623", "New patient visit", True),
    (404, "Annual Physical", 45, "#BD10E0", "Annual physical exam", False),
)
TEMPLATES = (
    # id, office, week_day (0 = Monday), time, exam_room, profile
    (501, MAIN_OFFICE, 0, time(8, 30), 1, 403),
    (502, MAIN_OFFICE, 2, time(13, 0), 2, 404),
    (503, SATELLITE_OFFICE, 4, time(9, 15), 1, 401),
    (504, MAIN_OFFICE, 1, time(14, 30), 3, 402),
    (505, SATELLITE_OFFICE, 0, time(10, 0), 1, 401),
    (506, MAIN_OFFICE, 3, time(15, 15), 1, 401),
)
#: Visit slots of a doctor's day, around the lunch break.
MORNING_SLOTS = (time(8, 30), time(9, 15), time(10, 0), time(10, 45))
LUNCH = time(12, 0)
AFTERNOON_SLOTS = (time(13, 0), time(13, 45), time(14, 30), time(15, 15))
EXTRA_SLOT = time(16, 0)
BREAK_COLOR = "#CCCCCC"
#: Other sizes' slots: every half hour from 8:30 and from 13:00, closer if many.
SLOT_MINUTES = 30
FIRST_MORNING_SLOT = time(8, 30)
LAST_MORNING_SLOT = time(11, 30)
FIRST_AFTERNOON_SLOT = time(13, 0)
#: Weekly recurring series of the default size (3 doctors x 8 slots x 5 days: ~6%).
DEFAULT_SERIES = 7

FIRST_APPOINTMENT_ID = 100000
FIRST_PATIENT_ID = 10001
FIRST_DOCUMENT_ID = 70001
FIRST_TRANSACTION_ID = 900001
FIRST_REMINDER_ID = 5000001

MEDIA_ROOT = "/site_media/uploaded_media/sandbox"


@dataclass(frozen=True)
class PracticeSize:
    """How big the synthetic practice is. The default is the small practice the sandbox
    has always served; `PracticeSize.LARGE` is a busy one, for benchmarks.

    `visits_per_day` is the visit slots of a doctor's weekday, before the lunch break
    and the odd extra or missing slot. Doctors beyond the three named ones are made up
    deterministically (ids from 104, users from 306).
    """

    SMALL: ClassVar[PracticeSize]
    LARGE: ClassVar[PracticeSize]

    doctors: int = 3
    patients: int = 300
    visits_per_day: int = 8

    def __post_init__(self) -> None:
        # Doctor ids stay within 101-199; more than 24 slots would not fit in the day.
        if not 1 <= self.doctors <= 99:
            raise ValueError(f"doctors must be 1 to 99, not {self.doctors}")
        if self.patients < 1:
            raise ValueError(f"patients must be at least 1, not {self.patients}")
        if not 1 <= self.visits_per_day <= 24:
            raise ValueError(f"visits_per_day must be 1 to 24, not {self.visits_per_day}")

    @classmethod
    def from_name(cls, name: str) -> PracticeSize:
        """A preset by name: `small` or `large` (any case); `ValueError` otherwise."""
        try:
            return SIZES[name.lower()]
        except KeyError:
            raise ValueError(f"unknown practice size {name!r}: one of {', '.join(SIZES)}") from None


SMALL = PracticeSize()
#: 8 doctors x (12 visits + lunch) = ~100 appointments a weekday.
LARGE = PracticeSize(doctors=8, patients=5000, visits_per_day=12)
PracticeSize.SMALL, PracticeSize.LARGE = SMALL, LARGE
#: The presets by name, for command lines.
SIZES: dict[str, PracticeSize] = {"small": SMALL, "large": LARGE}


def npi_check_digit(base: str) -> int:
    """The Luhn check digit of a 9-digit NPI base (with the `80840` health prefix)."""
    total = 0
    for position, char in enumerate(reversed("80840" + base)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


@cache
def doctor_table(doctors: int) -> tuple[tuple[Any, ...], ...]:
    """`DOCTORS`-shaped rows of a practice with `doctors` doctors: the named three (or
    the first ones), then made-up ones with unique names, NPIs and usernames."""
    rows: list[tuple[Any, ...]] = list(DOCTORS[:doctors])
    used_last = {row[2] for row in DOCTORS}
    spare_last = [name for name in LAST_NAMES if name not in used_last]
    usernames = {row[7] for row in rows}
    for k in range(doctors - len(DOCTORS)):
        doctor_id = DOCTORS[-1][0] + 1 + k
        first = FIRST_NAMES[(7 * k + 3) % len(FIRST_NAMES)]
        last = spare_last[k % len(spare_last)]
        suffix, specialty = EXTRA_SPECIALTIES[k % len(EXTRA_SPECIALTIES)]
        base = f"{100000000 + len(DOCTORS) + 1 + k}"
        username = f"{first[0]}{last}".lower()
        if username in usernames:
            username += str(doctor_id)
        usernames.add(username)
        user_id = STAFF_USER_IDS[-1] + 1 + k
        npi = f"{base}{npi_check_digit(base)}"
        rows.append((doctor_id, first, last, suffix, specialty, npi, user_id, username))
    return tuple(rows)


@cache
def visit_slots(visits_per_day: int) -> tuple[tuple[time, ...], tuple[time, ...], time]:
    """A doctor's morning and afternoon visit slots and the odd extra one after them.

    Eight a day are the historic `MORNING_SLOTS`, `AFTERNOON_SLOTS` and `EXTRA_SLOT`.
    Otherwise half (rounded up) start from 8:30, the rest from 13:00, every half hour,
    closer when that would run the morning past 11:30.
    """
    if visits_per_day == len(MORNING_SLOTS) + len(AFTERNOON_SLOTS):
        return MORNING_SLOTS, AFTERNOON_SLOTS, EXTRA_SLOT
    morning = (visits_per_day + 1) // 2
    window = _minutes(LAST_MORNING_SLOT) - _minutes(FIRST_MORNING_SLOT)
    step = min(SLOT_MINUTES, window // max(morning - 1, 1))
    first, afternoon = _minutes(FIRST_MORNING_SLOT), _minutes(FIRST_AFTERNOON_SLOT)
    count = visits_per_day - morning
    return (
        tuple(_time(first + n * step) for n in range(morning)),
        tuple(_time(afternoon + n * step) for n in range(count)),
        _time(afternoon + count * step),
    )


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def ts(value: datetime) -> str:
    """A naive ISO timestamp, the practice's local time: `2024-03-05T09:30:00`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def part_rng(seed: int, part: str) -> random.Random:
    """An independent, reproducible random stream for one part of the practice."""
    return random.Random(f"drchrono-sandbox:{seed}:{part}")


def appointment_order(record: Record) -> tuple[str, str]:
    """Stable list order of appointments: by start, then id."""
    return record["scheduled_time"], record["id"]


def street_address(rng: random.Random) -> str:
    """A made-up street address: `42 Sample St`."""
    return f"{rng.randint(1, 999)} {rng.choice(STREETS)}"


def zip_code(rng: random.Random) -> str:
    """A made-up California zip code."""
    return f"9{rng.randint(0, 999):04d}"


def phone_number(rng: random.Random) -> str:
    """A number in the 555-01xx range, reserved for fiction."""
    return f"(555) 555-{rng.randint(100, 199):04d}"


def ref(resource: str, record_id: int | str) -> str:
    """The domain-relative path by which responses refer to a record."""
    return f"/api/{resource}/{record_id}"


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    """Draw one key of `weights` with probability proportional to its value."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def weekdays(start: date, end: date) -> Iterator[date]:
    """Monday to Friday between two dates, inclusive."""
    day = start
    while day <= end:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def doctor_location(doctor_id: int, week_day: int) -> tuple[int, int]:
    """Office and exam room where a doctor works on a week day (0 = Monday).

    Dr. 103 splits the week: the satellite office on Monday, Wednesday and Friday. So do
    the doctors a larger practice adds (104 on): each has a place of `EXTRA_LOCATIONS`
    on those days and the next one on Tuesday and Thursday, spread over both offices.
    """
    if doctor_id == 101:
        return MAIN_OFFICE, 1
    if doctor_id == 102:
        return MAIN_OFFICE, 2
    if doctor_id == 103:
        return (SATELLITE_OFFICE, 1) if week_day in (0, 2, 4) else (MAIN_OFFICE, 3)
    place = doctor_id - 104 + (week_day in (1, 3))
    return EXTRA_LOCATIONS[place % len(EXTRA_LOCATIONS)]


@dataclass
class PracticeData:
    """Everything the sandbox serves, plus what it keeps hidden."""

    doctors: list[Record]
    offices: list[Record]
    users: list[Record]
    patients: list[Record]
    appointment_profiles: list[Record]
    appointment_templates: list[Record]
    reminder_profiles: list[Record]
    appointments: list[Record] = field(default_factory=list)
    documents: list[Record] = field(default_factory=list)
    transactions: list[Record] = field(default_factory=list)
    #: Hidden "updated at" per resource and id, the basis of `since` filters.
    updated_at: dict[str, dict[Any, datetime]] = field(default_factory=dict)
    #: Domain-relative path of each document's file (the served URL adds the host).
    document_paths: dict[int, str] = field(default_factory=dict)
    #: Ids of the line items billed to a patient without insurance.
    self_pay_transactions: set[int] = field(default_factory=set)
    account_user_id: int = 301
    next_appointment_id: int = FIRST_APPOINTMENT_ID
    next_document_id: int = FIRST_DOCUMENT_ID
    next_reminder_id: int = FIRST_REMINDER_ID


@dataclass(frozen=True)
class _Series:
    """A weekly recurring appointment: its instances have ids `{series}_{YYYYMMDD}`."""

    series_id: int
    doctor_id: int
    week_day: int
    slot: time
    patient_id: int
    reason: str
    first_day: date


class _Generator:
    """Builds a `PracticeData` from a seed; one instance per build."""

    def __init__(
        self, seed: int, start: date, end: date, today: date, size: PracticeSize = SMALL
    ) -> None:
        self.seed = seed
        self.start = start
        self.end = end
        self.today = today
        self.size = size
        self.table = doctor_table(size.doctors)
        self.morning, self.afternoon, self.extra_slot = visit_slots(size.visits_per_day)
        # Nothing was updated in the future: hidden timestamps stop at today's midnight.
        self.horizon = datetime.combine(today, time(0, 0))

    def rng(self, part: str) -> random.Random:
        """`part_rng` for this practice's seed."""
        return part_rng(self.seed, part)

    def clamp(self, value: datetime, floor: datetime | None = None) -> datetime:
        """Keep a hidden timestamp at or before the horizon (and at or after `floor`)."""
        value = min(value, self.horizon)
        return max(value, floor) if floor is not None else value

    # Static reference data -------------------------------------------------------

    def doctors(self) -> list[Record]:
        rng = self.rng("doctors")
        return [
            {
                "id": doctor_id,
                "first_name": first,
                "last_name": last,
                "suffix": suffix,
                "specialty": specialty,
                "job_title": "Physician",
                "npi_number": npi,
                "group_npi_number": "1999999984",
                "email": f"{username}@sandbox.example.com",
                "cell_phone": f"(555) 555-01{rng.randint(10, 99)}",
                "home_phone": "",
                "office_phone": "(555) 555-0100",
                "country": "US",
                "website": "https://sandbox.example.com",
            }
            for doctor_id, first, last, suffix, specialty, npi, _user, username in self.table
        ]

    def offices(self) -> list[Record]:
        main_rooms = [
            {"index": 1, "name": "Exam Room 1", "online_scheduling": True},
            {"index": 2, "name": "Exam Room 2", "online_scheduling": True},
            {"index": 3, "name": "Procedure Room", "online_scheduling": False},
        ]
        # Timeslot days count from Sunday = 0, unlike template week days (Monday = 0).
        main_slots = [
            {"day": day, "hour": hour, "minute": minute}
            for day in range(1, 6)
            for hour, minute in ((8, 30), (13, 0), (15, 15))
        ]
        return [
            {
                "id": MAIN_OFFICE,
                "name": "Sandbox Family Practice - Main",
                "address": "100 Example Ave",
                "city": "Anytown",
                "state": "CA",
                "zip_code": "90000",
                "country": "US",
                "phone_number": "(555) 555-0100",
                "start_time": "08:00",
                "end_time": "18:00",
                "online_scheduling": True,
                "exam_rooms": main_rooms,
                "online_timeslots": main_slots,
            },
            {
                "id": SATELLITE_OFFICE,
                "name": "Sandbox Family Practice - Riverside",
                "address": "7 Placeholder Rd",
                "city": "Sampleville",
                "state": "CA",
                "zip_code": "90001",
                "country": "US",
                "phone_number": "(555) 555-0150",
                "start_time": "00:00",
                "end_time": "24:00",
                "online_scheduling": False,
                "exam_rooms": [
                    {"index": 1, "name": "Room A", "online_scheduling": False},
                    {"index": 2, "name": "Room B", "online_scheduling": False},
                ],
                "online_timeslots": [],
            },
        ]

    def users(self) -> list[Record]:
        """The named doctors' users, the two staff, then any extra doctors' (by id)."""

        def doctor_user(row: tuple[Any, ...]) -> Record:
            doctor_id, *_rest, user_id, username = row
            return {
                "id": user_id,
                "username": username,
                "doctor": ref("doctors", doctor_id),
                "is_doctor": True,
                "is_staff": False,
            }

        named = len(DOCTORS)
        first, second = self.table[0][0], self.table[min(1, len(self.table) - 1)][0]
        staff: list[Record] = [
            # Staff point at their primary physician.
            {"id": STAFF_USER_IDS[0], "username": "frontdesk", "doctor": ref("doctors", first)},
            {"id": STAFF_USER_IDS[1], "username": "billing", "doctor": ref("doctors", second)},
        ]
        for user in staff:
            user.update({"is_doctor": False, "is_staff": True})
        return [
            *(doctor_user(row) for row in self.table[:named]),
            *staff,
            *(doctor_user(row) for row in self.table[named:]),
        ]

    def appointment_profiles(self) -> list[Record]:
        return [
            {
                "id": profile_id,
                "name": name,
                "duration": duration,
                "color": color,
                "reason": reason,
                "online_scheduling": online,
                "sort_order": order,
            }
            for order, (profile_id, name, duration, color, reason, online) in enumerate(PROFILES)
        ]

    def appointment_templates(self) -> list[Record]:
        durations = {p[0]: p[2] for p in PROFILES}
        return [
            {
                "id": template_id,
                "office": ref("offices", office),
                "week_day": week_day,
                "scheduled_time": at.strftime("%H:%M:%S"),
                "exam_room": room,
                "profile": ref("appointment_profiles", profile),
                "duration": durations[profile],
            }
            for template_id, office, week_day, at, room, profile in TEMPLATES
        ]

    def reminder_profiles(self) -> list[Record]:
        return [
            {
                "id": 601,
                "doctor": ref("doctors", 101),
                "name": "Standard reminders",
                "reminders": [
                    {"amount": 1, "type": "email", "unit": "days"},
                    {"amount": 2, "type": "sms", "unit": "hours"},
                ],
            },
            {
                "id": 602,
                "doctor": ref("doctors", self.table[min(1, len(self.table) - 1)][0]),
                "name": "Call the day before",
                "reminders": [
                    {"amount": 1, "type": "auto_call", "unit": "days"},
                    {"amount": 1, "type": "email", "unit": "weeks"},
                ],
            },
        ]

    # Patients ---------------------------------------------------------------------

    def patients(self, data: PracticeData) -> list[Record]:
        rng = self.rng("patients")
        patients: list[Record] = []
        patient_id = FIRST_PATIENT_ID
        first_update = datetime.combine(self.start - timedelta(days=400), time(8, 0))
        last_update = self.clamp(datetime.combine(self.end, time(18, 0)))
        span = max(int((last_update - first_update).total_seconds()), 1)
        doctors = self.table
        for n in range(self.size.patients):
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            gender = rng.choices(("Female", "Male", "Other"), weights=(50, 47, 3))[0]
            dob = date(1940, 1, 1) + timedelta(days=rng.randint(0, 80 * 365))
            doctor_id = (
                doctors[n % len(doctors)][0] if n % 10 else doctors[rng.randrange(len(doctors))][0]
            )
            insured = rng.random() < 0.9
            insurer = rng.randrange(len(INSURERS))
            company, payer_id, plan_name, plan_type, claim_office = INSURERS[insurer]
            employed = rng.random() < 0.6
            record: Record = {
                "id": patient_id,
                "chart_id": f"{last[:2].upper()}{first[:2].upper()}{n + 1:06d}",
                "first_name": first,
                "middle_name": rng.choice(("", "", "J", "M", "Lee")),
                "last_name": last,
                "date_of_birth": dob.isoformat(),
                "gender": gender,
                "doctor": ref("doctors", doctor_id),
                "email": f"{first.lower()}.{last.lower()}{n + 1}@example.com"
                if rng.random() < 0.8
                else "",
                "address": street_address(rng),
                "city": rng.choice(CITIES),
                "state": "CA",
                "zip_code": zip_code(rng),
                "cell_phone": phone_number(rng),
                "home_phone": phone_number(rng) if rng.random() < 0.3 else "",
                "social_security_number": f"000-{rng.randint(10, 99)}-{rng.randint(0, 9999):04d}",
                "race": rng.choice(RACES),
                "ethnicity": rng.choice(ETHNICITIES),
                "preferred_language": rng.choice(LANGUAGES),
                "primary_care_physician": "",
                "emergency_contact_name": f"{rng.choice(FIRST_NAMES)} {last}",
                "emergency_contact_phone": phone_number(rng),
                "emergency_contact_relation": rng.choice(("Spouse", "Parent", "Sibling", "Friend")),
                "employer": "Example Corp (sandbox)" if employed else "",
                "employer_address": "1 Corporate Way" if employed else "",
                "employer_city": "Anytown" if employed else "",
                "employer_state": "CA" if employed else "",
                "employer_zip_code": "90002" if employed else "",
                "primary_insurance_company": company if insured else "",
                "primary_insurance_id_number": f"SBX{rng.randint(0, 10**9 - 1):09d}"
                if insured
                else "",
                "primary_insurance_group_number": f"G{rng.randint(1000, 9999)}" if insured else "",
                "primary_insurance_claim_office_number": claim_office if insured else "",
                "primary_insurance_payer_id": payer_id if insured else "",
                "primary_insurance_plan_name": plan_name if insured else "",
                "primary_insurance_plan_type": plan_type if insured else "",
            }
            patients.append(record)
            data.updated_at["patients"][patient_id] = first_update + timedelta(
                seconds=rng.randrange(span)
            )
            patient_id += rng.randint(1, 4)
        return patients

    # Calendar ------------------------------------------------------------------------

    def series_count(self) -> int:
        """How many weekly recurring series: 7 for the default size, as many per slot
        for others (capped so that free slots and series numbers stay plentiful)."""
        size = self.size
        slots = size.doctors * size.visits_per_day
        wanted = round(DEFAULT_SERIES * slots / (SMALL.doctors * SMALL.visits_per_day))
        return max(1, min(wanted, slots * 5 // 2, 500))

    def series(self, data: PracticeData) -> dict[tuple[int, int, time], _Series]:
        """About 5% of visit slots belong to a weekly recurring series."""
        rng = self.rng("series")
        templated = {(office, wd, at) for _id, office, wd, at, _room, _p in TEMPLATES}
        series: dict[tuple[int, int, time], _Series] = {}
        used_ids: set[int] = set()
        count = self.series_count()
        while len(series) < count:
            doctor_id = self.table[rng.randrange(len(self.table))][0]
            week_day = rng.randrange(5)
            slot = rng.choice(self.morning + self.afternoon)
            key = (doctor_id, week_day, slot)
            office = doctor_location(doctor_id, week_day)[0]
            series_id = rng.randint(8000, 8999)
            if key in series or series_id in used_ids or (office, week_day, slot) in templated:
                continue
            used_ids.add(series_id)
            offset = rng.randint(0, 20)
            series[key] = _Series(
                series_id=series_id,
                doctor_id=doctor_id,
                week_day=week_day,
                slot=slot,
                patient_id=rng.choice(data.patients)["id"],
                reason=rng.choice(("Weekly allergy injection", "Physical therapy", "B-12 shot")),
                first_day=self.start + timedelta(days=offset),
            )
        return series

    def calendar(self, data: PracticeData) -> None:
        """Appointments, their billing line items, and orphan line items."""
        rng = self.rng("appointments")
        bill_rng = self.rng("transactions")
        series = self.series(data)
        templates = {(office, wd, at): t for t, office, wd, at, _r, _p in TEMPLATES}
        profiles = {p["id"]: p for p in data.appointment_profiles}
        panels: dict[str, list[Record]] = {}
        for patient in data.patients:
            panels.setdefault(patient["doctor"], []).append(patient)
        patients_by_id = {p["id"]: p for p in data.patients}
        next_id = FIRST_APPOINTMENT_ID
        reminder_id = FIRST_REMINDER_ID
        lines: list[Record] = []
        # Ids skipped by the numbering: what orphan line items point at.
        gaps: dict[tuple[int, int], list[tuple[int, date, int]]] = {}

        for day in weekdays(self.start, self.end):
            past = day < self.today
            for doctor in data.doctors:
                doctor_id = doctor["id"]
                office, room = doctor_location(doctor_id, day.weekday())
                slots = list(self.morning + self.afternoon)
                roll = rng.random()
                if roll < 0.1:
                    slots.pop(rng.randrange(len(slots)))
                elif roll < 0.2:
                    slots.append(self.extra_slot)
                morning = len(self.morning)
                for at in [*slots[:morning], LUNCH, *slots[morning:]]:
                    start = datetime.combine(day, at)
                    recurring = series.get((doctor_id, day.weekday(), at))
                    if recurring and day < recurring.first_day:
                        recurring = None
                    if recurring:
                        appointment_id = f"{recurring.series_id}_{day:%Y%m%d}"
                    else:
                        step = rng.randint(1, 3)
                        for skipped in range(next_id + 1, next_id + step):
                            gaps.setdefault((day.year, day.month), []).append(
                                (skipped, day, doctor_id)
                            )
                        next_id += step
                        appointment_id = str(next_id)
                    if at == LUNCH:
                        record = self._break(appointment_id, doctor_id, office, room, start)
                        created = datetime.combine(self.start, time(7, 0)) - timedelta(days=30)
                        data.updated_at["appointments"][appointment_id] = self.clamp(created)
                        data.appointments.append(record)
                        continue
                    template = templates.get((office, day.weekday(), at))
                    if template is not None:
                        profile = profiles[TEMPLATES_BY_ID[template][5]]
                        exam_room = TEMPLATES_BY_ID[template][4]
                    elif recurring:
                        profile, exam_room = profiles[402], room
                    else:
                        profile = profiles[rng.choices((401, 402, 403, 404), (50, 30, 10, 10))[0]]
                        exam_room = room
                    if recurring:
                        patient = patients_by_id[recurring.patient_id]
                        reason = recurring.reason
                    else:
                        panel = panels[ref("doctors", doctor_id)]
                        pool = panel if rng.random() < 0.85 else data.patients
                        patient = rng.choice(pool)
                        reason = rng.choice((profile["reason"], *REASONS))
                    status = weighted(rng, PAST_STATUS_WEIGHTS if past else FUTURE_STATUS_WEIGHTS)
                    seen = status in ("Complete", "Arrived", "In Session")
                    reminders: list[Record] = []
                    if rng.random() < 0.4:
                        for offset, kind in (
                            (timedelta(days=1), "email"),
                            (timedelta(hours=2), "sms"),
                        ):
                            reminders.append(
                                {
                                    "id": reminder_id,
                                    "scheduled_time": ts(start - offset),
                                    "type": kind,
                                }
                            )
                            reminder_id += 1
                    record = {
                        "id": appointment_id,
                        "doctor": ref("doctors", doctor_id),
                        "office": ref("offices", office),
                        "patient": ref("patients", patient["id"]),
                        "scheduled_time": ts(start),
                        "duration": profile["duration"],
                        "exam_room": exam_room,
                        "status": status,
                        "reason": reason,
                        "color": profile["color"],
                        "profile": ref("appointment_profiles", profile["id"]),
                        "template": ref("appointment_templates", template)
                        if template is not None
                        else None,
                        "reminders": reminders,
                        "blood_pressure": f"{rng.randint(105, 150)}/{rng.randint(65, 95)}"
                        if seen
                        else "",
                        "icd9_codes": ",".join(rng.sample(ICD9, rng.randint(1, 2))) if seen else "",
                        "notes": rng.choice(("", "", "", "Prefers morning slots.", "Bring labs."))
                        if status != "Cancelled"
                        else "Cancelled by patient.",
                    }
                    data.appointments.append(record)
                    created = start - timedelta(days=rng.randint(1, 45), hours=rng.randint(0, 6))
                    if past and status in ("Cancelled", "Rescheduled"):
                        updated = start - timedelta(hours=rng.randint(1, 72))
                    elif past:
                        # Checked out after the visit: the status change is the last update.
                        end_of_visit = start + timedelta(minutes=profile["duration"])
                        updated = end_of_visit + timedelta(minutes=rng.randint(0, 180))
                    else:
                        updated = created
                    data.updated_at["appointments"][appointment_id] = self.clamp(
                        updated, floor=min(created, self.horizon)
                    )
                    if past and status in BILLABLE_STATUSES:
                        # About 5% of completed visits were never billed.
                        if status == "Complete" and bill_rng.random() < 0.05:
                            continue
                        # A recurring visit's id is no number: its lines carry the series'
                        # number, which names no appointment (found by doctor, time, office).
                        number = recurring.series_id if recurring else int(appointment_id)
                        lines += self._visit_lines(
                            bill_rng, record, number, doctor, office, patient
                        )
        # List order is by start, then id (generation went doctor by doctor).
        data.appointments.sort(key=appointment_order)
        lines += self._orphan_lines(bill_rng, data, gaps, series)
        data.next_appointment_id = next_id + 1
        data.next_reminder_id = reminder_id
        lines.sort(key=lambda line: (line["date"], line["appointment"], line["_seq"]))
        for offset, line in enumerate(lines):
            line_id = FIRST_TRANSACTION_ID + offset
            updated = line.pop("_updated")
            line.pop("_seq")
            if line.pop("_self_pay"):
                data.self_pay_transactions.add(line_id)
            data.transactions.append({"id": line_id, **line})
            data.updated_at["transactions"][line_id] = updated

    @staticmethod
    def _break(
        appointment_id: str, doctor_id: int, office: int, room: int, start: datetime
    ) -> Record:
        """The daily lunch break: no patient, no status."""
        return {
            "id": appointment_id,
            "doctor": ref("doctors", doctor_id),
            "office": ref("offices", office),
            "patient": None,
            "scheduled_time": ts(start),
            "duration": 60,
            "exam_room": room,
            "status": "",
            "reason": "Lunch",
            "color": BREAK_COLOR,
            "profile": None,
            "template": None,
            "reminders": [],
            "blood_pressure": "",
            "icd9_codes": "",
            "notes": "",
        }

    def _visit_lines(
        self,
        rng: random.Random,
        appointment: Record,
        number: int,
        doctor: Record,
        office: int,
        patient: Record,
    ) -> list[Record]:
        """One to three line items for a visit: the visit code plus extras."""
        count = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        procedures = [rng.choice(charges.VISIT_PROCEDURES)]
        procedures += rng.sample(charges.EXTRA_PROCEDURES, count - 1)
        return [
            self._line(
                rng,
                appointment_id=number,
                when=datetime.fromisoformat(appointment["scheduled_time"]),
                doctor=doctor,
                office=office,
                patient=patient,
                procedure=procedure,
                seq=seq,
                multiple=count > 1,
            )
            for seq, procedure in enumerate(procedures)
        ]

    def _line(
        self,
        rng: random.Random,
        *,
        appointment_id: int,
        when: datetime,
        doctor: Record,
        office: int,
        patient: Record | None,
        procedure: charges.Procedure,
        seq: int,
        multiple: bool,
    ) -> Record:
        """One billing line item, with its hidden updated-at, order and self-pay flag."""
        if procedure.code.startswith("J"):
            quantity = rng.choice((0.5, 1.0, 2.0))
        elif procedure.code in ("90471", "SUPPLY"):
            quantity = rng.choice((1.0, 1.0, 2.0))
        else:
            quantity = 1.0
        self_pay = patient is None or not patient["primary_insurance_company"]
        age = (self.today - when.date()).days
        weights = SETTLED_BILLING_WEIGHTS if age > 45 else RECENT_BILLING_WEIGHTS
        if self_pay:
            status = rng.choice(("Paid in Full", "Paid in Full", ""))
            rate = Decimal("1")
        else:
            status = weighted(rng, weights)
            insurer = [i[0] for i in INSURERS].index(patient["primary_insurance_company"])
            rate = ALLOWED_RATES[insurer]
        if seq == 0:
            share = Decimal(rng.choice((0, 10, 20, 25, 40)))  # copay on the visit line
        else:
            share = charges.q(procedure.price * Decimal(rng.choice((0, 10, 20))) / 100)
        amounts = charges.line_amounts(
            rng,
            price=procedure.price,
            quantity=quantity,
            status=status,
            allowed_rate=rate,
            patient_share=share,
            self_pay=self_pay,
        )
        if rng.random() < 0.01:
            charges.corrupt(rng, amounts)
        denied = status in charges.DENIED_STATUSES
        if denied:
            edi_note = rng.choice(charges.DENIAL_NOTES)
        elif status == "Coordination of Benefits":
            edi_note = "Secondary claim sent"
        else:
            edi_note = ""
        modifiers = ["", "", "", ""]
        if seq == 0 and multiple and rng.random() < 0.5:
            modifiers[0] = "25"  # separately identifiable visit on a day with a procedure
        elif procedure.code.startswith("J") and rng.random() < 0.5:
            modifiers[0] = "JZ"
        pointers: list[int | None] = [1, None, None, None]
        if rng.random() < 0.3:
            pointers[1] = 2
        settled = status in charges.PAID_STATUSES or denied
        delay = rng.randint(14, 45) if settled else rng.randint(0, 6)
        updated = when + timedelta(days=delay, hours=rng.randint(0, 10))
        return {
            "appointment": appointment_id,
            "doctor": doctor["id"],
            "doctor_name": f"{doctor['first_name']} {doctor['last_name']}",
            "location": office,
            "date": ts(when),
            "code": procedure.code,
            "procedure_type": procedure.procedure_type,
            "description": procedure.description,
            "quantity": quantity,
            "units": "UN",
            "modifiers": modifiers,
            "diagnosis_pointers": pointers,
            **charges.format_amounts(amounts),
            "billing_status": status,
            "denied_flag": denied,
            "edi_note": edi_note,
            # Payments arrive after the visit, never before it.
            "_updated": self.clamp(updated, floor=when),
            "_seq": seq,
            "_self_pay": self_pay,
        }

    def _orphan_lines(
        self,
        rng: random.Random,
        data: PracticeData,
        gaps: dict[tuple[int, int], list[tuple[int, date, int]]],
        series: dict[tuple[int, int, time], _Series],
    ) -> list[Record]:
        """A few line items a month whose appointment no longer exists (never at a recurring
        visit's slot, where the billing report would rightly find that visit)."""
        doctors = {d["id"]: d for d in data.doctors}
        lines: list[Record] = []
        for _month, candidates in sorted(gaps.items()):
            candidates = [c for c in candidates if c[1] < self.today]
            if not candidates:
                continue
            # Two to four a month for three doctors, as many per doctor for more.
            count = max(1, rng.randint(2, 4) * len(doctors) // len(DOCTORS))
            for appointment_id, day, doctor_id in rng.sample(
                candidates, min(len(candidates), count)
            ):
                free = [
                    at
                    for at in self.morning + self.afternoon
                    if (doctor_id, day.weekday(), at) not in series
                ]
                at = rng.choice(free)
                lines.append(
                    self._line(
                        rng,
                        appointment_id=appointment_id,
                        when=datetime.combine(day, at),
                        doctor=doctors[doctor_id],
                        office=doctor_location(doctor_id, day.weekday())[0],
                        patient=rng.choice(data.patients),
                        procedure=rng.choice(charges.VISIT_PROCEDURES),
                        seq=0,
                        multiple=False,
                    )
                )
        return lines

    # Documents -----------------------------------------------------------------------

    def documents(self, data: PracticeData) -> None:
        """About two documents per past weekday for every three doctors, attached to that
        day's patients."""
        rng = self.rng("documents")
        by_day: dict[str, list[Record]] = {}
        for appointment in data.appointments:
            if appointment["patient"] is not None:
                by_day.setdefault(appointment["scheduled_time"][:10], []).append(appointment)
        document_id = FIRST_DOCUMENT_ID
        rounds = max(1, round(len(data.doctors) / len(DOCTORS)))
        for day in weekdays(self.start, min(self.end, self.today - timedelta(days=1))):
            for _ in range(sum(rng.choice((1, 2, 2, 2, 3)) for _ in range(rounds))):
                visits = by_day.get(day.isoformat())
                if visits:
                    visit = rng.choice(visits)
                    doctor, patient = visit["doctor"], visit["patient"]
                else:
                    patient_record = rng.choice(data.patients)
                    doctor, patient = (
                        patient_record["doctor"],
                        ref("patients", patient_record["id"]),
                    )
                description, tags = rng.choice(DOCUMENT_KINDS)
                slug = description.lower().replace(" ", "-")
                path = f"{MEDIA_ROOT}/documents/{document_id}/{slug}.pdf"
                data.documents.append(
                    {
                        "id": document_id,
                        "date": day.isoformat(),
                        "description": description,
                        "doctor": doctor,
                        "patient": patient,
                        "metatags": list(tags),
                        "document": path,  # made absolute once the server's URL is known
                    }
                )
                data.document_paths[document_id] = path
                data.updated_at["documents"][document_id] = self.clamp(
                    datetime.combine(day, time(8, 0)) + timedelta(minutes=rng.randint(60, 600))
                )
                document_id += rng.randint(1, 2)
        data.next_document_id = document_id

    def build(self) -> PracticeData:
        data = PracticeData(
            doctors=self.doctors(),
            offices=self.offices(),
            users=self.users(),
            patients=[],
            appointment_profiles=self.appointment_profiles(),
            appointment_templates=self.appointment_templates(),
            reminder_profiles=self.reminder_profiles(),
            updated_at={"appointments": {}, "patients": {}, "documents": {}, "transactions": {}},
            account_user_id=self.table[0][6],
        )
        data.patients = self.patients(data)
        self.calendar(data)
        self.documents(data)
        return data


TEMPLATES_BY_ID = {t[0]: t for t in TEMPLATES}


def generate(
    seed: int,
    start: date,
    end: date,
    today: date | None = None,
    size: PracticeSize = SMALL,
) -> PracticeData:
    """Build the synthetic practice for `seed` between `start` and `end` (inclusive).

    `today` (default: the real date) splits past days, which have outcomes, documents
    and billing, from future ones, which are only scheduled. Pass it to make a range
    that reaches into the present reproducible across days. `size` says how big the
    practice is (default: the small one).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return _Generator(seed, start, end, today or date.today(), size).build()
