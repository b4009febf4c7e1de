"""What every part of the generator shares: the record type, the build's inputs, the
practice being built, and small helpers (timestamps, references, seeded draws)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from drchrono_sandbox.generate.size import PracticeSize

Record = dict[str, Any]

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

FIRST_APPOINTMENT_ID = 100000
FIRST_DOCUMENT_ID = 70001
FIRST_REMINDER_ID = 5000001

MEDIA_ROOT = "/site_media/uploaded_media/sandbox"


def ts(value: datetime) -> str:
    """A naive ISO timestamp, the practice's local time: `2024-03-05T09:30:00`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def part_rng(seed: int, part: str) -> random.Random:
    """An independent, reproducible random stream for one part of the practice."""
    return random.Random(f"drchrono-sandbox:{seed}:{part}")


def appointment_order(record: Record) -> tuple[str, str]:
    """Stable list order of appointments: by start, then id."""
    return record["scheduled_time"], record["id"]


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
class GenerationContext:
    """The inputs of one build and what follows from them: the doctors' rows (`DOCTORS`
    shaped, see `staff.doctor_table`) and a doctor's visit slots (`calendar.visit_slots`)."""

    seed: int
    start: date
    end: date
    today: date
    size: PracticeSize
    doctor_rows: tuple[tuple[Any, ...], ...]
    morning: tuple[time, ...]
    afternoon: tuple[time, ...]
    extra_slot: time

    @property
    def horizon(self) -> datetime:
        """Nothing was updated in the future: hidden timestamps stop at today's midnight."""
        return datetime.combine(self.today, time(0, 0))

    def rng(self, part: str) -> random.Random:
        """`part_rng` for this practice's seed."""
        return part_rng(self.seed, part)

    def clamp(self, value: datetime, floor: datetime | None = None) -> datetime:
        """Keep a hidden timestamp at or before the horizon (and at or after `floor`)."""
        value = min(value, self.horizon)
        return max(value, floor) if floor is not None else value
