"""How each resource's partitions map to API queries.

A run covers a window of days (one day, or a whole backfill with ``BackfillPolicy.single_run``).
Each rule turns the window into the fewest queries the API allows, then assigns the rows it
got back to days. The request count is the cost: the API allows a practice a few hundred
requests an hour. Rules only plan: they send no request (a fan-out over the values of a
required filter is declared, and the extractor resolves it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from drchrono_assets.catalog.fields import SNAPSHOT_AT, column
from drchrono_assets.day_window import DayWindow

Query = dict[str, Any]


@dataclass(frozen=True)
class QueryPlan:
    """The queries a rule asks for.

    With a ``fan_out`` = (filter, path), each query is sent once per record that ``path``
    lists, with that record's ``id`` as ``filter`` (transactions require ``doctor``).
    """

    queries: tuple[Query, ...]
    fan_out: tuple[str, str] | None = None


class PartitionRule(Protocol):
    """Maps a window of days to queries, and fetched rows back to days."""

    summary: str
    filters: tuple[str, ...]
    extra_fields: tuple[pa.Field, ...]  # columns the rule adds to the API's
    captures_changes: bool  # whether ``change_queries`` can tell what changed
    # Whether partition D holds the whole resource as of D's sweep, not the records dated D.
    whole: bool
    # Whether records are booked ahead of their day (appointments): records booked before the
    # sweeps began are in no change set, so the days ahead are listed by date once.
    books_ahead: bool

    def queries(self, window: DayWindow) -> QueryPlan: ...

    def change_queries(self, since: str) -> QueryPlan | None:
        """Queries for the records updated since ``since`` (practice-local ISO time), or None
        when the API cannot tell what changed (the resource is then a daily snapshot)."""
        ...

    def split(
        self, table: pa.Table, window: DayWindow, taken_at: dt.datetime
    ) -> dict[str, pa.Table]: ...


@dataclass(frozen=True)
class _DatedRows:
    """Rows belong to the day of their ``day_column``; rows outside the window are dropped."""

    day_column: str

    def split(
        self, table: pa.Table, window: DayWindow, taken_at: dt.datetime
    ) -> dict[str, pa.Table]:
        return window.split(table, self.day_column)


@dataclass(frozen=True)
class ScheduledOn(_DatedRows):
    """Partition D holds the records scheduled on D, fetched with ``date`` / ``date_range``.

    A window becomes one ``date_range`` query per ``max_window_days`` (the API's limit is 190).
    """

    max_window_days: int = 190
    filters: tuple[str, ...] = ("date", "date_range")
    extra_fields: tuple[pa.Field, ...] = ()
    captures_changes: bool = True
    whole: bool = False
    books_ahead: bool = True

    @property
    def summary(self) -> str:
        return f"partition D = records whose `{self.day_column}` falls on D"

    def queries(self, window: DayWindow) -> QueryPlan:
        return QueryPlan(
            tuple(
                {"date": chunk.first.isoformat()}
                if chunk.first == chunk.last
                else {"date_range": f"{chunk.first.isoformat()}/{chunk.last.isoformat()}"}
                for chunk in window.chunks(self.max_window_days)
            )
        )

    def change_queries(self, since: str) -> QueryPlan:
        return QueryPlan(({"since": since},))


@dataclass(frozen=True)
class DatedSinceSweep(_DatedRows):
    """Partition D holds the records dated D; the API only filters them by ``since``.

    One ``since`` = start-of-window sweep (per doctor where the endpoint requires ``doctor``)
    returns everything updated since then; rows are kept by their date. Assumption, stated
    in the README: a record is never last updated before the day it is dated, so every record
    dated in the window was updated on or after the window's first day.
    """

    fan_out: tuple[str, str] | None = None  # (required filter, path listing its values)
    extra_fields: tuple[pa.Field, ...] = ()
    captures_changes: bool = True
    whole: bool = False
    books_ahead: bool = False

    @property
    def filters(self) -> tuple[str, ...]:
        return ("since", self.fan_out[0]) if self.fan_out else ("since",)

    @property
    def summary(self) -> str:
        return f"partition D = records whose `{self.day_column}` falls on D (`since` sweep)"

    def queries(self, window: DayWindow) -> QueryPlan:
        return self.change_queries(dt.datetime.combine(window.first, dt.time()).isoformat())

    def change_queries(self, since: str) -> QueryPlan:
        return QueryPlan(({"since": since},), self.fan_out)


@dataclass(frozen=True)
class Snapshot:
    """Partition D holds a snapshot of the whole resource, each row stamped ``snapshot_at``.

    The API keeps no history, so a past partition materialized today holds today's state.
    A window is fetched once and the same snapshot written to each of its days.
    """

    summary: str = "partition D = a snapshot of the whole resource taken when D was materialized"
    filters: tuple[str, ...] = ()
    extra_fields: tuple[pa.Field, ...] = (
        column("snapshot_at", SNAPSHOT_AT, "When this snapshot was taken (UTC)"),
    )
    captures_changes: bool = False
    whole: bool = True
    books_ahead: bool = False

    def queries(self, window: DayWindow) -> QueryPlan:
        return QueryPlan(({},))

    def change_queries(self, since: str) -> QueryPlan | None:
        return None

    def split(
        self, table: pa.Table, window: DayWindow, taken_at: dt.datetime
    ) -> dict[str, pa.Table]:
        (stamp,) = self.extra_fields
        stamped = table.append_column(stamp, pa.array([taken_at] * table.num_rows, stamp.type))
        return {key: stamped for key in window.partition_keys}


@dataclass(frozen=True)
class SnapshotSince(Snapshot):
    """Partition D holds a snapshot of the whole resource, like ``Snapshot``, but a sweep lists
    only the records updated ``since`` the last one and merges them by primary key into the
    latest snapshot stored.

    ``since`` never shows a record deleted (or merged into another) in drchrono: the sweep
    checks the API's count of records now and then, and lists the resource whole when it
    differs from the snapshot's.
    """

    summary: str = (
        "partition D = a snapshot of the whole resource as of D's sweep: the records updated "
        "`since` the last sweep merged into the latest snapshot (listed whole on demand, and "
        "when the API's count says a record was deleted)"
    )
    filters: tuple[str, ...] = ("since",)
    captures_changes: bool = True

    def change_queries(self, since: str) -> QueryPlan:
        return QueryPlan(({"since": since},))
