"""Documents: scans and letters attached to the patients seen on past weekdays."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from drchrono_sandbox.generate.base import (
    FIRST_DOCUMENT_ID,
    MEDIA_ROOT,
    GenerationContext,
    PracticeData,
    Record,
    ref,
    weekdays,
)
from drchrono_sandbox.generate.staff import DOCTORS

DOCUMENT_KINDS = (
    ("Lab results", ["lab"]),
    ("Referral letter", ["referral"]),
    ("Insurance card scan", ["insurance", "scan"]),
    ("Signed intake form", ["intake"]),
    ("Imaging report", ["imaging", "radiology"]),
    ("Consent form", ["consent"]),
)


def documents(ctx: GenerationContext, data: PracticeData) -> None:
    """About two documents per past weekday for every three doctors, attached to that
    day's patients."""
    rng = ctx.rng("documents")
    by_day: dict[str, list[Record]] = {}
    for appointment in data.appointments:
        if appointment["patient"] is not None:
            by_day.setdefault(appointment["scheduled_time"][:10], []).append(appointment)
    document_id = FIRST_DOCUMENT_ID
    rounds = max(1, round(len(data.doctors) / len(DOCTORS)))
    for day in weekdays(ctx.start, min(ctx.end, ctx.today - timedelta(days=1))):
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
            data.updated_at["documents"][document_id] = ctx.clamp(
                datetime.combine(day, time(8, 0)) + timedelta(minutes=rng.randint(60, 600))
            )
            document_id += rng.randint(1, 2)
    data.next_document_id = document_id
