"""The sensor that keeps every partition current: one change sweep each morning.

Each morning (from ``SYNC_HOUR`` in the practice's time zone) the sensor asks the API what
changed since the last successful sweep, stages the changed records, and requests one run
per asset and range of dirty days (single-run backfills) that merges them in; yesterday's
partitions are added for every asset (snapshots listed once; appointments re-listed by
``date``); changed records dated later wait for the sweep that can place them. Its cursor,
visible on the sensor's page in the UI, holds the API time the next sweep starts from; it
advances only once every run of a sweep succeeded, and failed runs are requested again, so
no change is ever skipped. ``billing_report`` follows through its automation condition.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zoneinfo
from collections.abc import Callable
from typing import Literal

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.api import DrchronoClient
from drchrono_assets.assets.extraction import fetch
from drchrono_assets.catalog import RESOURCES, ResourceSpec
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.jobs import ingest_job
from drchrono_assets.partitions import daily_partitions
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sync.changes import (
    MERGE_TAG,
    SWEEP_TAG,
    StagedChanges,
    dated_after,
    day_ranges,
    dirty_days,
    local_since,
    newest_versions,
    stored_days,
)

SYNC_HOUR = 4  # practice-local: yesterday is complete, the practice is quiet
DONE = dg.DagsterRunStatus.SUCCESS
STOPPED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

# The clock that decides when a morning has come; tests move it with the sandbox's.
clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
# A run either merges the sweep's staged changes or fetches its days from the API.
RunMode = Literal["merge", "fetch"]


@dataclasses.dataclass
class SyncCursor:
    """What the sensor remembers between ticks (its cursor, as JSON)."""

    since: str | None = None  # practice-local time the next sweep asks changes since
    day: str | None = None  # practice day of the last sweep: one sweep per morning
    sweep: str | None = None  # the sweep whose runs are not all done yet
    until: str | None = None  # that sweep's API time: ``since`` once its runs succeeded
    runs: dict[str, int] = dataclasses.field(default_factory=dict)  # run key -> attempts

    @classmethod
    def from_json(cls, text: str | None) -> SyncCursor:
        return cls(**json.loads(text)) if text else cls()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _run_key(key: str, attempt: int) -> str:
    return key if attempt == 1 else f"{key}#{attempt}"


def _statuses(instance: dg.DagsterInstance, cursor: SyncCursor) -> dict[str, dg.DagsterRunStatus]:
    """The status of the latest attempt of each run of the pending sweep."""
    records = instance.get_run_records(dg.RunsFilter(tags={SWEEP_TAG: cursor.sweep or ""}))
    by_run_key = {record.dagster_run.tags.get("dagster/run_key"): record for record in records}
    return {
        key: by_run_key[_run_key(key, attempt)].dagster_run.status
        for key, attempt in cursor.runs.items()
        if _run_key(key, attempt) in by_run_key
    }


def _run_request(sweep: str, key: str, attempt: int) -> dg.RunRequest:
    """The run a key names: ``<sweep>|<assets, comma-separated>|merge or fetch|<first>|<last>``."""
    _, assets, mode, first, last = key.split("|")
    window = DayWindow.from_partition_keys([first, last])
    tags = {**window.run_tags, SWEEP_TAG: sweep}
    if mode == "merge":
        tags[MERGE_TAG] = sweep
    return dg.RunRequest(
        run_key=_run_key(key, attempt),
        asset_selection=[dg.AssetKey(asset) for asset in assets.split(",")],
        tags=tags,
    )


def _plan(
    *,
    sweep: str,
    yesterday: str,
    since: str,
    client: DrchronoClient,
    io_manager: HiveParquetIOManager,
    log: dg.DagsterLogManager,
) -> tuple[list[dg.RunRequest], dict[str, int], dt.datetime | None]:
    """Fetch and stage the changes since ``since``; the runs that bring them in."""
    first_day = daily_partitions.get_first_partition_key()
    staged = StagedChanges(io_manager.data_root)
    requests: list[dg.RunRequest] = []
    runs: dict[str, int] = {}
    answered: list[dt.datetime] = []

    def add(assets: list[str], window: DayWindow, mode: RunMode) -> None:
        key = f"{sweep}|{','.join(assets)}|{mode}|{window.first}|{window.last}"
        requests.append(_run_request(sweep, key, 1))
        runs[key] = 1

    # Yesterday's snapshots and listings: one run for every asset fetched whole.
    fetched_whole = [spec.name for spec in RESOURCES if not spec.rule.captures_changes]
    for spec in RESOURCES:
        if not spec.rule.captures_changes:
            continue
        fetched = fetch(spec, client, spec.rule.change_queries(since), log)
        if fetched.answered_at is not None:
            answered.append(fetched.answered_at)
        changes = fetched.table
        waiting = None if _relist_new_day(spec) else staged.waiting(spec.name)
        if waiting is not None:
            changes = newest_versions(spec, waiting, changes)
        staged.write(sweep, spec.name, changes)
        (key,) = spec.primary_key
        stored = stored_days(io_manager, spec, changes[key].combine_chunks())
        days = dirty_days(spec, changes, stored) | {yesterday}
        # Later days are not partitions yet; their records are fetched when they are.
        days = {day for day in days if first_day <= day <= yesterday}
        if _relist_new_day(spec):
            days.discard(yesterday)
            fetched_whole.append(spec.name)
        for window in day_ranges(days):
            add([spec.name], window, "merge")
    add(sorted(fetched_whole), DayWindow.from_partition_keys([yesterday]), "fetch")
    return requests, runs, min(answered, default=None)


def _leave_later_records_waiting(staged: StagedChanges, sweep: str) -> None:
    """Changed records dated after the sweep's last partition (a payment posted ahead of its
    visit) had no partition to go to, and may never change again: the next sweep merges them."""
    yesterday = (dt.date.fromisoformat(sweep) - dt.timedelta(days=1)).isoformat()
    for spec in RESOURCES:
        if spec.rule.captures_changes and not _relist_new_day(spec):
            later = dated_after(spec, staged.read(sweep, spec.name), yesterday)
            staged.leave_waiting(spec.name, later)


def _relist_new_day(spec: ResourceSpec) -> bool:
    # Appointments are booked ahead: a new day's are listed by `date` (one request), since a
    # booking made weeks ago is in no recent change set.
    return "date" in spec.rule.filters


@dg.sensor(
    name="drchrono_changes",
    job=ingest_job,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def drchrono_changes(
    context: dg.SensorEvaluationContext,
    drchrono: DrchronoApiResource,
    parquet_io_manager: dg.ResourceParam[HiveParquetIOManager],
) -> dg.SensorResult | dg.SkipReason:
    """Each morning: what changed since the last sweep, merged into exactly the partitions it
    touches, plus yesterday for every asset; a day nobody touched is never fetched again."""
    cursor = SyncCursor.from_json(context.cursor)
    if cursor.sweep is not None:
        statuses = _statuses(context.instance, cursor)
        if any(statuses.get(key) not in (DONE, *STOPPED) for key in cursor.runs):
            return dg.SkipReason(f"sweep {cursor.sweep}: waiting for its runs")
        failed = [key for key in cursor.runs if statuses[key] in STOPPED]
        if failed:
            for key in failed:
                cursor.runs[key] += 1
            retries = [_run_request(cursor.sweep, key, cursor.runs[key]) for key in failed]
            return dg.SensorResult(run_requests=retries, cursor=cursor.to_json())
        staged = StagedChanges(parquet_io_manager.data_root)
        _leave_later_records_waiting(staged, cursor.sweep)
        staged.remove(cursor.sweep)
        cursor = SyncCursor(since=cursor.until, day=cursor.day)
    now = clock().astimezone(zoneinfo.ZoneInfo(settings.timezone()))
    yesterday = (now.date() - dt.timedelta(days=1)).isoformat()
    if cursor.day == now.date().isoformat() or now.hour < SYNC_HOUR:
        return dg.SensorResult(skip_reason="swept this morning already", cursor=cursor.to_json())
    if yesterday < daily_partitions.get_first_partition_key():
        return dg.SensorResult(skip_reason="before DRCHRONO_START_DATE", cursor=cursor.to_json())
    since = cursor.since or f"{yesterday}T00:00:00"
    sweep = now.date().isoformat()
    requests, runs, answered = _plan(
        sweep=sweep,
        yesterday=yesterday,
        since=since,
        client=drchrono.client,
        io_manager=parquet_io_manager,
        log=context.log,
    )
    until = local_since(answered, settings.timezone()) if answered else since
    cursor = SyncCursor(since=since, day=sweep, sweep=sweep, until=until, runs=runs)
    return dg.SensorResult(run_requests=requests, cursor=cursor.to_json())
