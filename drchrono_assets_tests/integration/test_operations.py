"""Daily operation as an operator lives it: the same evolving practice driven twice through
every sensor and automation condition of the code location, once with every morning going
right and once with what operations bring. Both must end with every partition exact, and the
faults may cost at most 1.3 times the requests of the fault-free run.

The faults: the daemon down three mornings in a row, the API answering 503 to everything for
a whole morning, the sensor's cursor cleared one afternoon after the practice changed
records, a week's backfill by hand between a sweep and its merge runs (not covering the
missed mornings), and a merge run whose worker was killed, left STARTED.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path

import dagster as dg
import pytest

from drchrono_assets.day_window import DayWindow
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets_tests.support.definitions import resource_assets
from drchrono_assets_tests.support.simulation import (
    Morning,
    assert_every_partition_exact,
    days_between,
)
from drchrono_sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.simulation

START = dt.date(2024, 1, 1)
MORNINGS = int(os.environ.get("DRCHRONO_OPERATIONS_MORNINGS", "45"))
DAEMON_DOWN = (6, 7, 8)
OUTAGE = 13
CURSOR_CLEARED = 18
BACKFILL = 24  # the week before yesterday: days 16 to 22, after the missed mornings
KILLED = 30
# The daemon ticks the sensor every two minutes; a morning here is 5 ticks 10 minutes apart
# (the last morning's at one instant, so the API's state at the end is the last sweep's).
TICKS, TICKS_APART = 5, dt.timedelta(minutes=10)
SENSOR = "drchrono_changes"


def _backfill_between_sweep_and_merges(morning: Morning, yesterday: dt.date) -> None:
    """The sweep run, then an operator's single-run backfill of every ingest asset over the
    week before yesterday, after the practice changed; the merge runs follow in ``run``."""
    for request in morning.tick(SENSOR).run_requests:
        morning.launch(request)
    morning.sandbox.state.clock.advance(dt.timedelta(hours=3))
    week = DayWindow(yesterday - dt.timedelta(days=7), yesterday - dt.timedelta(days=1))
    assert morning.execute([asset.key for asset in resource_assets], week.run_tags)


def _kill_one_merge_run(morning: Morning) -> None:
    """The sweep run, then its merge runs, one of which is left STARTED by a killed worker."""
    for request in morning.tick(SENSOR).run_requests:
        morning.launch(request)
    killed, *others = morning.tick(SENSOR).run_requests
    tags = {**killed.tags, "dagster/run_key": killed.run_key}
    run = dg.DagsterRun(job_name="drchrono_ingest", status=dg.DagsterRunStatus.STARTED, tags=tags)
    morning.instance.run_storage.add_run(run)
    for request in others:
        morning.launch(request)


def simulate(root: Path, monkeypatch: pytest.MonkeyPatch, *, faults: bool) -> tuple[int, Morning]:
    """Drive ``MORNINGS`` mornings; the API requests they cost and the last state checked."""
    zone = zoneinfo.ZoneInfo("UTC")
    first_morning = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), zone)
    config = SandboxConfig(
        start=START, end=START + dt.timedelta(days=MORNINGS), clock=first_morning
    )
    with SandboxServer(config) as sandbox:
        morning = Morning(sandbox, root)
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        clock = sandbox.state.clock
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            clock.set(now)
            if faults and number in DAEMON_DOWN:
                continue
            if faults and number == OUTAGE:
                sandbox.state.faults.add(status=503, times=10**9)
            if faults and number == BACKFILL:
                _backfill_between_sweep_and_merges(morning, now.date() - dt.timedelta(days=1))
            if faults and number == KILLED:
                _kill_one_merge_run(morning)
            last_morning = number == MORNINGS - 1
            morning.run(TICKS, dt.timedelta() if last_morning else TICKS_APART)
            sandbox.state.faults.clear()
            if faults and number == CURSOR_CLEARED:
                clock.set(now.replace(hour=15))  # the practice changed records since 04:30
                morning.sensor_cursors[SENSOR] = None
                morning.run(TICKS, TICKS_APART)
        requests = sandbox.state.stats.snapshot()["api_requests"]
        last = now.date() - dt.timedelta(days=1)
        assert_every_partition_exact(morning, days_between(START, last))
        state = StagedChanges(str(morning.data_root)).state()
        assert state is not None and state.last_day == last.isoformat()
    return requests, morning


@pytest.mark.timeout(1800)
def test_operations_lose_no_record_and_cost_at_most_a_third_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calm_requests, calm = simulate(tmp_path / "calm", monkeypatch, faults=False)
    assert calm.failed_runs == 0 and not any(calm.tick_errors)
    requests, rough = simulate(tmp_path / "rough", monkeypatch, faults=True)
    assert rough.failed_runs > 0  # the outage's sweep runs
    repeated = [
        error
        for error, previous in zip(rough.tick_errors[1:], rough.tick_errors, strict=False)
        if error and error == previous
    ]
    assert not repeated  # the sensor never raises twice in a row for the same reason
    print(
        f"\nrequests: fault-free {calm_requests}, operations {requests} "
        f"({requests / calm_requests:.2f}x); longest sensor tick {rough.longest_tick:.2f} s "
        f"(fault-free {calm.longest_tick:.2f} s)"
    )
    assert requests <= 1.3 * calm_requests
