"""Daily schedules, in the practice's time zone."""

import datetime as dt
import zoneinfo

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.jobs import billing_refresh_job, daily_job
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


@dg.schedule(
    job=billing_refresh_job, cron_schedule="0 5 * * *", execution_timezone=settings.timezone()
)
def billing_refresh_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """The most recent N days (``DRCHRONO_BILLING_REFRESH_DAYS``, 30) as a single run.

    Payments, adjustments and denials land on a visit for weeks after it; re-running the
    recent window every day lets the report converge without a manual backfill.
    """
    last = _yesterday(context)
    if last is None:
        return BEFORE_START
    first = dt.date.fromisoformat(last) - dt.timedelta(days=settings.billing_refresh_days() - 1)
    first_key = max(first.isoformat(), daily_partitions.get_first_partition_key())
    return dg.RunRequest(
        run_key=f"{first_key}...{last}", tags={RANGE_START: first_key, RANGE_END: last}
    )
