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

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.io_managers.hive_dataset import (
    STAGING_FOLDER,
    parquet_bytes,
    write_atomically,
)

# The API's GET data "may be several seconds old": each sweep starts this much before the
# previous one's API time, so nothing updated meanwhile slips between two sweeps.
OVERLAP = dt.timedelta(minutes=2)
CHANGES_FOLDER = ".changes"  # beside the datasets, never inside one
# Changed records dated after a sweep's last partition, kept for the sweep that can place them.
WAITING = "waiting"
# On every run a sweep requests: the sweep's id; on those that merge its staged changes, too.
SWEEP_TAG = "drchrono/sweep"
MERGE_TAG = "drchrono/merge"


def local_since(api_time: dt.datetime, timezone: str) -> str:
    """The ``since`` value (practice-local, naive ISO) for a sweep that began at ``api_time``."""
    local = api_time.astimezone(zoneinfo.ZoneInfo(timezone)) - OVERLAP
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


def days_of(spec: ResourceSpec, table: pa.Table) -> list[str]:
    """The partition key of each row of a dated resource's records."""
    days = pc.cast(table[spec.rule.day_column], pa.date32())
    return [day.isoformat() for day in days.to_pylist()]


def stored_days(
    io_manager: HiveParquetIOManager, spec: ResourceSpec, keys: pa.Array
) -> dict[str, str]:
    """Primary key -> the partition that stores the record, for the records of ``keys``.

    One scan of the key column of every partition, filtered as it is read: memory holds the
    matches only.
    """
    (key,) = spec.primary_key
    if not len(keys):
        return {}
    dataset = io_manager.dataset(dg.AssetKey(spec.name))
    found = dataset.scan([key, dataset.partition_column], pc.field(key).isin(keys))
    days = (day.isoformat() for day in found[dataset.partition_column].to_pylist())
    return dict(zip(found[key].to_pylist(), days, strict=True))


def stored_partitions(
    io_manager: HiveParquetIOManager, spec: ResourceSpec, window: DayWindow
) -> dict[str, pa.Table]:
    """The stored tables of the days of ``window`` that have a file."""
    dataset = io_manager.dataset(dg.AssetKey(spec.name))
    existing = set(dataset.partition_keys())
    return {day: dataset.read([day]) for day in window.partition_keys if day in existing}


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
) -> dict[str, pa.Table]:
    """Each day of ``window``: its stored rows, less every changed record, plus the changed
    records that belong to it now. Days without a stored file start empty."""
    (key,) = spec.primary_key
    changed = changes[key]
    arriving = spec.rule.split(changes, window, dt.datetime.now(dt.UTC))
    merged = {}
    for day in window.partition_keys:
        before = stored.get(day, spec.schema.empty_table()).select(spec.schema.names)
        kept = before.filter(pc.invert(pc.is_in(before[key], value_set=changed)))
        merged[day] = spec.in_key_order(pa.concat_tables([kept, arriving[day]]))
    return merged


class StagedChanges:
    """Change sets between the sweep that fetched them and the runs that merge them:
    ``<data root>/.changes/<sweep>/<resource>.parquet``; records no partition can hold yet
    wait in ``<data root>/.changes/waiting/<resource>.parquet``."""

    def __init__(self, data_root: str) -> None:
        self.folder = UPath(data_root) / CHANGES_FOLDER

    def path(self, sweep: str, resource: str) -> UPath:
        return self.folder / sweep / f"{resource}.parquet"

    def write(self, sweep: str, resource: str, table: pa.Table) -> None:
        staging = UPath(self.folder.parent) / STAGING_FOLDER
        write_atomically(parquet_bytes(table), [self.path(sweep, resource)], staging)

    def read(self, sweep: str, resource: str) -> pa.Table:
        with self.path(sweep, resource).open("rb") as handle:
            return pq.read_table(handle)

    def waiting(self, resource: str) -> pa.Table | None:
        """The records an earlier sweep left for a later one, if any."""
        return self.read(WAITING, resource) if self.path(WAITING, resource).exists() else None

    def leave_waiting(self, resource: str, table: pa.Table) -> None:
        self.write(WAITING, resource, table)

    def remove(self, sweep: str) -> None:
        folder = self.folder / sweep
        if folder.exists():
            folder.fs.rm(folder.path, recursive=True)
