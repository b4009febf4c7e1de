"""Daily operation as it happens: simulated mornings against a sandbox whose practice evolves.

Every sensor of the code location is evaluated each morning (keeping its cursor), the runs it
requests are executed in-process, then the automation conditions are evaluated and what
they request is executed too, exactly as the daemons would. At the end every partition of
every dated asset and of ``billing_report`` must equal what the API serves that morning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets_tests.assets_support import (
    assert_partition_matches,
    partition_file,
    read_partition,
)
from drchrono_assets_tests.simulation import (
    Morning,
    assert_dated_partitions_exact,
    assert_every_partition_exact,
    days_between,
    incremental_floor,
    records_by_day,
)
from drchrono_sandbox import SandboxConfig, SandboxServer

TIMEZONE = "UTC"
START = dt.date(2024, 1, 1)
MORNINGS = int(os.environ.get("DRCHRONO_SIMULATED_MORNINGS", "90"))


@pytest.mark.timeout(1800)
def test_ninety_mornings_keep_every_partition_exact(tmp_path, monkeypatch) -> None:
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), zone)
    with SandboxServer(
        SandboxConfig(start=START, end=START + dt.timedelta(days=MORNINGS), clock=first_morning)
    ) as sandbox:
        morning = Morning(sandbox, tmp_path)
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        floor = 0
        previous = dt.datetime.combine(START, dt.time(), zone)
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            morning.run()
            floor += incremental_floor(sandbox, previous, now)
            previous = now
        requests = sandbox.state.stats.snapshot()["api_requests"]
        last = now.date() - dt.timedelta(days=1)
        billed_recurring = assert_every_partition_exact(morning, days_between(START, last))
        assert billed_recurring > 0  # visits found by doctor, start time and office
        assert morning.failed_runs == 0 and not any(morning.tick_errors)
        # What follows billing by automation was rebuilt after its last update.
        latest = {
            name: morning.instance.get_latest_materialization_event(dg.AssetKey(name)).timestamp
            for name in ("billing_report", "ar_aging", "bi_duckdb")
        }
        assert latest["ar_aging"] > latest["billing_report"]
        assert latest["bi_duckdb"] > latest["billing_report"]
    print(f"\nrequests {requests}, floor {floor}")
    assert requests <= 1.2 * floor


@dataclasses.dataclass
class AfterFirstMorning:
    """Day 10 of the evolving practice, its morning swept and its runs done."""

    sandbox: SandboxServer
    morning: Morning
    at: dt.datetime


@pytest.fixture
def after_first_morning(tmp_path, monkeypatch) -> Iterator[AfterFirstMorning]:
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=10), dt.time(4, 30), zone)
    with SandboxServer(
        SandboxConfig(start=START, end=START + dt.timedelta(days=20), clock=first_morning)
    ) as sandbox:
        morning = Morning(sandbox, tmp_path)
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        morning.run()
        yield AfterFirstMorning(sandbox, morning, first_morning)


def test_a_failed_run_is_requested_again_later_and_the_sweep_waits_for_it(
    after_first_morning: AfterFirstMorning, monkeypatch
) -> None:
    from drchrono_assets.assets import ingest
    from drchrono_assets.source.changes import merge_changes

    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    broken = {"merges": 0}

    def failing_merge(*args: Any, **kwargs: Any) -> Any:
        broken["merges"] += 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "merge_changes", failing_merge)
    staged = StagedChanges(str(morning.data_root))
    before = staged.state()
    for request in morning.tick("drchrono_changes").run_requests:  # the sweep run
        assert morning.launch(request)
    merges = morning.tick("drchrono_changes").run_requests
    assert not all([morning.launch(request) for request in merges])
    assert broken["merges"] > 0
    assert not morning.tick("drchrono_changes").run_requests  # not at once: backoff
    sandbox.state.clock.advance(sync_sensor.FIRST_RETRY)
    retried = morning.tick("drchrono_changes").run_requests
    assert retried and all(request.run_key.endswith("#2") for request in retried)
    assert staged.state() == before  # nothing skipped while runs failed
    monkeypatch.setattr(ingest, "merge_changes", merge_changes)
    assert all([morning.launch(request) for request in retried])
    (finish,) = morning.tick("drchrono_changes").run_requests
    assert morning.launch(finish)
    morning.tick("drchrono_changes")
    cursor = sync_sensor.SyncCursor.from_json(morning.sensor_cursors["drchrono_changes"])
    assert cursor.sweep is None and staged.state().since > before.since


def test_a_change_dated_after_yesterday_is_merged_when_its_day_comes(
    after_first_morning: AfterFirstMorning,
) -> None:
    """A document uploaded today for tomorrow's visit is in today's change set only: it waits
    for the sweep whose yesterday it belongs to, though it never changes again."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    first_morning = after_first_morning.at
    sandbox.state.clock.advance(dt.timedelta(hours=2))
    visit_day = first_morning.date() + dt.timedelta(days=1)
    practice = sandbox.state.practice
    some = practice.current("documents")[0]
    document = practice.create_document(
        doctor=some["doctor"],
        patient=some["patient"],
        description="Intake form",
        day=visit_day,
        metatags=[],
        filename="intake.pdf",
        content=b"%PDF-1.4",
        content_type="application/pdf",
    )
    stored_ids: list[set[int]] = []
    for number in (1, 2):
        sandbox.state.clock.set(first_morning + dt.timedelta(days=number))
        morning.run()
        path = partition_file(morning.data_root, "documents", visit_day.isoformat())
        stored_ids.append(set(pq.read_table(path)["id"].to_pylist()) if path.exists() else set())
    assert document["id"] not in stored_ids[0]  # its day was no partition yet
    assert document["id"] in stored_ids[1]
    spec = next(spec for spec in RESOURCES if spec.name == "documents")
    table = read_partition(morning.data_root, "documents", visit_day.isoformat())
    current = records_by_day("documents", practice.current("documents"))
    assert_partition_matches(table, spec, current[visit_day.isoformat()])


def _sweep_runs_succeed(morning: Morning) -> None:
    """The sweep run, then its merge runs, as the daemon's ticks would launch them."""
    for _ in range(2):
        for request in morning.tick("drchrono_changes").run_requests:
            assert morning.launch(request)


def test_a_finish_run_that_dies_halfway_is_finished_by_its_next_attempt(
    after_first_morning: AfterFirstMorning, monkeypatch
) -> None:
    """Killed after the change set was removed but before the run ended: the finish run is
    requested again after a delay and completes (no FileNotFoundError); the morning after
    sweeps from where this one ended."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    _sweep_runs_succeed(morning)
    staged = StagedChanges(str(morning.data_root))
    remove = StagedChanges.remove_through

    def remove_then_die(self: StagedChanges, sweep: str) -> None:
        remove(self, sweep)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(StagedChanges, "remove_through", remove_then_die)
    (finish,) = morning.tick("drchrono_changes").run_requests
    assert finish.job_name == "drchrono_finish_sweep" and not morning.launch(finish)
    monkeypatch.setattr(StagedChanges, "remove_through", remove)
    assert not morning.tick("drchrono_changes").run_requests  # backoff
    sandbox.state.clock.advance(sync_sensor.FIRST_RETRY)
    (again,) = morning.tick("drchrono_changes").run_requests
    assert again.run_key.endswith("finish#2") and morning.launch(again)
    finished = morning.tick("drchrono_changes")
    assert not any(morning.tick_errors) and not finished.run_requests
    cursor = sync_sensor.SyncCursor.from_json(morning.sensor_cursors["drchrono_changes"])
    assert cursor.sweep is None and staged.state().last_day == (
        after_first_morning.at.date().isoformat()
    )
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=2))
    ticks = len(morning.tick_errors)
    morning.run()
    assert not any(morning.tick_errors[ticks:]) and morning.failed_runs == 1


def test_missed_mornings_are_caught_up_and_a_day_without_a_file_is_fetched_not_merged(
    after_first_morning: AfterFirstMorning,
) -> None:
    """Three mornings without a daemon: the next sweep lists every day since; and a stored
    day whose file is gone is fetched whole when a change dirties it, never merged into
    nothing (which would leave only the changed record)."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    old_day = (after_first_morning.at.date() - dt.timedelta(days=1)).isoformat()
    partition_file(morning.data_root, "appointments", old_day).unlink()
    practice = sandbox.state.practice
    old = records_by_day("appointments", practice.current("appointments"))[old_day]
    assert len(old) > 1
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=4))
    practice.touch("appointments", old[0]["id"])
    morning.run()
    assert morning.failed_runs == 0
    first = after_first_morning.at.date() - dt.timedelta(days=1)
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range(5)]
    assert_dated_partitions_exact(morning, days)
    for name in ("doctors", "patients"):  # the snapshots of the missed days too
        assert all(partition_file(morning.data_root, name, day).exists() for day in days)


def test_a_cursor_cleared_the_afternoon_after_a_sweep_sweeps_again_without_losing_a_change(
    after_first_morning: AfterFirstMorning,
) -> None:
    """Run keys are unique per sweep: the daemon skips none of the new sweep's runs, and the
    new sweep starts where the morning's ended (the data root's state), not from yesterday."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at.replace(hour=15))
    morning.sensor_cursors["drchrono_changes"] = None
    morning.run()
    keys = [
        run.tags["dagster/run_key"]
        for run in morning.instance.get_runs()
        if "dagster/run_key" in run.tags and "drchrono/sweep" in run.tags
    ]
    assert len(keys) == len(set(keys)) and {key[:17] for key in keys} == {
        after_first_morning.at.strftime("%Y-%m-%dT%H%M%S"),
        after_first_morning.at.replace(hour=15).strftime("%Y-%m-%dT%H%M%S"),
    }
    first = after_first_morning.at.date() - dt.timedelta(days=1)
    assert_dated_partitions_exact(morning, [first.isoformat()])
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    morning.run()
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range(2)]
    assert_dated_partitions_exact(morning, days)
    assert morning.failed_runs == 0


def test_missing_and_stuck_runs_are_requested_again_and_failures_back_off_to_a_cap(
    after_first_morning: AfterFirstMorning, monkeypatch
) -> None:
    from drchrono_assets.assets import ingest

    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    clock = sandbox.state.clock
    clock.set(after_first_morning.at + dt.timedelta(days=1))
    for request in morning.tick("drchrono_changes").run_requests:
        assert morning.launch(request)
    merges = morning.tick("drchrono_changes").run_requests
    deleted, stuck, *others = merges
    morning.launch(deleted)
    morning.instance.delete_run(
        morning.instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": deleted.run_key}))[
            0
        ].run_id
    )
    started = dg.DagsterRun(
        job_name="drchrono_ingest",
        status=dg.DagsterRunStatus.STARTED,
        tags={**stuck.tags, "dagster/run_key": stuck.run_key},
    )
    morning.instance.run_storage.add_run(started)  # its worker was killed: STARTED for good
    assert all(morning.launch(request) for request in others)
    clock.advance(sync_sensor.MISSING_AFTER + dt.timedelta(minutes=1))
    assert morning.tick("drchrono_changes").run_requests == []  # noted; retried after a delay
    clock.advance(sync_sensor.FIRST_RETRY)
    retried = morning.tick("drchrono_changes").run_requests
    assert [request.run_key for request in retried] == [deleted.run_key[:-2] + "#2"]
    assert morning.launch(retried[0])
    clock.advance(sync_sensor.RUN_DEADLINE)
    morning.tick("drchrono_changes")
    clock.advance(sync_sensor.FIRST_RETRY)
    retried = morning.tick("drchrono_changes").run_requests
    assert [request.run_key for request in retried] == [stuck.run_key[:-2] + "#2"]
    # From now on that run always fails: attempts come ever further apart, then every 6 h.
    monkeypatch.setattr(ingest, "merge_changes", lambda *args, **kwargs: 1 / 0)
    attempts = [clock.now()]
    assert not morning.launch(retried[0])
    for _ in range(int(dt.timedelta(days=2) / dt.timedelta(minutes=5))):
        clock.advance(dt.timedelta(minutes=5))
        for request in morning.tick("drchrono_changes").run_requests:
            attempts.append(clock.now())
            assert not morning.launch(request)
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps == sorted(gaps) and gaps[-1] <= sync_sensor.LONGEST_RETRY + dt.timedelta(minutes=5)
    assert gaps[-2] >= sync_sensor.LONGEST_RETRY and 8 <= len(attempts) <= 16
    assert not any(morning.tick_errors)


def test_a_tick_writes_nothing_and_each_request_says_what_it_runs(
    after_first_morning: AfterFirstMorning,
) -> None:
    """A tick (and so ``dagster sensor preview``) changes nothing but its cursor: the finish
    is a run. Each request's config names what it runs: the sweep, the assets it merges."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))

    def files() -> dict[Path, int]:
        return {path: path.stat().st_mtime_ns for path in morning.data_root.rglob("*")}

    jobs = []
    for _ in range(4):
        before = files()
        requests = morning.tick("drchrono_changes").run_requests
        assert files() == before
        for request in requests:
            config = request.run_config
            ops = (config if isinstance(config, dict) else config.to_config_dict())["ops"]
            sweep = request.tags[sync_sensor.SWEEP_TAG]
            if request.job_name == "drchrono_ingest":
                assert set(ops) == {key.to_user_string() for key in request.asset_selection}
                merges = {op["config"].get("merge_sweep") for op in ops.values()}
                assert merges in ({sweep}, {None})  # a merge, or a fetch of new days
            else:
                assert next(iter(ops.values()))["config"]["sweep"] == sweep
            jobs.append(request.job_name)
            assert morning.launch(request)
    assert jobs[0] == "drchrono_sweep" and jobs[-1] == "drchrono_finish_sweep"
    assert set(jobs[1:-1]) == {"drchrono_ingest"}
    assert not morning.tick("drchrono_changes").run_requests  # finished: until tomorrow


def test_the_sensor_sends_no_request_and_an_outage_is_a_failed_sweep_run_caught_up_later(
    after_first_morning: AfterFirstMorning,
) -> None:
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    sandbox.state.faults.add(status=503, times=1_000_000)
    for _ in range(4):
        sent = sandbox.state.stats.snapshot()["api_requests"]
        result = morning.tick("drchrono_changes")
        assert sandbox.state.stats.snapshot()["api_requests"] == sent
        for request in result.run_requests:
            assert not morning.launch(request)  # the sweep run: the API cannot answer
        sandbox.state.clock.advance(dt.timedelta(minutes=15))
    assert not any(morning.tick_errors) and morning.longest_tick < 5
    sandbox.state.faults.clear()
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=2))
    morning.failed_runs = 0
    morning.run()
    morning.run()  # the retried sweep finished; this morning's follows
    first = after_first_morning.at.date()
    assert_dated_partitions_exact(morning, days_between(first, first + dt.timedelta(days=1)))
    assert morning.failed_runs == 0


def test_a_merge_tag_is_a_sweep_id_never_a_path() -> None:
    staged = StagedChanges("/tmp/data")
    with pytest.raises(ValueError, match="not a sweep id"):
        staged.path("../../etc", "passwd")
    with pytest.raises(ValueError, match="not a sweep id"):
        staged.path("2024-03-10T043000-abc/../..", "passwd")
    sweep = StagedChanges.new_sweep_id(dt.datetime(2024, 3, 10, 4, 30))
    assert sweep.startswith("2024-03-10T043000-")
    assert staged.path(sweep, "documents.parquet").name == "documents.parquet"


def test_a_sweep_whose_staged_changes_are_gone_is_swept_again(
    after_first_morning: AfterFirstMorning,
) -> None:
    """Someone removed ``.changes/<sweep>`` while its merge runs waited: the sensor starts a
    new sweep from where the last finished one ended, never a tick that fails for good."""
    import shutil

    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    for request in morning.tick("drchrono_changes").run_requests:
        assert morning.launch(request)
    merges = morning.tick("drchrono_changes").run_requests
    sweep = merges[0].tags[sync_sensor.SWEEP_TAG]
    shutil.rmtree(StagedChanges(str(morning.data_root)).folder / sweep)
    again = morning.tick("drchrono_changes").run_requests
    assert [request.job_name for request in again] == ["drchrono_sweep"]
    assert again[0].tags[sync_sensor.SWEEP_TAG] != sweep
    for request in again:
        assert morning.launch(request)
    morning.run()
    assert not any(morning.tick_errors) and morning.failed_runs == 0
    first = after_first_morning.at.date() - dt.timedelta(days=1)
    assert_dated_partitions_exact(morning, days_between(first, first + dt.timedelta(days=1)))
