"""The change sensor when runs fail, die or go missing, when ticks meet an outage, and when a
sweep's staged changes are gone: simulated mornings against an evolving practice, each test
from the end of its first morning (``after_first_morning``)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets_tests.support.simulation import (
    AfterFirstMorning,
    Morning,
    assert_dated_partitions_exact,
    days_between,
)

pytestmark = pytest.mark.simulation


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
