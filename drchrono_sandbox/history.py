"""Versioned records: what an evolving sandbox stores, and the practice as of an instant.

Each record of a versioned resource has a `RecordHistory`: its versions, oldest first,
each with its update time (practice-local, naive). At an instant the API serves, for
each record, the latest version updated at or before it; a record none of whose versions
is that old does not exist yet. A `View` is a whole resource served that way, cached
until the instant or the data changes, so list requests between two clock moves cost no
more than in frozen mode. Callers hold the practice's lock around every call.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Record = dict[str, Any]
Change = Callable[[Record], None]


@dataclass
class RecordHistory:
    """One record's versions, oldest first, and the time each was updated."""

    times: list[datetime] = field(default_factory=list)
    versions: list[Record] = field(default_factory=list)

    def index_at(self, when: datetime) -> int:
        """The index of the version served at `when`; -1 before the first."""
        return bisect.bisect_right(self.times, when) - 1


@dataclass(frozen=True)
class View:
    """A resource as served at one instant: its records in list order, and the update
    time of each one's served version (by id)."""

    records: list[Record]
    updated: dict[Any, datetime]


class Timeline:
    """The histories of the versioned resources, and views of them at instants.

    `order` gives a resource's list order as a sort key when it is not the order in
    which its records were added (appointments: by start, which a reschedule changes).
    """

    def __init__(
        self,
        histories: dict[str, dict[Any, RecordHistory]],
        order: dict[str, Callable[[Record], Any]],
    ) -> None:
        self._histories = histories
        self._order = order
        # Bumped by every write, so cached views never outlive the data they show.
        self._generation = 0
        self._views: dict[str, tuple[tuple[datetime, int], View]] = {}

    def versioned(self, name: str) -> bool:
        """Whether `name` is one of the resources kept here."""
        return name in self._histories

    def history(self, name: str, key: Any) -> RecordHistory | None:
        """One record's history (live: do not modify it)."""
        return self._histories[name].get(key)

    def versions(self, name: str) -> Iterator[Record]:
        """Every version of every record of a resource (live)."""
        for history in self._histories[name].values():
            yield from history.versions

    def view(self, name: str, at: datetime) -> View:
        """`name` as served at `at` (cached: do not modify it)."""
        key = (at, self._generation)
        cached = self._views.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        records: list[Record] = []
        updated: dict[Any, datetime] = {}
        for record_id, history in self._histories[name].items():
            index = history.index_at(at)
            if index >= 0:
                records.append(history.versions[index])
                updated[record_id] = history.times[index]
        order = self._order.get(name)
        if order is not None:
            records.sort(key=order)  # nearly sorted already: Timsort makes this linear
        view = View(records, updated)
        self._views[name] = (key, view)
        return view

    def served(self, name: str, key: Any, at: datetime) -> tuple[datetime, Record] | None:
        """A record's served version at `at` with its update time (None: not yet)."""
        history = self._histories[name].get(key)
        if history is None:
            return None
        index = history.index_at(at)
        return (history.times[index], history.versions[index]) if index >= 0 else None

    def add(self, name: str, key: Any, record: Record, at: datetime) -> None:
        """A new record, existing from `at`."""
        self._histories[name][key] = RecordHistory([at], [record])
        self._generation += 1

    def change(self, name: str, key: Any, change: Change, at: datetime) -> Record:
        """Apply `change` to a copy of the version served at `at`, stored as a new version
        at `at`, and to every later version too (so events already scheduled for the
        record build on the write). Returns the new version; `KeyError` if the record does
        not exist at `at`."""
        history = self._histories[name].get(key)
        index = history.index_at(at) if history is not None else -1
        if history is None or index < 0:
            raise KeyError(f"{name} {key} at {at.isoformat()}")
        record = dict(history.versions[index])
        change(record)
        history.times.insert(index + 1, at)
        history.versions.insert(index + 1, record)
        for later in range(index + 2, len(history.versions)):
            carried = dict(history.versions[later])
            change(carried)
            history.versions[later] = carried
        self._generation += 1
        return record
