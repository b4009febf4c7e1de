"""Partition keys checked against a practice's daily partitions, refused with a message that
names ``DRCHRONO_START_DATE`` and the valid range (Dagster's says only that it "could not
find a partition").

Dagster's own commands check ``--partition`` and ``--partition-range`` themselves, before
any of the package's code runs (dagster/_cli/asset.py); these checks are for the package's
commands, and for steps that read a run's range from its tags.
"""

from __future__ import annotations

import dataclasses

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import ConfigurationError


@dataclasses.dataclass(frozen=True)
class ValidRange:
    """The partitions there are now: from the start date to the last day that has ended."""

    first: str  # DRCHRONO_START_DATE
    last: str
    timezone: str

    @classmethod
    def of(cls, partitions: dg.TimeWindowPartitionsDefinition) -> ValidRange:
        """``partitions``' keys as Dagster computes them now; refused while there is none."""
        keys = partitions.get_partition_keys()
        if not keys:
            start = partitions.start.date().isoformat()
            raise ConfigurationError(
                f"there are no partitions yet, since the first, {start} (DRCHRONO_START_DATE), "
                f"becomes one only once it has ended in DRCHRONO_TIMEZONE ({partitions.timezone}):"
                " set DRCHRONO_START_DATE earlier to materialize past days"
            )
        return cls(keys[0], keys[-1], partitions.timezone)

    def __str__(self) -> str:
        return (
            f"from {self.first} (DRCHRONO_START_DATE) to {self.last} (the last day that has "
            f"ended in DRCHRONO_TIMEZONE, {self.timezone})"
        )


def check_partition_key(key: str, partitions: dg.TimeWindowPartitionsDefinition) -> str:
    """``key`` if it is one of ``partitions``' keys now; else a ``ConfigurationError`` saying
    why, naming ``DRCHRONO_START_DATE`` and the valid range."""
    valid = ValidRange.of(partitions)
    try:
        day = settings.iso_day(key).isoformat()
    except ValueError as problem:
        raise ConfigurationError(
            f"{key!r} is not a partition key, as it is {problem}: give a date YYYY-MM-DD {valid}"
        ) from None
    if day < valid.first:
        raise ConfigurationError(
            f"partition {key!r} is before the first partition {valid.first} "
            f"(DRCHRONO_START_DATE): valid partitions are {valid.first} to {valid.last}; set "
            f"DRCHRONO_START_DATE={day} or earlier to include it"
        )
    if day > valid.last:
        raise ConfigurationError(
            f"partition {key!r} is after the last partition {valid.last}, the last day that "
            f"has ended in DRCHRONO_TIMEZONE ({valid.timezone}): valid partitions are "
            f"{valid.first} (DRCHRONO_START_DATE) to {valid.last}; a day becomes a partition "
            "once it has ended"
        )
    return key


def check_partition_range(
    first: str, last: str, partitions: dg.TimeWindowPartitionsDefinition
) -> DayWindow:
    """The days ``first`` to ``last`` if both are partition keys now, in order; else a
    ``ConfigurationError`` naming the bad one (as ``check_partition_key``)."""
    check_partition_key(first, partitions)
    check_partition_key(last, partitions)
    if last < first:
        raise ConfigurationError(
            f"partition range {first}...{last} ends before it starts: give the earlier day "
            f"first, {last}...{first}"
        )
    return DayWindow.from_partition_keys([first, last])
