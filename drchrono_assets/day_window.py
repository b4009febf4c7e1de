"""The day window of a run: the inclusive range of practice-local days it materializes.

Plain data, read from no setting, so the catalog and scripts can use it without the
environment the Dagster partitions need.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The tags that make one run materialize a range of partitions (a single-run backfill).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

EPOCH = dt.date(1970, 1, 1)  # Arrow's date32 counts days from here


@dataclass(frozen=True)
class DayWindow:
    """The inclusive range of practice-local days a run materializes, one partition per day."""

    first: dt.date
    last: dt.date

    @classmethod
    def from_partition_keys(cls, keys: list[str]) -> DayWindow:
        days = sorted(dt.date.fromisoformat(key) for key in keys)
        return cls(days[0], days[-1])

    @property
    def run_tags(self) -> dict[str, str]:
        """The tags of the one run that materializes this window."""
        return {RANGE_START: self.first.isoformat(), RANGE_END: self.last.isoformat()}

    @property
    def days(self) -> list[dt.date]:
        return [
            self.first + dt.timedelta(days=offset)
            for offset in range((self.last - self.first).days + 1)
        ]

    @property
    def partition_keys(self) -> list[str]:
        return [day.isoformat() for day in self.days]

    def chunks(self, max_days: int) -> list[DayWindow]:
        """Consecutive sub-windows of at most ``max_days`` days covering this window."""
        chunks = []
        first = self.first
        while first <= self.last:
            last = min(first + dt.timedelta(days=max_days - 1), self.last)
            chunks.append(DayWindow(first, last))
            first = last + dt.timedelta(days=1)
        return chunks

    def split(self, table: pa.Table, day_column: str) -> dict[str, pa.Table]:
        """One table per day of the window, by the day of ``day_column``; other days dropped.
        Each day keeps the rows' order: one stable sort by day, then zero-copy slices (a
        filtered copy per day made a year's backfill scan and copy the data 365 times)."""
        days = pc.cast(table[day_column], pa.date32())
        order = pc.sort_indices(days)  # stable; nulls (no day) last, in no slice
        ordered = table.take(order)
        numbers = days.take(order).cast(pa.int32()).to_numpy(zero_copy_only=False)
        wanted = np.array([(day - EPOCH).days for day in self.days], dtype=np.int32)
        starts = np.searchsorted(numbers, wanted, side="left")
        ends = np.searchsorted(numbers, wanted, side="right")
        return {
            day.isoformat(): ordered.slice(int(first), int(last - first))
            for day, first, last in zip(self.days, starts, ends, strict=True)
        }
