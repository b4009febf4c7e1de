"""The calendar: weekly recurring series, every doctor's weekday of visits around a
lunch break, and the visits that will be billed (see `line_items`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache

from drchrono_sandbox.generate.base import (
    FIRST_APPOINTMENT_ID,
    FIRST_REMINDER_ID,
    GenerationContext,
    PracticeData,
    Record,
    appointment_order,
    ref,
    ts,
    weekdays,
    weighted,
)
from drchrono_sandbox.generate.size import SMALL
from drchrono_sandbox.generate.staff import TEMPLATES, TEMPLATES_BY_ID, doctor_location

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
REASONS = (
    "Back pain", "Follow-up on labs", "Cough", "Medication review", "Headache", "Rash",
    "Blood pressure check", "Sore throat", "Annual exam", "Knee pain", "Fatigue", "Allergies",
)  # fmt: skip
ICD9 = ("401.9", "250.00", "272.4", "477.9", "724.2", "780.79", "462", "786.2", "719.46")

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


@dataclass(frozen=True)
class BilledVisit:
    """A past visit whose outcome is billable: what its line items are made from."""

    appointment: Record
    #: The appointment number its lines carry (a recurring visit's: its series').
    number: int
    doctor: Record
    office: int
    patient: Record


@dataclass(frozen=True)
class Calendar:
    """What billing needs of the calendar, besides the appointments in `PracticeData`."""

    #: The billable visits, in generation order (which the billing draws follow).
    billed: list[BilledVisit]
    #: Ids skipped by the numbering, by (year, month): what orphan line items point at.
    gaps: dict[tuple[int, int], list[tuple[int, date, int]]]
    #: The weekly recurring series by (doctor, week day, slot).
    series: dict[tuple[int, int, time], Series]


@dataclass(frozen=True)
class Series:
    """A weekly recurring appointment: its instances have ids `{series}_{YYYYMMDD}`."""

    series_id: int
    doctor_id: int
    week_day: int
    slot: time
    patient_id: int
    reason: str
    first_day: date


def series_count(ctx: GenerationContext) -> int:
    """How many weekly recurring series: 7 for the default size, as many per slot
    for others (capped so that free slots and series numbers stay plentiful)."""
    size = ctx.size
    slots = size.doctors * size.visits_per_day
    wanted = round(DEFAULT_SERIES * slots / (SMALL.doctors * SMALL.visits_per_day))
    return max(1, min(wanted, slots * 5 // 2, 500))


def weekly_series(
    ctx: GenerationContext, data: PracticeData
) -> dict[tuple[int, int, time], Series]:
    """About 5% of visit slots belong to a weekly recurring series."""
    rng = ctx.rng("series")
    templated = {(office, wd, at) for _id, office, wd, at, _room, _p in TEMPLATES}
    series: dict[tuple[int, int, time], Series] = {}
    used_ids: set[int] = set()
    count = series_count(ctx)
    while len(series) < count:
        doctor_id = ctx.doctor_rows[rng.randrange(len(ctx.doctor_rows))][0]
        week_day = rng.randrange(5)
        slot = rng.choice(ctx.morning + ctx.afternoon)
        key = (doctor_id, week_day, slot)
        office = doctor_location(doctor_id, week_day)[0]
        series_id = rng.randint(8000, 8999)
        if key in series or series_id in used_ids or (office, week_day, slot) in templated:
            continue
        used_ids.add(series_id)
        offset = rng.randint(0, 20)
        series[key] = Series(
            series_id=series_id,
            doctor_id=doctor_id,
            week_day=week_day,
            slot=slot,
            patient_id=rng.choice(data.patients)["id"],
            reason=rng.choice(("Weekly allergy injection", "Physical therapy", "B-12 shot")),
            first_day=ctx.start + timedelta(days=offset),
        )
    return series


def appointments(ctx: GenerationContext, data: PracticeData) -> Calendar:
    """Every weekday's appointments into `data`; returns what billing needs of them."""
    rng = ctx.rng("appointments")
    series = weekly_series(ctx, data)
    billed: list[BilledVisit] = []
    templates = {(office, wd, at): t for t, office, wd, at, _r, _p in TEMPLATES}
    profiles = {p["id"]: p for p in data.appointment_profiles}
    panels: dict[str, list[Record]] = {}
    for patient in data.patients:
        panels.setdefault(patient["doctor"], []).append(patient)
    patients_by_id = {p["id"]: p for p in data.patients}
    next_id = FIRST_APPOINTMENT_ID
    reminder_id = FIRST_REMINDER_ID
    # Ids skipped by the numbering: what orphan line items point at.
    gaps: dict[tuple[int, int], list[tuple[int, date, int]]] = {}

    for day in weekdays(ctx.start, ctx.end):
        past = day < ctx.today
        for doctor in data.doctors:
            doctor_id = doctor["id"]
            office, room = doctor_location(doctor_id, day.weekday())
            slots = list(ctx.morning + ctx.afternoon)
            roll = rng.random()
            if roll < 0.1:
                slots.pop(rng.randrange(len(slots)))
            elif roll < 0.2:
                slots.append(ctx.extra_slot)
            morning = len(ctx.morning)
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
                        gaps.setdefault((day.year, day.month), []).append((skipped, day, doctor_id))
                    next_id += step
                    appointment_id = str(next_id)
                if at == LUNCH:
                    record = lunch_break(appointment_id, doctor_id, office, room, start)
                    created = datetime.combine(ctx.start, time(7, 0)) - timedelta(days=30)
                    data.updated_at["appointments"][appointment_id] = ctx.clamp(created)
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
                data.updated_at["appointments"][appointment_id] = ctx.clamp(
                    updated, floor=min(created, ctx.horizon)
                )
                if past and status in BILLABLE_STATUSES:
                    # A recurring visit's id is no number: its lines carry the series'
                    # number, which names no appointment (found by doctor, time, office).
                    number = recurring.series_id if recurring else int(appointment_id)
                    billed.append(BilledVisit(record, number, doctor, office, patient))
    # List order is by start, then id (generation went doctor by doctor).
    data.appointments.sort(key=appointment_order)
    data.next_appointment_id = next_id + 1
    data.next_reminder_id = reminder_id
    return Calendar(billed, gaps, series)


def lunch_break(
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
