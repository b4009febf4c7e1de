"""The sweep: a run (job ``drchrono_sweep``) that asks the API what changed, stages it, and
plans the runs that bring it in. The sensor only decides when and requests; the fetching,
with its retries and budget waits, happens here, visible in the UI with its logs, and a sweep
the API cannot answer is a failed run the sensor retries."""

import dataclasses
import datetime as dt
import logging

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.api import DrchronoClient
from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.catalog.partition_rules import QueryPlan
from drchrono_assets.day_window import DayWindow
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


# The widest ``date_range`` the API takes: the days ahead listed by date in one request.
AHEAD_DAYS = 190


def plan_sweep(
    config: SweepConfig,
    state: SyncState | None,
    client: DrchronoClient,
    io_manager: HiveParquetIOManager,
    log: logging.Logger,
    partitions: dg.DailyPartitionsDefinition,
    resources: tuple[ResourceSpec, ...],
    deletion_check_days: int,
) -> SweepPlan:
    """Fetch and stage what changed since the last finished sweep in ``resources``; plan the
    runs that bring it in, and every day since that sweep's last one (of ``partitions``, on
    their clock). Every ``deletion_check_days`` the snapshots kept by ``since`` are checked
    for records deleted in drchrono."""
    yesterday = config.yesterday
    since = config.since or (state.since if state else f"{yesterday}T00:00:00")
    covered_from = min(state.covered_from, since[:10]) if state else since[:10]
    # Days no finished sweep filled: a missed morning's, or a sweep's still pending at
    # midnight. Snapshots are listed once for all of them.
    first_new = state.last_day if state else None
    new_days = days_between(first_new, yesterday)[1:] if first_new else [yesterday]
    first_day = partitions.get_first_partition_key()
    sweep = _Sweep(config.sweep, since, yesterday, StagedChanges.of(io_manager), client, log)
    known = tuple(state.known_ahead) if state and state.known_ahead else None
    runs: list[PlannedRun] = []
    dated = [spec for spec in resources if spec.rule.captures_changes and not spec.rule.whole]
    queries = {spec.name: spec.rule.change_queries(since) for spec in dated}
    fanned_out = {plan.fan_out[1] for plan in queries.values() if plan and plan.fan_out}
    # The records a fan-out goes over (doctors) are listed once: that listing is also the
    # resource's snapshot.
    parents = {
        spec.path: sweep.list_whole(spec)
        for spec in resources
        if spec.rule.whole and spec.path in fanned_out
    }
    for spec in dated:
        plan = queries[spec.name]
        fan_out = plan.fan_out[1] if plan and plan.fan_out else None
        changes = sweep.changes(spec, plan, parents.get(fan_out) if fan_out else None)
        if spec.rule.books_ahead and (known is None or known[1] <= yesterday):
            known, changes = sweep.list_ahead(spec, known, changes)
        sweep.stage(spec, changes)
        (key,) = spec.primary_key
        stored = stored_days(io_manager, spec, changes[key].combine_chunks())
        days = dirty_days(spec, changes, stored) | set(new_days)
        if spec.rule.books_ahead:
            days |= _never_listed(io_manager, spec, covered_from, yesterday)
        # Later days are not partitions yet; their records are fetched when they are.
        days = {day for day in days if first_day <= day <= yesterday}
        runs += [
            PlannedRun((spec.name,), "merge", window.first.isoformat(), window.last.isoformat())
            for window in day_ranges(days)
        ]
    # Each snapshot is written to the new days (yesterday again for one kept by ``since``,
    # whose changes must not skip a sweep).
    days = [max(new_days[0], first_day), yesterday] if new_days else [yesterday, yesterday]
    checked = state.deletions_checked if state else None
    check = checked is None or _days_apart(checked, yesterday) >= deletion_check_days
    merged: list[str] = []  # written from what the sweep staged
    listed: list[str] = []  # listed whole by their run
    for spec in resources:
        if spec.rule.whole and spec.rule.captures_changes:
            kept = sweep.kept_by_since(spec, io_manager, check)
            (merged if kept else listed).append(spec.name)
        elif spec.rule.whole and new_days:
            (merged if spec.path in parents else listed).append(spec.name)
    runs += [
        PlannedRun(tuple(sorted(names)), mode, *days)
        for mode, names in (("merge", merged), ("fetch", listed))
        if names
    ]
    as_of = min(sweep.answered, default=dt.datetime.now(dt.UTC))
    return SweepPlan(
        sweep=config.sweep,
        since=since,
        until=local_since(as_of, partitions.timezone) if sweep.answered else since,
        as_of=as_of.isoformat(),
        yesterday=yesterday,
        covered_from=covered_from,
        runs=tuple(runs),
        known_ahead=known,
        assembled_from=max(known[0], new_days[0]) if known and new_days else None,
        deletions_checked=yesterday if check else checked,
    )


@dataclasses.dataclass
class _Sweep:
    """What one sweep fetches and stages, and the API's times of its answers."""

    id: str
    since: str
    yesterday: str
    staged: StagedChanges
    client: DrchronoClient
    log: logging.Logger
    answered: list[dt.datetime] = dataclasses.field(default_factory=list)

    def _fetch(
        self, spec: ResourceSpec, plan: QueryPlan, parents: pa.Table | None = None
    ) -> pa.Table:
        fetched = fetch(spec, self.client, plan, self.log, parents)
        if fetched.answered_at is not None:
            self.answered.append(fetched.answered_at)
        return fetched.table

    def list_whole(self, spec: ResourceSpec) -> pa.Table:
        """A snapshot resource listed whole, staged as the sweep's listing of it."""
        day = DayWindow.from_partition_keys([self.yesterday])
        table = self._fetch(spec, spec.rule.queries(day))
        self.stage(spec, table)
        return table

    def changes(
        self, spec: ResourceSpec, plan: QueryPlan | None, parents: pa.Table | None
    ) -> pa.Table:
        """The records of ``spec`` changed since the sweep's ``since``, with those an earlier
        sweep left waiting."""
        assert plan is not None, spec.name  # the rule captures changes
        changes = self._fetch(spec, plan, parents)
        waiting = self.staged.waiting(spec.name)
        return changes if waiting is None else newest_versions(spec, waiting, changes)

    def stage(self, spec: ResourceSpec, records: pa.Table) -> None:
        """Leave ``records`` of ``spec`` for the sweep's runs."""
        self.staged.write(self.id, spec.name, records)

    def list_ahead(
        self, spec: ResourceSpec, known: tuple[str, str] | None, changes: pa.Table
    ) -> tuple[tuple[str, str], pa.Table]:
        """The days after the last known one, to ``AHEAD_DAYS`` after yesterday, listed by
        date (one request): what was booked for them before the sweeps began. Returns the
        days now known and the changes with the listing merged in."""
        yesterday = dt.date.fromisoformat(self.yesterday)
        first = dt.date.fromisoformat(known[1]) if known else yesterday
        window = DayWindow(first + dt.timedelta(days=1), yesterday + dt.timedelta(days=AHEAD_DAYS))
        changes = newest_versions(spec, changes, self._fetch(spec, spec.rule.queries(window)))
        return (known[0] if known else window.first.isoformat(), window.last.isoformat()), changes

    def kept_by_since(
        self, spec: ResourceSpec, io_manager: HiveParquetIOManager, check: bool
    ) -> bool:
        """Whether a snapshot kept by ``since`` is merged from its changes (staged now), not
        listed whole: it has a stored snapshot, and if ``check``, the API counts as many
        records as the snapshot merged with the changes holds."""
        dataset = io_manager.dataset(dg.AssetKey(spec.name))
        stored = [day for day in dataset.partition_keys() if day <= self.yesterday]
        if not stored:
            return False
        changes = self.changes(spec, spec.rule.change_queries(self.since), None)
        self.stage(spec, changes)
        if not check:
            return True
        (key,) = spec.primary_key
        kept = set(dataset.read(stored[-1:], columns=[key])[key].to_pylist())
        expected = len(kept | set(changes[key].to_pylist()))
        count = self.client.count(spec.path)
        if count != expected:
            self.log.info(
                f"{spec.name}: the API counts {count} records, the snapshot with its changes "
                f"{expected} (deleted or merged in drchrono): listed whole"
            )
        return count == expected


def _days_apart(first: str, last: str) -> int:
    return (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days


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
            if spec.rule.captures_changes and not spec.rule.whole:
                later = dated_after(spec, staged.read(sweep, spec.name), plan.yesterday)
                staged.leave_waiting(spec.name, later)
        last_day = max(plan.yesterday, state.last_day) if state else plan.yesterday
        staged.save_state(
            SyncState(
                plan.until,
                last_day,
                plan.covered_from,
                sweep,
                plan.known_ahead,
                plan.deletions_checked,
            )
        )
    staged.remove_through(sweep)


def build_sweep_jobs(
    partitions: dg.DailyPartitionsDefinition,
    names: PracticeNames,
    resources: tuple[ResourceSpec, ...],
    deletion_check_days: int,
) -> tuple[dg.JobDefinition, dg.JobDefinition]:
    """The jobs of a practice's sweeps of ``resources`` over the days of ``partitions``: the
    sweep (checking for deleted records every ``deletion_check_days``), and the finish that
    records it."""

    @dg.op(name=names(SWEEP_OP), pool=names.pool, required_resource_keys=names.resource_keys)
    def sweep_changes(context: dg.OpExecutionContext, config: SweepConfig) -> None:
        """Ask the API what changed since the last finished sweep, stage it beside the
        datasets, and write the plan of the runs that merge it (read by the
        ``drchrono_changes`` sensor)."""
        storage = names.storage(context)
        staged = StagedChanges.of(storage)
        client = names.api(context).client
        plan = plan_sweep(
            config,
            staged.state(),
            client,
            storage,
            context.log,
            partitions,
            resources,
            deletion_check_days,
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
