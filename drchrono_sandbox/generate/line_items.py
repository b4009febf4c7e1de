"""Billing line items (transactions): one to three per billed visit, a few a month whose
appointment no longer exists, numbered in date order."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from drchrono_sandbox import charges
from drchrono_sandbox.generate.base import (
    GenerationContext,
    PracticeData,
    Record,
    ts,
    weighted,
)
from drchrono_sandbox.generate.calendar import BilledVisit, Calendar, Series
from drchrono_sandbox.generate.patients import INSURERS
from drchrono_sandbox.generate.staff import DOCTORS, doctor_location

FIRST_TRANSACTION_ID = 900001
#: Billing statuses of visits more than 45 days old, weighted: mostly settled.
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
#: Billing statuses of recent visits: mostly still with the payer.
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

#: Contract rate of each payer of `INSURERS`: the share of billed it allows.
ALLOWED_RATES = (
    Decimal("0.80"),
    Decimal("0.72"),
    Decimal("0.58"),
    Decimal("0.50"),
    Decimal("0.85"),
)


def transactions(ctx: GenerationContext, data: PracticeData, calendar: Calendar) -> None:
    """The line items of the billed visits, then the orphan ones, into `data`: numbered
    in order of date, appointment and line."""
    rng = ctx.rng("transactions")
    lines: list[Record] = []
    for visit in calendar.billed:
        # About 5% of completed visits were never billed.
        if visit.appointment["status"] == "Complete" and rng.random() < 0.05:
            continue
        lines += _visit_lines(ctx, rng, visit)
    lines += _orphan_lines(ctx, rng, data, calendar.gaps, calendar.series)
    lines.sort(key=lambda line: (line["date"], line["appointment"], line["_seq"]))
    for offset, line in enumerate(lines):
        line_id = FIRST_TRANSACTION_ID + offset
        updated = line.pop("_updated")
        line.pop("_seq")
        if line.pop("_self_pay"):
            data.self_pay_transactions.add(line_id)
        data.transactions.append({"id": line_id, **line})
        data.updated_at["transactions"][line_id] = updated


def _visit_lines(ctx: GenerationContext, rng: random.Random, visit: BilledVisit) -> list[Record]:
    """One to three line items for a visit: the visit code plus extras."""
    count = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
    procedures = [rng.choice(charges.VISIT_PROCEDURES)]
    procedures += rng.sample(charges.EXTRA_PROCEDURES, count - 1)
    return [
        _line(
            ctx,
            rng,
            appointment_id=visit.number,
            when=datetime.fromisoformat(visit.appointment["scheduled_time"]),
            doctor=visit.doctor,
            office=visit.office,
            patient=visit.patient,
            procedure=procedure,
            seq=seq,
            multiple=count > 1,
        )
        for seq, procedure in enumerate(procedures)
    ]


def _line(
    ctx: GenerationContext,
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
    age = (ctx.today - when.date()).days
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
        "_updated": ctx.clamp(updated, floor=when),
        "_seq": seq,
        "_self_pay": self_pay,
    }


def _orphan_lines(
    ctx: GenerationContext,
    rng: random.Random,
    data: PracticeData,
    gaps: dict[tuple[int, int], list[tuple[int, date, int]]],
    series: dict[tuple[int, int, time], Series],
) -> list[Record]:
    """A few line items a month whose appointment no longer exists (never at a recurring
    visit's slot, where the billing report would rightly find that visit)."""
    doctors = {d["id"]: d for d in data.doctors}
    lines: list[Record] = []
    for _month, candidates in sorted(gaps.items()):
        candidates = [c for c in candidates if c[1] < ctx.today]
        if not candidates:
            continue
        # Two to four a month for three doctors, as many per doctor for more.
        count = max(1, rng.randint(2, 4) * len(doctors) // len(DOCTORS))
        for appointment_id, day, doctor_id in rng.sample(candidates, min(len(candidates), count)):
            free = [
                at
                for at in ctx.morning + ctx.afternoon
                if (doctor_id, day.weekday(), at) not in series
            ]
            at = rng.choice(free)
            lines.append(
                _line(
                    ctx,
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
