"""The sandbox's practice: the synthetic records in memory, and the writes on them.

Records are kept exactly as the API serves them (plain dicts of JSON types). What the
API never serves, the per-record "updated at" behind `since` filters and the uploaded
files, lives beside them. One re-entrant lock guards every read and write (and every
move of the clock), because tests mutate the practice from their own thread while the
server reads it from its own.

Frozen mode (no clock, the default): the practice is generated as of `today` and only
writes change it, in place, moving the record's hidden "updated at" to the real time.

Evolving mode (a clock): the practice is served as of the clock's instant. Appointments,
documents, patients and transactions have versions (`evolution` says when and how they
change, `history` how they are kept): a record is served at its latest version updated
at or before now, does not exist before its first one, and `since` compares with the
served version's update time. The other six resources never change. A write adds a
version at now, carried into the record's later versions. `today` is ignored.

Either way `current(resource)` is exactly what the API serves now, and
`versions_between(resource, since, until)` what a `since` sync at `until` must fetch.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from drchrono_sandbox import charges, evolution
from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.generate import generate
from drchrono_sandbox.generate.base import MEDIA_ROOT, Record, appointment_order, ts
from drchrono_sandbox.history import Change
from drchrono_sandbox.resource_table import RESOURCES

T = TypeVar("T")

#: How many results `memo` keeps (one per query a client is paging through).
MEMO_ENTRIES = 16

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


class Practice:
    """The deterministic synthetic practice and its in-memory store.

    `config` says which practice (`seed`, `start`, `end`, `size`, `today`) and whether it
    evolves: its `clock` turns evolving mode on, starting at that instant; `self.clock`
    moves it (see `SandboxClock`).
    """

    def __init__(self, config: SandboxConfig = DEFAULTS) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock = SandboxClock(config.clock, config.timezone, lock=self.lock, live=config.live)
        evolving = self.clock.evolving
        seed, start, end = config.seed, config.start, config.end
        today = evolution.final_day(end) if evolving else config.today
        data = generate(seed, start, end, today, config.size)
        self._timeline = evolution.evolve(data, seed, start, end) if evolving else None
        versioned = evolution.VERSIONED if evolving else ()
        # Frozen: every resource's live list. Evolving: only those that never change.
        self._records: dict[str, list[Record]] = {
            name: getattr(data, name) for name in RESOURCES if name not in versioned
        }
        #: The user the sandbox's tokens belong to: the first doctor's.
        self.account_user_id: int = data.account_user_id
        self._updated_at: dict[str, dict[Any, datetime]] = {} if evolving else data.updated_at
        self._document_paths = data.document_paths
        self._files: dict[str, StoredFile] = {}
        self._next_appointment_id = data.next_appointment_id
        self._next_document_id = data.next_document_id
        self._next_reminder_id = data.next_reminder_id
        self._index: dict[str, dict[Any, Record]] = {
            name: {record["id"]: record for record in records}
            for name, records in self._records.items()
        }
        #: Bumped by every write: what `memo` results depend on, with the clock.
        self._version = 0
        self._memo: dict[Hashable, tuple[tuple[int, datetime | None], Any]] = {}
        #: The server's URL, which makes document URLs absolute (see `set_base_url`).
        self.base_url = ""

    # Reading ------------------------------------------------------------------------

    def _served(
        self, name: str, at: datetime | None = None
    ) -> tuple[list[Record], dict[Any, datetime]]:
        """A resource's records and their update times as served at `at` (default: now;
        frozen mode has only now)."""
        with self.lock:
            if self._timeline is not None and self._timeline.versioned(name):
                view = self._timeline.view(name, at or self.clock.local_now())
                return view.records, view.updated
            return self._records[name], self._updated_at.get(name, {})

    def __getattr__(self, name: str) -> list[Record]:
        """`practice.<resource>`: the records served now, in list order (the live list
        when frozen; a cached view when evolving, to read only)."""
        if name in RESOURCES:
            return self.resource(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def resource(self, name: str) -> list[Record]:
        """The records of one resource served now, in list order (read only)."""
        if name not in RESOURCES:
            raise KeyError(name)
        return self._served(name)[0]

    @staticmethod
    def _key(name: str, record_id: int | str) -> int | str | None:
        """A record id as stored: appointment ids are strings, the others integers."""
        if name == "appointments":
            return str(record_id)
        try:
            return int(record_id)
        except (TypeError, ValueError):
            return None

    def get(self, name: str, record_id: int | str) -> Record | None:
        """One record as served now, by id (None if unknown or not created yet)."""
        key = self._key(name, record_id)
        with self.lock:
            if self._timeline is not None and self._timeline.versioned(name):
                served = self._timeline.served(name, key, self.clock.local_now())
                return served[1] if served is not None else None
            return self._index.get(name, {}).get(key)

    def updated_at(self, name: str, record_id: int | str) -> datetime | None:
        """The hidden "updated at" of a record, or None for resources without one."""
        with self.lock:
            return self.updated_at_map(name).get(record_id)

    def updated_at_map(self, name: str) -> dict[Any, datetime]:
        """The id -> hidden "updated at" map of a resource as served now (hold `lock` to
        read it; live when frozen)."""
        return self._served(name)[1] if name in RESOURCES else {}

    def current(self, name: str) -> list[Record]:
        """Exactly what the API serves now for `name`: every record (unfiltered), copied,
        in list order."""
        with self.lock:
            return self.snapshot(self.resource(name))

    def versions_between(self, name: str, since: datetime, until: datetime) -> list[Record]:
        """The records whose served version changed between two practice-local instants
        (both included), as served at `until` and in list order: what a `since` sync run
        at `until` must fetch. Frozen mode serves its records at any `until`."""
        if name not in RESOURCES:
            raise KeyError(name)
        with self.lock:
            records, updated = self._served(name, until)
            return [
                dict(record)
                for record in records
                if (stamp := updated.get(record["id"])) is not None and since <= stamp <= until
            ]

    def history(self, name: str, record_id: int | str) -> list[tuple[datetime, Record]]:
        """Every version of a record with its update time, oldest first, copied: those
        not served yet included (frozen: the one version there is; [] for resources
        without update times)."""
        key = self._key(name, record_id)
        with self.lock:
            if self._timeline is not None and self._timeline.versioned(name):
                history = self._timeline.history(name, key)
                if history is None:
                    return []
                return [
                    (when, dict(version))
                    for when, version in zip(history.times, history.versions, strict=True)
                ]
            record = self._index.get(name, {}).get(key)
            stamp = self._updated_at.get(name, {}).get(key)
            return [(stamp, dict(record))] if record is not None and stamp is not None else []

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, remembered under `key` until a write (or, evolving, a move of the
        clock): the pages of one list query then filter the records once, not once per
        page. The result is shared: do not modify it."""
        with self.lock:
            evolving = self._timeline is not None
            state = (self._version, self.clock.local_now() if evolving else None)
            cached = self._memo.get(key)
            if cached is not None and cached[0] == state:
                return cached[1]
            value = compute()
            self._memo.pop(key, None)
            if len(self._memo) >= MEMO_ENTRIES:
                del self._memo[next(iter(self._memo))]  # the oldest
            self._memo[key] = (state, value)
            return value

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
            documents = (
                self._timeline.versions("documents")
                if self._timeline is not None
                else self._records["documents"]
            )
            for document in documents:
                document["document"] = self.base_url + self._document_paths[document["id"]]

    # Writing ------------------------------------------------------------------------

    def touch(self, name: str, record_id: int | str, when: datetime | None = None) -> None:
        """Mark a record updated at `when` (default: now): frozen, its hidden "updated at"
        moves; evolving, it gets a new, unchanged version."""
        with self.lock:
            if self._timeline is not None:
                self._change(name, record_id, lambda record: None, when)
            else:
                self._updated_at.setdefault(name, {})[record_id] = when or datetime.now()
                self._version += 1

    def _add(self, name: str, record: Record) -> None:
        """Store a new record: frozen, into the live list; evolving, existing from now."""
        self._version += 1
        if self._timeline is not None:
            self._timeline.add(name, record["id"], record, self.clock.local_now())
            return
        if name == "appointments":
            bisect.insort(self._records[name], record, key=appointment_order)
        else:
            self._records[name].append(record)
        self._index[name][record["id"]] = record
        self.touch(name, record["id"])

    def _change(
        self, name: str, record_id: int | str, change: Change, when: datetime | None = None
    ) -> Record:
        """Apply `change` to a record and mark it updated at `when` (default: now).

        Frozen: in place. Evolving: as a new version at `when`, also applied to the
        record's later versions so the events still to come build on it.
        """
        self._version += 1
        if self._timeline is not None:
            return self._timeline.change(name, record_id, change, when or self.clock.local_now())
        record = self._index[name][record_id]
        change(record)
        self.touch(name, record_id, when)
        return record

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


def _placeholder_pdf(document_id: int) -> bytes:
    """A tiny, valid-enough PDF standing in for a seeded document's scan."""
    text = f"drchrono sandbox document {document_id}"
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        + f"% {text}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
