"""The sandbox's practices: the synthetic records of each, and the writes the API makes on
them.

A sandbox serves `config.practices` practices (see `generate.offset`): practice 0 is
generated from `config.seed`, practice `i` from `seed + 1000 * i` with every id moved up
by `i * 10_000_000`. They share the sandbox's clock, time zone and date range. How the
records are kept and served, frozen or evolving, is `store`'s business.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from drchrono_sandbox import charges, evolution
from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.generate import generate
from drchrono_sandbox.generate.base import MEDIA_ROOT, Record, ts
from drchrono_sandbox.generate.offset import id_offset, offset_ids, practice_seed
from drchrono_sandbox.store import RecordStore, StoredFile

_REMINDER_UNITS = {
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}


class ConflictError(Exception):
    """A write that the current state of the record forbids (HTTP 409)."""


class Practice(RecordStore):
    """One deterministic synthetic practice, its in-memory store, and the API's writes.

    `config` says which sandbox (`seed`, `start`, `end`, `size`, `today`) and whether
    it evolves: its `clock` turns evolving mode on, starting at that instant;
    `self.clock` moves it (see `SandboxClock`). `index` picks the sandbox's practice
    (0, the default: the one `config.seed` gives, ids unmoved; see `generate.offset`).
    `clock` is the sandbox's clock, which all its practices share (None: one of this
    practice's own, from `config`).
    """

    def __init__(
        self, config: SandboxConfig = DEFAULTS, index: int = 0, *, clock: SandboxClock | None = None
    ) -> None:
        clock = clock or SandboxClock.from_config(config)
        self.config = config
        self.index = index
        evolving = clock.evolving
        seed, start, end = practice_seed(config.seed, index), config.start, config.end
        today = evolution.final_day(end) if evolving else config.today
        data = generate(seed, start, end, today, config.size)
        offset_ids(data, id_offset(index))
        super().__init__(
            data, evolution.evolve(data, seed, start, end) if evolving else None, clock
        )
        #: The user the practice's tokens belong to: the first doctor's.
        self.account_user_id: int = data.account_user_id
        self._next_appointment_id = data.next_appointment_id
        self._next_document_id = data.next_document_id
        self._next_reminder_id = data.next_reminder_id

    def create_appointment(self, fields: Record) -> Record:
        """Store a new appointment (fields already validated) under a new numeric id."""
        with self.lock:
            appointment_id = str(self._next_appointment_id)
            self._next_appointment_id += 1
            record: Record = {
                "id": appointment_id,
                "doctor": fields["doctor"],
                "office": fields["office"],
                "patient": fields.get("patient"),
                "scheduled_time": fields["scheduled_time"],
                "duration": fields["duration"],
                "exam_room": fields.get("exam_room", 1),
                "status": fields.get("status", ""),
                "reason": fields.get("reason", ""),
                "color": fields.get("color", ""),
                "profile": fields.get("profile"),
                "template": fields.get("template"),
                "reminders": [],
                "blood_pressure": fields.get("blood_pressure", ""),
                "icd9_codes": fields.get("icd9_codes", ""),
                "notes": fields.get("notes", ""),
            }
            self._add("appointments", record)
            return record

    def create_document(
        self,
        *,
        doctor: str,
        patient: str,
        description: str,
        day: date,
        metatags: list[str],
        filename: str,
        content: bytes,
        content_type: str,
    ) -> Record:
        """Store an uploaded document and its file; the record's URL points at the file."""
        with self.lock:
            document_id = self._next_document_id
            self._next_document_id += 1
            safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
            path = f"{MEDIA_ROOT}/uploads/{document_id}/{safe_name or 'document'}"
            self._files[path] = StoredFile(content, content_type or "application/octet-stream")
            self._document_paths[document_id] = path
            record: Record = {
                "id": document_id,
                "date": day.isoformat(),
                "description": description,
                "doctor": doctor,
                "patient": patient,
                "metatags": list(metatags),
                "document": self.base_url + path,
            }
            self._add("documents", record)
            return record

    def apply_reminder_profile(self, profile_id: int, appointment_id: str) -> Record:
        """Add a reminder profile's reminders to an appointment that has none.

        Raises `KeyError` for an unknown profile or appointment and `ConflictError`
        when the appointment already has reminders.
        """
        with self.lock:
            profile = self.get("reminder_profiles", profile_id)
            appointment = self.get("appointments", appointment_id)
            if profile is None:
                raise KeyError(f"reminder profile {profile_id}")
            if appointment is None:
                raise KeyError(f"appointment {appointment_id}")
            if appointment["reminders"]:
                raise ConflictError("The appointment already has reminders.")
            start = datetime.fromisoformat(appointment["scheduled_time"])
            reminders = []
            for rule in profile["reminders"]:
                reminders.append(
                    {
                        "id": self._next_reminder_id,
                        "scheduled_time": ts(
                            start - rule["amount"] * _REMINDER_UNITS[rule["unit"]]
                        ),
                        "type": rule["type"],
                    }
                )
                self._next_reminder_id += 1
            # A new list, never filled in place: readers never see it half-built.
            return self._change(
                "appointments",
                appointment["id"],
                lambda record: record.update(reminders=reminders),
            )

    def post_payment(
        self,
        transaction_id: int,
        ins1_paid: Decimal | str | int = Decimal("0"),
        pt_paid: Decimal | str | int = Decimal("0"),
        *,
        ins2_paid: Decimal | str | int = Decimal("0"),
        ins3_paid: Decimal | str | int = Decimal("0"),
        when: datetime | None = None,
    ) -> Record:
        """Post payments on a line item, as a payment posting would.

        The amounts are added to what was paid; totals and balances are recomputed so
        every money identity holds, the billing status follows the balance, and the
        hidden updated-at moves to `when` (default: now), so `since` syncs pick it up.
        """
        with self.lock:
            record = self.get("transactions", transaction_id)
            if record is None:
                raise KeyError(f"transaction {transaction_id}")
            amounts = {
                "ins1_paid": Decimal(ins1_paid),
                "ins2_paid": Decimal(ins2_paid),
                "ins3_paid": Decimal(ins3_paid),
                "pt_paid": Decimal(pt_paid),
            }
            return self._change(
                "transactions",
                record["id"],
                lambda line: charges.apply_payment(line, **amounts),
                when,
            )
