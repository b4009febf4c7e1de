"""Deterministic synthetic practice: three doctors, two offices, ~300 patients, and a
calendar of visits, documents and billing line items between two dates. A
`PracticeSize` makes it bigger (`LARGE`: 8 doctors, 5,000 patients, ~100 appointments a
weekday); the default size is the small practice, unchanged draw for draw.

Every part draws from its own `random.Random` seeded with a string derived from the
seed, so the same seed gives the same practice on any machine and port, and changing
how one part is generated does not reshuffle the others. Each resource has its module:
`staff` (doctors, offices, users, profiles, templates), `patients`, `calendar`
(appointments), `line_items` (transactions) and `documents`; `generate` runs them.

In evolving mode this is the practice once everything has happened (`today` after the
history's end); `evolution` derives the versions that led to it.
"""

from __future__ import annotations

from datetime import date

from drchrono_sandbox.generate import calendar, documents, line_items, patients, staff
from drchrono_sandbox.generate.base import GenerationContext, PracticeData
from drchrono_sandbox.generate.size import PracticeSize


def generate(
    seed: int, start: date, end: date, today: date | None, size: PracticeSize
) -> PracticeData:
    """Build the synthetic practice for `seed` between `start` and `end` (inclusive).

    `today` (None: the real date) splits past days, which have outcomes, documents and
    billing, from future ones, which are only scheduled. Pass it to make a range that
    reaches into the present reproducible across days. `size` says how big the practice
    is.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    ctx = GenerationContext(
        seed,
        start,
        end,
        today or date.today(),
        size,
        staff.doctor_table(size.doctors),
        *calendar.visit_slots(size.visits_per_day),
    )
    data = PracticeData(
        doctors=staff.doctors(ctx),
        offices=staff.offices(),
        users=staff.users(ctx),
        patients=[],
        appointment_profiles=staff.appointment_profiles(),
        appointment_templates=staff.appointment_templates(),
        reminder_profiles=staff.reminder_profiles(ctx),
        updated_at={"appointments": {}, "patients": {}, "documents": {}, "transactions": {}},
        account_user_id=ctx.doctor_rows[0][6],
    )
    data.patients = patients.patients(ctx, data)
    visits = calendar.appointments(ctx, data)
    line_items.transactions(ctx, data, visits)
    documents.documents(ctx, data)
    return data
