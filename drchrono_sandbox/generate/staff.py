"""The practice's people and places, which never change: doctors, offices, users,
appointment profiles and templates, reminder profiles."""

from __future__ import annotations

from datetime import time
from functools import cache
from typing import Any

from drchrono_sandbox.generate.base import (
    FIRST_NAMES,
    LAST_NAMES,
    GenerationContext,
    Record,
    ref,
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

TEMPLATES_BY_ID = {t[0]: t for t in TEMPLATES}


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


def doctors(ctx: GenerationContext) -> list[Record]:
    rng = ctx.rng("doctors")
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
        for doctor_id, first, last, suffix, specialty, npi, _user, username in ctx.doctor_rows
    ]


def offices() -> list[Record]:
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


def users(ctx: GenerationContext) -> list[Record]:
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
    first, second = ctx.doctor_rows[0][0], ctx.doctor_rows[min(1, len(ctx.doctor_rows) - 1)][0]
    staff: list[Record] = [
        # Staff point at their primary physician.
        {"id": STAFF_USER_IDS[0], "username": "frontdesk", "doctor": ref("doctors", first)},
        {"id": STAFF_USER_IDS[1], "username": "billing", "doctor": ref("doctors", second)},
    ]
    for user in staff:
        user.update({"is_doctor": False, "is_staff": True})
    return [
        *(doctor_user(row) for row in ctx.doctor_rows[:named]),
        *staff,
        *(doctor_user(row) for row in ctx.doctor_rows[named:]),
    ]


def appointment_profiles() -> list[Record]:
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


def appointment_templates() -> list[Record]:
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


def reminder_profiles(ctx: GenerationContext) -> list[Record]:
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
            "doctor": ref("doctors", ctx.doctor_rows[min(1, len(ctx.doctor_rows) - 1)][0]),
            "name": "Call the day before",
            "reminders": [
                {"amount": 1, "type": "auto_call", "unit": "days"},
                {"amount": 1, "type": "email", "unit": "weeks"},
            ],
        },
    ]
