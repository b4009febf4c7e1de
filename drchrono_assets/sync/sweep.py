"""The sweep: a run (job ``drchrono_sweep``) that asks the API what changed, stages it, and
plans the runs that bring it in. The sensor only decides when and requests; the fetching,
with its retries and budget waits, happens here, visible in the UI with its logs, and a sweep
the API cannot answer is a failed run the sensor retries."""

import datetime as dt
import logging

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.api import DrchronoClient
from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.practice_names import PracticeNames
from drchrono_assets.source.changes import (
    dated_after,
    day_ranges,
    dirty_days,
    local_since,
    newest_versions,
)
from drchrono_assets.source.extraction import fetch
from drchrono_assets.sync.staged import PlannedRun, StagedChanges, SweepPlan, SyncState

SWEEP_JOB = "drchrono_sweep"
FINISH_JOB = "drchrono_finish_sweep"
SWEEP_OP = "sweep_changes"
FINISH_OP = "finish_sweep"


class SweepConfig(dg.Config):
    """Which sweep this is; set by the ``drchrono_changes`` sensor."""

    sweep: str  # its id: the practice-local time it started and a random part
    yesterday: str  # the last partition it fills
    since: str | None = None  # start here instead of where the last finished sweep ended


def days_between(first: str, last: str) -> list[str]:
    """The days ``first``..``last`` as partition keys (none when ``first`` is later)."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def plan_sweep(
    config: SweepConfig,
    state: SyncState | None,
    client: DrchronoClient,
    io_manager: HiveParquetIOManager,
    log: logging.Logger,
    partitions: dg.DailyPartitionsDefinition,
    resources: tuple[ResourceSpec, ...],
) -> SweepPlan:
    """Fetch and stage what changed since the last finished sweep in ``resources``; plan the
    runs that bring it in, and every day since that sweep's last one (of ``partitions``, on
    their clock)."""
    yesterday = config.yesterday
    since = config.since or (state.since if state else f"{yesterday}T00:00:00")
    covered_from = min(state.covered_from, since[:10]) if state else since[:10]
    # Days no finished sweep filled: a missed morning's, or a sweep's still pending at
    # midnight. Snapshots are listed once for all of them.
    first_new = state.last_day if state else None
    new_days = days_between(first_new, yesterday)[1:] if first_new else [yesterday]
    first_day = partitions.get_first_partition_key()
    staged = StagedChanges.of(io_manager)
    runs: list[PlannedRun] = []
    answered: list[dt.datetime] = []
    for spec in resources:
        if not spec.rule.captures_changes:
            continue
        fetched = fetch(spec, client, spec.rule.change_queries(since), log)
        if fetched.answered_at is not None:
            answered.append(fetched.answered_at)
        changes = fetched.table
        waiting = None if spec.rule.lists_new_days else staged.waiting(spec.name)
        if waiting is not None:
            changes = newest_versions(spec, waiting, changes)
        staged.write(config.sweep, spec.name, changes)
        (key,) = spec.primary_key
        stored = stored_days(io_manager, spec, changes[key].combine_chunks())
        days = dirty_days(spec, changes, stored) | set(new_days)
        if spec.rule.lists_new_days:
            days |= _never_listed(io_manager, spec, covered_from, yesterday)
        # Later days are not partitions yet; their records are fetched when they are.
        days = {day for day in days if first_day <= day <= yesterday}
        runs += [
            PlannedRun((spec.name,), "merge", window.first.isoformat(), window.last.isoformat())
            for window in day_ranges(days)
        ]
    snapshots = tuple(sorted(spec.name for spec in resources if not spec.rule.captures_changes))
    if new_days:  # none when a second sweep follows a finished one the same morning
        runs.append(PlannedRun(snapshots, "fetch", max(new_days[0], first_day), yesterday))
    as_of = min(answered, default=dt.datetime.now(dt.UTC))
    return SweepPlan(
        sweep=config.sweep,
        since=since,
        until=local_since(as_of, partitions.timezone) if answered else since,
        as_of=as_of.isoformat(),
        yesterday=yesterday,
        covered_from=covered_from,
        runs=tuple(runs),
    )


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


def _never_listed(
    io_manager: HiveParquetIOManager, spec: ResourceSpec, first: str, last: str
) -> set[str]:
    """Days ``first``..``last`` with no stored file: never listed, so listed now."""
    stored = set(io_manager.dataset(dg.AssetKey(spec.name)).partition_keys())
    return {day for day in days_between(first, last) if day not in stored}


class FinishConfig(dg.Config):
    """Which sweep to finish; set by the ``drchrono_changes`` sensor once all its runs
    succeeded."""

    sweep: str


def finish(staged: StagedChanges, sweep: str, resources: tuple[ResourceSpec, ...]) -> None:
    """Advance the data root's state past ``sweep`` (of ``resources``) and remove its staged
    changes. Each step may be repeated: a run that fails halfway is finished by its next
    attempt."""
    state = staged.state()
    if state is None or state.finished != sweep:
        plan = staged.plan(sweep)
        for spec in resources:
            # Changed records dated after the sweep's last partition (a payment posted ahead
            # of its visit) had no partition to go to, and may never change again.
            if spec.rule.captures_changes and not spec.rule.lists_new_days:
                later = dated_after(spec, staged.read(sweep, spec.name), plan.yesterday)
                staged.leave_waiting(spec.name, later)
        last_day = max(plan.yesterday, state.last_day) if state else plan.yesterday
        staged.save_state(SyncState(plan.until, last_day, plan.covered_from, sweep))
    staged.remove_through(sweep)


def build_sweep_jobs(
    partitions: dg.DailyPartitionsDefinition,
    names: PracticeNames,
    resources: tuple[ResourceSpec, ...],
) -> tuple[dg.JobDefinition, dg.JobDefinition]:
    """The jobs of a practice's sweeps of ``resources`` over the days of ``partitions``: the
    sweep, and the finish that records it."""

    @dg.op(name=names(SWEEP_OP), pool=names.pool, required_resource_keys=names.resource_keys)
    def sweep_changes(context: dg.OpExecutionContext, config: SweepConfig) -> None:
        """Ask the API what changed since the last finished sweep, stage it beside the
        datasets, and write the plan of the runs that merge it (read by the
        ``drchrono_changes`` sensor)."""
        storage = names.storage(context)
        staged = StagedChanges.of(storage)
        client = names.api(context).client
        plan = plan_sweep(
            config, staged.state(), client, storage, context.log, partitions, resources
        )
        staged.write_plan(plan)
        context.log.info(
            f"sweep {plan.sweep}: changes since {plan.since} in {client.requests_used} API "
            f"requests; {len(plan.runs)} run(s) to bring them in"
        )

    @dg.job(
        name=names(SWEEP_JOB),
        description="What changed in drchrono since the last sweep, staged for the merge runs.",
    )
    def sweep_job() -> None:
        sweep_changes()

    @dg.op(name=names(FINISH_OP), required_resource_keys={names.io_manager})
    def finish_sweep(context: dg.OpExecutionContext, config: FinishConfig) -> None:
        """Record that the sweep's changes are all in: the next sweep starts where it ended.
        Records dated after its last day wait for their partition; its staged files go."""
        finish(StagedChanges.of(names.storage(context)), config.sweep, resources)
        context.log.info(f"sweep {config.sweep} finished")

    @dg.job(
        name=names(FINISH_JOB),
        description="Records that a sweep's changes are all in, so the next sweep starts "
        "there. Requested by the drchrono_changes sensor; no API request.",
    )
    def finish_job() -> None:
        finish_sweep()

    return sweep_job, finish_job
