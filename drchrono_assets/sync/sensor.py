"""The sensor that keeps every partition current: one change sweep each morning.

It only decides and requests: every API request and every write is made in a run, so a
tick (and ``dagster sensor preview``) changes nothing but the sensor's cursor. Each morning
(from ``DRCHRONO_SYNC_HOUR``, practice-local) it requests a sweep run (``drchrono_sweep``),
which stages what changed since the last finished sweep and plans the runs that merge it;
once that run succeeded, the sensor requests the planned runs (one per asset and range of
dirty days, a single-run backfill each); once those succeeded, a finish run
(``drchrono_finish_sweep``) records where the next sweep starts (``SyncState`` in the data
root). A failed, deleted or stuck run is requested again with growing delays, never more
often than ``FIRST_RETRY`` and never less than every ``LONGEST_RETRY``, so a sweep catches up
as soon as the API answers again. ``billing_report`` follows through its automation condition.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from drchrono_assets.assets.ingest import IngestConfig
from drchrono_assets.day_window import DayWindow
from drchrono_assets.jobs import INGEST_JOB
from drchrono_assets.practice_names import PracticeNames
from drchrono_assets.resources.drchrono_api import SWEEP_TAG
from drchrono_assets.sync.staged import PlannedRun, StagedChanges, SweepPlan
from drchrono_assets.sync.sweep import (
    FINISH_JOB,
    FINISH_OP,
    SWEEP_JOB,
    SWEEP_OP,
    FinishConfig,
    SweepConfig,
)

FIRST_RETRY = dt.timedelta(minutes=10)  # after a run's first failure; doubled each time
LONGEST_RETRY = dt.timedelta(hours=6)
# A run not finished this long after it was requested has a dead worker or is stuck: it is
# requested again. Run monitoring ends it (its ``dagster/max_runtime`` tag) where it runs.
RUN_DEADLINE = dt.timedelta(hours=6)
# A requested run the instance does not know this long after was deleted or never launched.
MISSING_AFTER = dt.timedelta(minutes=30)
SWEEP_RUN = "sweep"  # the cursor's key of the sweep run itself
FINISH_RUN = "finish"  # and of the run that finishes it
DONE = dg.DagsterRunStatus.SUCCESS
STOPPED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

# The clock that decides when a morning has come; tests move it with the sandbox's.
clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


@dataclasses.dataclass
class RunAttempt:
    """The latest attempt of one of the pending sweep's runs."""

    number: int
    requested_at: str  # UTC ISO, by ``clock``
    retry_at: str | None = None  # set once it failed: when the next attempt goes


@dataclasses.dataclass
class SyncCursor:
    """What the sensor remembers between ticks (its cursor, as JSON). Clearing it forgets a
    pending sweep, never data: the next sweep starts where the last finished one ended."""

    day: str | None = None  # practice day of the last sweep started: one a morning
    sweep: str | None = None  # the sweep whose runs are not all done yet
    yesterday: str | None = None  # that sweep's last partition
    since: str | None = None  # set by an operator: the next sweep starts here
    runs: dict[str, RunAttempt] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> SyncCursor:
        values: dict[str, Any] = json.loads(text) if text else {}
        runs = values.pop("runs", {})
        if not all(isinstance(run, dict) for run in runs.values()) or "until" in values:
            # A cursor of the package before sweeps ran as runs: its ``since`` is where the
            # next sweep starts; its pending sweep is swept again.
            return cls(day=values.get("day"), since=values.get("since"))
        return cls(runs={key: RunAttempt(**run) for key, run in runs.items()}, **values)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _run_key(sweep: str, key: str, attempt: int) -> str:
    return f"{sweep}:{key}#{attempt}"


def _statuses(
    instance: dg.DagsterInstance, cursor: SyncCursor
) -> dict[str, dg.DagsterRunStatus | None]:
    """The status of the latest attempt of each run of the pending sweep (None: no such run).
    A success counts however it came (a re-execution from the UI carries the same key)."""
    records = instance.get_run_records(dg.RunsFilter(tags={SWEEP_TAG: cursor.sweep or ""}))
    by_run_key: dict[str, dg.DagsterRunStatus] = {}
    for record in sorted(records, key=lambda record: record.create_timestamp):
        run_key = record.dagster_run.tags.get("dagster/run_key", "")
        if by_run_key.get(run_key) != DONE:
            by_run_key[run_key] = record.dagster_run.status
    return {
        key: by_run_key.get(_run_key(cursor.sweep or "", key, attempt.number))
        for key, attempt in cursor.runs.items()
    }


def _failed(
    status: dg.DagsterRunStatus | None, attempt: RunAttempt, now: dt.datetime
) -> str | None:
    """Why an attempt counts as failed, or None while it may still succeed."""
    waited = now - dt.datetime.fromisoformat(attempt.requested_at)
    if status in STOPPED:
        return status.value.lower()
    if status is None and waited > MISSING_AFTER:
        return "missing from the instance"
    if status not in (DONE, None) and waited > RUN_DEADLINE:
        return f"still {status.value.lower()} after {RUN_DEADLINE}"
    return None


def _run_request(
    sweep: str,
    key: str,
    attempt: int,
    cursor: SyncCursor,
    plan: Callable[[], SweepPlan],
    names: PracticeNames,
) -> dg.RunRequest:
    """The request of a sweep's run; ``plan`` reads the sweep's plan, once a tick (cached)."""
    tags = {SWEEP_TAG: sweep, "dagster/max_runtime": str(int(RUN_DEADLINE.total_seconds()))}
    run_key = _run_key(sweep, key, attempt)
    if key == SWEEP_RUN:
        config = SweepConfig(sweep=sweep, yesterday=cursor.yesterday or "", since=cursor.since)
        return dg.RunRequest(
            run_key=run_key,
            job_name=names(SWEEP_JOB),
            run_config=dg.RunConfig(ops={names(SWEEP_OP): config}),
            tags=tags,
        )
    if key == FINISH_RUN:
        return dg.RunRequest(
            run_key=run_key,
            job_name=names(FINISH_JOB),
            run_config=dg.RunConfig(ops={names(FINISH_OP): FinishConfig(sweep=sweep)}),
            tags=tags,
        )
    run: PlannedRun = plan().run(key)
    tags |= DayWindow.from_partition_keys([run.first, run.last]).run_tags
    # In the config, not a tag: what a run does shows in `dagster sensor preview` and the UI.
    ingest = IngestConfig(merge_sweep=sweep if run.mode == "merge" else None)
    keys = [names.key(asset) for asset in run.assets]
    return dg.RunRequest(
        run_key=run_key,
        job_name=names(INGEST_JOB),
        asset_selection=keys,
        run_config=dg.RunConfig(
            ops=dict.fromkeys((k.to_python_identifier() for k in keys), ingest)
        ),
        tags=tags,
    )


def _plan_of(staged: StagedChanges, sweep: str) -> Callable[[], SweepPlan]:
    """The sweep's plan, read from the data root at most once."""
    return functools.cache(lambda: staged.plan(sweep))


def _lost(staged: StagedChanges, sweep: str) -> bool:
    """Whether the sweep's staged changes are gone though it has not finished (removed by
    hand, or an older data root restored): it can only be swept again."""
    if staged.has_plan(sweep):
        return False
    state = staged.state()
    return state is None or state.finished != sweep


def _sweep_again(context: dg.SensorEvaluationContext, cursor: SyncCursor) -> SyncCursor:
    context.log.warning(f"sweep {cursor.sweep}: its staged changes are gone; sweeping again")
    return SyncCursor(since=cursor.since)  # no day: the next sweep starts now


def _progress(
    context: dg.SensorEvaluationContext,
    cursor: SyncCursor,
    staged: StagedChanges,
    names: PracticeNames,
) -> dg.SensorResult | None:
    """Requests for the pending sweep's failed runs whose retry is due, or a skip while its
    runs work or wait; None once every run succeeded."""
    now = clock()
    plan = _plan_of(staged, cursor.sweep or "")
    sweep = cursor.sweep or ""
    statuses: Mapping[str, dg.DagsterRunStatus | None] = _statuses(context.instance, cursor)
    requests, waiting = [], []
    for key, attempt in cursor.runs.items():
        if statuses[key] == DONE:
            continue
        reason = _failed(statuses[key], attempt, now)
        if reason and attempt.retry_at is None:
            delay = min(FIRST_RETRY * 2 ** (attempt.number - 1), LONGEST_RETRY)
            attempt.retry_at = (now + delay).isoformat()
            context.log.warning(
                f"sweep {sweep}: run {key} attempt {attempt.number} {reason}; "
                f"next attempt after {attempt.retry_at}"
            )
        if reason and dt.datetime.fromisoformat(attempt.retry_at or "") <= now:
            cursor.runs[key] = RunAttempt(attempt.number + 1, now.isoformat())
            requests.append(_run_request(sweep, key, attempt.number + 1, cursor, plan, names))
        elif reason:
            waiting.append(f"{key} (attempt {attempt.number} {reason}; retry {attempt.retry_at})")
        else:
            waiting.append(f"{key} ({statuses[key].value.lower() if statuses[key] else 'new'})")
    if not requests and not waiting:
        return None
    skip = None if requests else f"sweep {sweep}: waiting for " + "; ".join(waiting)
    return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=cursor.to_json())


def _next_step(cursor: SyncCursor, staged: StagedChanges, names: PracticeNames) -> dg.SensorResult:
    """The requests of the pending sweep's next step, once every run of its current step
    succeeded: after the sweep run its planned runs, after those the finish run."""
    sweep = cursor.sweep or ""
    plan = _plan_of(staged, sweep)
    planned = [run.key for run in plan().runs] if SWEEP_RUN in cursor.runs else []
    keys = planned or [FINISH_RUN]
    cursor.runs = {key: RunAttempt(1, clock().isoformat()) for key in keys}
    requests = [_run_request(sweep, key, 1, cursor, plan, names) for key in keys]
    return dg.SensorResult(run_requests=requests, cursor=cursor.to_json())


DESCRIPTION = """Keeps every partition current, one change sweep each morning.

From DRCHRONO_SYNC_HOUR (practice-local) it requests a drchrono_sweep run, which asks the
API what changed since the last finished sweep and plans the runs that merge it; then those
runs (tagged drchrono/sweep, one per asset and range of changed days, plus every day since
the last sweep); then a drchrono_finish_sweep run that records where the next sweep starts
(<data root>/.changes/state.json). A failed or lost run is requested again after 10 minutes,
doubling up to 6 hours. Ticks make no API request and write nothing but this cursor.
billing_report follows through automation."""


def build_changes_sensor(
    partitions: dg.DailyPartitionsDefinition,
    sync_hour: int,
    names: PracticeNames,
    jobs: Sequence[Any],
) -> dg.SensorDefinition:
    """The sensor of a practice's mornings: from ``sync_hour`` on its partitions' clock, it
    sweeps yesterday's changes through ``jobs`` (the practice's ingest, sweep and finish)."""
    zone = partitions.timezone

    @dg.sensor(
        name=names("drchrono_changes"),
        description=DESCRIPTION,
        jobs=list(jobs),
        required_resource_keys={names.io_manager},
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def drchrono_changes(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Each morning: a sweep run stages what changed since the last sweep, then runs merge
        it into exactly the partitions it touches, plus every day since the last sweep for
        every asset; a day nobody touched is never fetched again."""
        cursor = SyncCursor.from_json(context.cursor)
        staged = StagedChanges.of(names.storage(context))
        if cursor.sweep is not None:
            pending = _pending_sweep(context, cursor, staged, names)
            if isinstance(pending, dg.SensorResult):
                return pending
            cursor = pending
        now = clock().astimezone(zoneinfo.ZoneInfo(zone))
        yesterday = (now.date() - dt.timedelta(days=1)).isoformat()
        if cursor.day == now.date().isoformat():
            skip = (
                f"this morning's sweep is done; the next starts tomorrow {sync_hour:02}:00 {zone}"
            )
            return dg.SensorResult(skip_reason=skip, cursor=cursor.to_json())
        if now.hour < sync_hour:
            skip = f"waiting for {sync_hour:02}:00 {zone} (DRCHRONO_SYNC_HOUR) to sweep {yesterday}"
            return dg.SensorResult(skip_reason=skip, cursor=cursor.to_json())
        if yesterday < partitions.get_first_partition_key():
            skip = "before DRCHRONO_START_DATE"
            return dg.SensorResult(skip_reason=skip, cursor=cursor.to_json())
        sweep = StagedChanges.new_sweep_id(now)
        cursor = SyncCursor(
            day=now.date().isoformat(),
            sweep=sweep,
            yesterday=yesterday,
            since=cursor.since,
            runs={SWEEP_RUN: RunAttempt(1, clock().isoformat())},
        )
        request = _run_request(sweep, SWEEP_RUN, 1, cursor, _plan_of(staged, sweep), names)
        return dg.SensorResult(run_requests=[request], cursor=cursor.to_json())

    return drchrono_changes


def _pending_sweep(
    context: dg.SensorEvaluationContext,
    cursor: SyncCursor,
    staged: StagedChanges,
    names: PracticeNames,
) -> dg.SensorResult | SyncCursor:
    """The requests (or the skip) of the pending sweep; once it is finished, or its staged
    changes are lost, the cursor a new morning's sweep starts from."""
    if SWEEP_RUN not in cursor.runs and _lost(staged, cursor.sweep or ""):
        return _sweep_again(context, cursor)
    pending = _progress(context, cursor, staged, names)
    if pending is not None:
        return pending
    if FINISH_RUN in cursor.runs:
        context.log.info(f"sweep {cursor.sweep} finished")
        return SyncCursor(day=cursor.day)
    if SWEEP_RUN in cursor.runs and _lost(staged, cursor.sweep or ""):
        return _sweep_again(context, cursor)
    return _next_step(cursor, staged, names)
