"""How an evolving sandbox's practice changes over time: every record's versions.

The generator builds the practice as it stands once everything has happened (its
`today` after the history's end, so every visit is past, documented and billed); this
module works back, deterministically from the seed, to the versions a real practice
goes through, each with its update time (practice-local, naive):

- Appointments are booked 1 to 30 days before the visit, with status "" (40%) or
  "Confirmed" (60%) and no vitals, codes or notes. 3% of them (not recurring-series
  instances, whose id names their day) were first booked one or two weeks earlier or
  later, and moved to their day (same time) before either visit. The outcome (the
  generator's mix of Complete, Arrived, No Show, Cancelled...) is set when the generator
  says it was: at checkout up to three hours after the visit ends, or 1 to 72 hours
  before it for a cancellation. 5% are edited again 14 to 60 days after the visit:
  Arrived or In Session closed as Complete, otherwise a note addendum. Lunch breaks are
  on the calendar from 30 days before the start.
- Line items are posted 4 hours to 3 days after the visit (billed, nothing paid, status
  ""), then adjudicated to the generator's amounts and status 14 to 45 days after the
  visit (60%) or 46 to 120 days after it (40%, so about a third after 60 days). Half of
  the lines left with a patient balance get the patient's payment 5 to 45 days later.
- Documents are uploaded 0 to 10 days after their date.
- Patients are registered 31 to 400 days before the start, then edited (a new address,
  or a new cell phone) about every 200 days, at random.
- Nothing happens after `end` + 130 days: from then on the practice stands still.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from drchrono_sandbox import charges
from drchrono_sandbox.generate.base import (
    PracticeData,
    Record,
    appointment_order,
    part_rng,
    ts,
    weighted,
)
from drchrono_sandbox.generate.patients import CITIES, phone_number, street_address, zip_code
from drchrono_sandbox.history import RecordHistory, Timeline

#: Days after `end` over which the practice keeps changing (late adjudications, edits).
HISTORY_DAYS = 130
#: Resources whose records have versions; the others stay as generated.
VERSIONED: tuple[str, ...] = ("appointments", "documents", "patients", "transactions")

BOOKING_LEAD_MINUTES = (24 * 60, 30 * 24 * 60)
BOOKED_STATUS_WEIGHTS = {"Confirmed": 60, "": 40}
RESCHEDULE_RATE = 0.03
RESCHEDULE_WEEKS = (-2, -1, 1, 2)
LATE_EDIT_RATE = 0.05
LATE_EDIT_DAYS = (14, 60)
ADDENDA = (
    "Addendum: lab results reviewed with the patient.",
    "Addendum: referral letter sent.",
    "Late entry: patient called back, feeling better.",
)
POSTING_MINUTES = (4 * 60, 3 * 24 * 60)
QUICK_ADJUDICATION_DAYS = (14, 45)
SLOW_ADJUDICATION_DAYS = (46, 120)
SLOW_ADJUDICATION_RATE = 0.4
PATIENT_PAYMENT_RATE = 0.5
PATIENT_PAYMENT_DAYS = (5, 45)
UPLOAD_DAYS = (0, 10)
#: Registration, in days relative to the start.
REGISTRATION_DAYS = (-400, -31)
PATIENT_EDIT_MEAN_DAYS = 200
#: Working hours, in minutes after 8:00, over which dated events are spread.
WORKDAY_MINUTES = (0, 600)


def history_end(end: date) -> datetime:
    """The last instant anything happens: the end of `end` + 130 days."""
    return datetime.combine(end + timedelta(days=HISTORY_DAYS), time(23, 59, 59))


def final_day(end: date) -> date:
    """The generator's `today` for the final practice: the day after the history ends."""
    return end + timedelta(days=HISTORY_DAYS + 1)


def evolve(data: PracticeData, seed: int, start: date, end: date) -> Timeline:
    """The versions of the practice `data` (generated with `today=final_day(end)`)."""
    until = history_end(end)

    def rng(part: str) -> random.Random:
        return part_rng(seed, f"history:{part}")

    appointments_rng = rng("appointments")
    settled = data.updated_at["appointments"]
    documents_rng = rng("documents")
    uploaded = data.updated_at["documents"]
    transactions_rng = rng("transactions")
    patients_rng = rng("patients")
    histories: dict[str, dict[Any, RecordHistory]] = {
        "appointments": {
            a["id"]: _appointment(appointments_rng, a, settled[a["id"]]) for a in data.appointments
        },
        "documents": {
            # The generator's time of day, on the day of the upload.
            d["id"]: _history([(uploaded[d["id"]] + _days(documents_rng, UPLOAD_DAYS), d)])
            for d in data.documents
        },
        "patients": {p["id"]: _patient(patients_rng, p, start, until) for p in data.patients},
        "transactions": {
            t["id"]: _transaction(transactions_rng, t, t["id"] in data.self_pay_transactions, until)
            for t in data.transactions
        },
    }
    return Timeline(histories, order={"appointments": appointment_order})


def _history(steps: list[tuple[datetime, Record]]) -> RecordHistory:
    """A history from versions in order: one that changes nothing is dropped, and none is
    dated before the one it follows (a cancellation drawn before the booking, say)."""
    history = RecordHistory()
    for when, record in steps:
        if history.versions:
            if record == history.versions[-1]:
                continue
            when = max(when, history.times[-1] + timedelta(minutes=1))
        history.times.append(when)
        history.versions.append(record)
    return history


def _days(rng: random.Random, days: tuple[int, int]) -> timedelta:
    return timedelta(days=rng.randint(*days))


def _workday(rng: random.Random, day: date, days: tuple[int, int]) -> datetime:
    """A time during working hours, a number of days in `days` after `day`."""
    return (
        datetime.combine(day, time(8))
        + _days(rng, days)
        + timedelta(minutes=rng.randint(*WORKDAY_MINUTES))
    )


def _appointment(rng: random.Random, record: Record, settled: datetime) -> RecordHistory:
    """Booking, maybe a move, the outcome at `settled`, maybe a late edit."""
    if record["patient"] is None:
        return _history([(settled, record)])  # a lunch break: on the calendar early
    start = datetime.fromisoformat(record["scheduled_time"])
    booked = {
        **record,
        "status": weighted(rng, BOOKED_STATUS_WEIGHTS),
        "blood_pressure": "",
        "icd9_codes": "",
        "notes": "",
    }
    first_start = start
    if record["id"].isdigit() and rng.random() < RESCHEDULE_RATE:
        first_start = start + timedelta(weeks=rng.choice(RESCHEDULE_WEEKS))
    earliest = min(start, first_start)
    # Booked ahead of the first day it was given, and a day before either visit.
    shortest, longest = BOOKING_LEAD_MINUTES
    shortest += (first_start - earliest) // timedelta(minutes=1)
    booked_at = first_start - timedelta(minutes=rng.randint(shortest, longest))
    steps = [(booked_at, {**booked, "scheduled_time": ts(first_start)})]
    if first_start != start:
        moved_at = booked_at + (earliest - booked_at) * rng.uniform(0.2, 0.9)
        steps.append((moved_at.replace(microsecond=0), booked))
    steps.append((settled, record))
    if rng.random() < LATE_EDIT_RATE:
        if record["status"] in ("Arrived", "In Session"):
            edit = {"status": "Complete"}  # closed out late
        else:
            edit = {"notes": f"{record['notes']} {rng.choice(ADDENDA)}".strip()}
        steps.append((_workday(rng, start.date(), LATE_EDIT_DAYS), {**record, **edit}))
    return _history(steps)


def _transaction(
    rng: random.Random, line: Record, self_pay: bool, until: datetime
) -> RecordHistory:
    """Posted, adjudicated to the generator's line, maybe a patient payment after."""
    visit = datetime.fromisoformat(line["date"])
    posted = {
        **line,
        **charges.format_amounts(
            charges.posted_amounts(Decimal(line["price"]), line["quantity"], self_pay=self_pay)
        ),
        "billing_status": "",
        "denied_flag": False,
        "edi_note": "",
    }
    slow = rng.random() < SLOW_ADJUDICATION_RATE
    adjudicated_at = _workday(
        rng, visit.date(), SLOW_ADJUDICATION_DAYS if slow else QUICK_ADJUDICATION_DAYS
    )
    steps = [
        (visit + timedelta(minutes=rng.randint(*POSTING_MINUTES)), posted),
        (adjudicated_at, line),
    ]
    balance_pt = Decimal(line["balance_pt"])
    if balance_pt > 0 and rng.random() < PATIENT_PAYMENT_RATE:
        paid_at = adjudicated_at + _days(rng, PATIENT_PAYMENT_DAYS)
        if paid_at <= until:
            paid = dict(line)
            charges.apply_payment(paid, pt_paid=balance_pt)
            steps.append((paid_at, paid))
    return _history(steps)


def _patient(rng: random.Random, patient: Record, start: date, until: datetime) -> RecordHistory:
    """Registered before the start, then edited now and then until `until`."""
    steps = [(_workday(rng, start, REGISTRATION_DAYS), patient)]
    when = datetime.combine(start, time(0))
    while True:
        gap = timedelta(days=rng.expovariate(1 / PATIENT_EDIT_MEAN_DAYS))
        when = (when + gap).replace(microsecond=0)
        if when > until:
            return _history(steps)
        edit: Record
        if rng.random() < 0.5:  # moved house
            edit = {
                "address": street_address(rng),
                "city": rng.choice(CITIES),
                "zip_code": zip_code(rng),
            }
        else:
            edit = {"cell_phone": phone_number(rng)}
        steps.append((when, {**steps[-1][1], **edit}))
