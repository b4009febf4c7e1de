"""The daily schedule, in the practice's time zone (the fixed-window alternative to the
``drchrono_changes`` sensor: run one or the other)."""

import datetime as dt
import zoneinfo

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.jobs import daily_job
from drchrono_assets.partitions import daily_partitions

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
BEFORE_START = dg.SkipReason("the tick is before DRCHRONO_START_DATE")


def _yesterday(context: dg.ScheduleEvaluationContext) -> str | None:
    """The last complete day at the tick, in the practice's time zone; None before the start."""
    local = context.scheduled_execution_time.astimezone(zoneinfo.ZoneInfo(settings.timezone()))
    day = (local.date() - dt.timedelta(days=1)).isoformat()
    return day if day >= daily_partitions.get_first_partition_key() else None


@dg.schedule(job=daily_job, cron_schedule="0 4 * * *", execution_timezone=settings.timezone())
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Yesterday for every asset."""
    day = _yesterday(context)
    if day is None:
        return BEFORE_START
    return dg.RunRequest(run_key=day, partition_key=day)
