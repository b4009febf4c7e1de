"""Daily schedules, in the practice's time zone."""

import datetime as dt

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.jobs import billing_refresh_job, daily_job
from drchrono_assets.partitions import daily_partitions

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _yesterday(context: dg.ScheduleEvaluationContext) -> str:
    """The last complete day at the tick, in the practice's time zone."""
    last = daily_partitions.get_last_partition_key(current_time=context.scheduled_execution_time)
    if last is None:
        raise dg.DagsterInvariantViolationError(
            "no complete partition yet: check DRCHRONO_START_DATE"
        )
    return last


@dg.schedule(
    job=daily_job,
    cron_schedule="0 4 * * *",
    execution_timezone=settings.timezone(),
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday for every asset."""
    day = _yesterday(context)
    return dg.RunRequest(run_key=day, partition_key=day)


@dg.schedule(
    job=billing_refresh_job,
    cron_schedule="0 5 * * *",
    execution_timezone=settings.timezone(),
)
def billing_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The most recent N days (``DRCHRONO_BILLING_REFRESH_DAYS``, 30) as a single run.

    Payments, adjustments and denials land on a visit for weeks after it; re-running the
    recent window every day lets the report converge without a manual backfill.
    """
    last = _yesterday(context)
    first = dt.date.fromisoformat(last) - dt.timedelta(days=settings.billing_refresh_days() - 1)
    first_key = max(first.isoformat(), daily_partitions.get_first_partition_key())
    return dg.RunRequest(
        run_key=f"{first_key}...{last}", tags={RANGE_START: first_key, RANGE_END: last}
    )
