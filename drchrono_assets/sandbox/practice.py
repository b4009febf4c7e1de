"""The sandbox's practice: the synthetic records in memory, and the writes on them.

Records are kept exactly as the API serves them (plain dicts of JSON types). What the
API never serves, the per-record "updated at" behind `since` filters and the uploaded
files, lives beside them. One re-entrant lock guards every read and write, because
tests mutate the practice from their own thread while the server reads it from its own.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from drchrono_assets.sandbox import billing, synthetic

Record = dict[str, Any]

#: The ten list resources of the API, in the reference's order.
RESOURCES: tuple[str, ...] = (
    "appointments",
    "appointment_profiles",
    "appointment_templates",
    "doctors",
    "documents",
    "offices",
    "patients",
    "reminder_profiles",
    "users",
    "transactions",
)

_REMINDER_UNITS = {
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}


class ConflictError(Exception):
    """A write that the current state of the record forbids (HTTP 409)."""


@dataclass(frozen=True)
class StoredFile:
    """An uploaded document's bytes."""

    content: bytes
    content_type: str


def appointment_order(record: Record) -> tuple[str, str]:
    """Stable list order of appointments: by start, then id."""
    return record["scheduled_time"], record["id"]


class Practice:
    """The deterministic synthetic practice and its in-memory store."""

    def __init__(
        self,
        seed: int = 7,
        start: date = date(2024, 1, 1),
        end: date = date(2024, 6, 30),
        *,
        today: date | None = None,
        base_url: str = "",
    ) -> None:
        data = synthetic.generate(seed, start, end, today)
        self.seed = seed
        self.start = start
        self.end = end
        self.lock = threading.RLock()
        self.doctors: list[Record] = data.doctors
        self.offices: list[Record] = data.offices
        self.users: list[Record] = data.users
        self.patients: list[Record] = data.patients
        self.appointment_profiles: list[Record] = data.appointment_profiles
        self.appointment_templates: list[Record] = data.appointment_templates
        self.reminder_profiles: list[Record] = data.reminder_profiles
        self.appointments: list[Record] = data.appointments
        self.documents: list[Record] = data.documents
        self.transactions: list[Record] = data.transactions
        #: The user the sandbox's tokens belong to: the first doctor's.
        self.account_user_id: int = data.account_user_id
        self._updated_at = data.updated_at
        self._document_paths = data.document_paths
        self._files: dict[str, StoredFile] = {}
        self._next_appointment_id = data.next_appointment_id
        self._next_document_id = data.next_document_id
        self._next_reminder_id = data.next_reminder_id
        self._next_transaction_id = max((t["id"] for t in self.transactions), default=900000) + 1
        self._index: dict[str, dict[Any, Record]] = {
            name: {record["id"]: record for record in self.resource(name)} for name in RESOURCES
        }
        self.base_url = ""
        self.set_base_url(base_url)

    # Reading ------------------------------------------------------------------------

    def resource(self, name: str) -> list[Record]:
        """The live list of one resource, in list order."""
        if name not in RESOURCES:
            raise KeyError(name)
        records: list[Record] = getattr(self, name)
        return records

    def get(self, name: str, record_id: int | str) -> Record | None:
        """One record by id (appointment ids are strings, the others integers)."""
        key: int | str
        if name == "appointments":
            key = str(record_id)
        else:
            try:
                key = int(record_id)
            except (TypeError, ValueError):
                return None
        with self.lock:
            return self._index.get(name, {}).get(key)

    def updated_at(self, name: str, record_id: int | str) -> datetime | None:
        """The hidden "updated at" of a record, or None for resources without one."""
        with self.lock:
            return self._updated_at.get(name, {}).get(record_id)

    def updated_at_map(self, name: str) -> dict[Any, datetime]:
        """The live id -> hidden "updated at" map of a resource (hold `lock` to read it)."""
        return self._updated_at.get(name, {})

    def snapshot(self, records: Iterable[Record]) -> list[Record]:
        """Shallow copies taken under the lock, safe to serialise while writes go on."""
        with self.lock:
            return [dict(record) for record in records]

    def get_file(self, path: str) -> StoredFile | None:
        """The bytes behind a document URL path (seeded files are generated)."""
        with self.lock:
            stored = self._files.get(path)
            if stored is not None:
                return stored
            for document_id, document_path in self._document_paths.items():
                if document_path == path:
                    return StoredFile(_placeholder_pdf(document_id), "application/pdf")
        return None

    def set_base_url(self, base_url: str) -> None:
        """Make document URLs absolute under the server's URL (known once it is bound)."""
        with self.lock:
            self.base_url = base_url.rstrip("/")
            for document in self.documents:
                document["document"] = self.base_url + self._document_paths[document["id"]]

    # Writing ------------------------------------------------------------------------

    def touch(self, name: str, record_id: int | str, when: datetime | None = None) -> None:
        """Set a record's hidden "updated at" (default: now)."""
        with self.lock:
            self._updated_at.setdefault(name, {})[record_id] = when or datetime.now()

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
            bisect.insort(self.appointments, record, key=appointment_order)
            self._index["appointments"][appointment_id] = record
            self.touch("appointments", appointment_id)
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
            path = f"{synthetic.MEDIA_ROOT}/uploads/{document_id}/{safe_name or 'document'}"
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
            self.documents.append(record)
            self._index["documents"][document_id] = record
            self.touch("documents", document_id)
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
                        "scheduled_time": synthetic.ts(
                            start - rule["amount"] * _REMINDER_UNITS[rule["unit"]]
                        ),
                        "type": rule["type"],
                    }
                )
                self._next_reminder_id += 1
            appointment["reminders"] = reminders  # a new list: readers never see it half-built
            self.touch("appointments", appointment["id"])
            return appointment

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
            billing.apply_payment(
                record,
                ins1_paid=Decimal(ins1_paid),
                ins2_paid=Decimal(ins2_paid),
                ins3_paid=Decimal(ins3_paid),
                pt_paid=Decimal(pt_paid),
            )
            self.touch("transactions", record["id"], when)
            return record


def _placeholder_pdf(document_id: int) -> bytes:
    """A tiny, valid-enough PDF standing in for a seeded document's scan."""
    text = f"drchrono sandbox document {document_id}"
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        + f"% {text}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
