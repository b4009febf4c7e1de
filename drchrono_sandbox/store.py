"""The records of one practice in memory, as the API serves them, and the primitive writes
on them (`Practice` builds one and adds the API's writes).

Records are kept exactly as the API serves them (plain dicts of JSON types). What the
API never serves, the per-record "updated at" behind `since` filters and the uploaded
files, lives beside them. One re-entrant lock, the clock's, guards every read and write
(and every move of the clock), because tests mutate the practice from their own thread
while the server reads it from its own.

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
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.generate.base import PracticeData, Record, appointment_order
from drchrono_sandbox.history import Change, Timeline
from drchrono_sandbox.resource_table import RESOURCES

T = TypeVar("T")

#: How many results `memo` keeps (one per query a client is paging through).
MEMO_ENTRIES = 16


@dataclass(frozen=True)
class StoredFile:
    """An uploaded document's bytes."""

    content: bytes
    content_type: str


class RecordStore:
    """The records of one generated practice (`data`), served as of `clock`'s instant.

    `timeline` (evolving mode) holds the versions of the resources that change; None
    serves `data` frozen. `lock` is the clock's: hold it around reads that must see one
    instant and one state.
    """

    def __init__(self, data: PracticeData, timeline: Timeline | None, clock: SandboxClock) -> None:
        self.clock = clock
        self.lock = clock.lock
        self._timeline = timeline
        evolving = timeline is not None
        versioned = {
            name for name in RESOURCES if timeline is not None and timeline.versioned(name)
        }
        # Frozen: every resource's live list. Evolving: only those that never change.
        self._records: dict[str, list[Record]] = {
            name: getattr(data, name) for name in RESOURCES if name not in versioned
        }
        self._updated_at: dict[str, dict[Any, datetime]] = {} if evolving else data.updated_at
        self._document_paths = data.document_paths
        self._files: dict[str, StoredFile] = {}
        self._index: dict[str, dict[Any, Record]] = {
            name: {record["id"]: record for record in records}
            for name, records in self._records.items()
        }
        #: Ids of the records deleted, by resource (see `delete`).
        self._deleted: dict[str, set[Any]] = {}
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
                records, updated = view.records, view.updated
            else:
                records, updated = self._records[name], self._updated_at.get(name, {})
            deleted = self._deleted.get(name)
            if deleted:
                records = [record for record in records if record["id"] not in deleted]
            return records, updated

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
            if key in self._deleted.get(name, ()):
                return None
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

    def delete(self, name: str, record_id: int | str) -> None:
        """Delete a record, as drchrono does with a patient merged into another: it is
        neither listed nor found any more (at any instant), and no `since` query shows it."""
        with self.lock:
            self._deleted.setdefault(name, set()).add(self._key(name, record_id))
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


def _placeholder_pdf(document_id: int) -> bytes:
    """A tiny, valid-enough PDF standing in for a seeded document's scan."""
    text = f"drchrono sandbox document {document_id}"
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        + f"% {text}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
