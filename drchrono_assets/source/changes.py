"""Change capture: what the API changed since the last sweep, which partitions that dirties,
and the merge that brings those partitions up to date without fetching them again.

A sweep asks each resource that can tell (``since``: appointments, transactions per doctor,
documents) for the records updated since the previous sweep. The changed records are staged
beside the datasets; the runs that re-materialize the dirty partitions merge them by primary
key into what is stored, so a payment on a 100-day-old visit costs the one change query,
not a 100-day sweep.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.day_window import DayWindow
from drchrono_assets.source.versions import with_version

# The API's GET data "may be several seconds old": each sweep starts this much before the
# previous one's API time, so nothing updated meanwhile slips between two sweeps.
OVERLAP = dt.timedelta(minutes=2)


def local_since(api_time: dt.datetime, timezone: str) -> str:
    """The ``since`` value (practice-local, naive ISO) for a sweep that began at ``api_time``."""
    local = api_time.astimezone(zoneinfo.ZoneInfo(timezone)) - OVERLAP
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


def days_of(spec: ResourceSpec, table: pa.Table) -> list[str]:
    """The partition key of each row of a dated resource's records."""
    days = pc.cast(table[spec.rule.day_column], pa.date32())
    return [day.isoformat() for day in days.to_pylist()]


def dirty_days(spec: ResourceSpec, changes: pa.Table, stored_days: Mapping[str, str]) -> set[str]:
    """Partitions a change set touches: where each changed record belongs now, and where it
    was stored before (a rescheduled appointment leaves its old day)."""
    (key,) = spec.primary_key
    new = set(days_of(spec, changes))
    old = {stored_days[k] for k in changes[key].to_pylist() if k in stored_days}
    return new | old


def newest_versions(spec: ResourceSpec, older: pa.Table, newer: pa.Table) -> pa.Table:
    """``newer`` plus the records of ``older`` it has no version of."""
    (key,) = spec.primary_key
    kept = older.filter(pc.invert(pc.is_in(older[key], value_set=newer[key])))
    return pa.concat_tables([kept.select(newer.schema.names).cast(newer.schema), newer])


def dated_after(spec: ResourceSpec, table: pa.Table, day: str) -> pa.Table:
    """The records that belong to a partition later than ``day``."""
    days = pc.cast(table[spec.rule.day_column], pa.date32())
    return table.filter(pc.greater(days, pa.scalar(dt.date.fromisoformat(day), pa.date32())))


def day_ranges(days: Iterable[str]) -> list[DayWindow]:
    """Consecutive days grouped into windows: one run per window (single-run backfill)."""
    windows: list[DayWindow] = []
    for day in sorted(dt.date.fromisoformat(key) for key in set(days)):
        if windows and day == windows[-1].last + dt.timedelta(days=1):
            windows[-1] = DayWindow(windows[-1].first, day)
        else:
            windows.append(DayWindow(day, day))
    return windows


def merge_changes(
    spec: ResourceSpec,
    changes: pa.Table,
    stored: Mapping[str, pa.Table],
    window: DayWindow,
    as_of: dt.datetime,
    fetched: Mapping[str, pa.Table] | None = None,
) -> dict[str, pa.Table]:
    """Each day of ``window``: its stored rows, less every changed record, plus the changed
    records that belong to it now, marked as of ``as_of`` (the change set's API time). Days
    in ``fetched`` were fetched whole (they had no file) and are taken as they are; other
    days without a stored file start empty."""
    (key,) = spec.primary_key
    changed = changes[key]
    arriving = spec.rule.split(changes, window, dt.datetime.now(dt.UTC))
    fetched = fetched or {}
    merged = {}
    for day in window.partition_keys:
        if day in fetched:
            merged[day] = fetched[day]
            continue
        before = stored.get(day, spec.schema.empty_table()).select(spec.schema.names)
        kept = before.filter(pc.invert(pc.is_in(before[key], value_set=changed)))
        table = spec.in_key_order(pa.concat_tables([kept, arriving[day]]))
        merged[day] = with_version(table, as_of)
    return merged
