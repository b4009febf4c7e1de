"""The sweep's plan of the days ahead: what was booked before the sweeps began is listed by
date once, 190 days at a time, and only when the sweeps have reached the last known day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from pathlib import Path

import dagster as dg

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sync.staged import StagedChanges, SyncState
from drchrono_assets.sync.sweep import AHEAD_DAYS, SweepConfig, plan_sweep
from drchrono_sandbox import SandboxServer

APPOINTMENTS = tuple(spec for spec in RESOURCES if spec.name == "appointments")
YESTERDAY = dt.date(2024, 3, 1)
STATE = SyncState(
    since="2099-01-01T00:00:00",  # after every record of the frozen sandbox: no change
    last_day="2024-02-29",
    covered_from="2024-01-01",
    finished="2024-02-29T043000-aaaaaa",
    known_ahead=("2024-01-02", YESTERDAY.isoformat()),  # the last known day is yesterday
)


def _plan(state: SyncState, api: DrchronoApiResource, data_root: Path):
    io_manager = HiveParquetIOManager(data_root=str(data_root))
    config = SweepConfig(sweep="2024-03-02T043000-bbbbbb", yesterday=YESTERDAY.isoformat())
    partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    log = logging.getLogger("test")
    plan = plan_sweep(config, state, api.client, io_manager, log, partitions, APPOINTMENTS, 7)
    return plan, StagedChanges.of(io_manager).read(config.sweep, "appointments")


def test_the_next_days_ahead_are_listed_when_the_sweeps_reach_the_last_known(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, tmp_path: Path
) -> None:
    plan, staged = _plan(STATE, api, tmp_path / "data")
    last = YESTERDAY + dt.timedelta(days=AHEAD_DAYS)
    assert plan.known_ahead == ("2024-01-02", last.isoformat())
    assert plan.assembled_from == "2024-03-01"  # the new day is known: assembled
    served = quiet_sandbox.state.practice.current("appointments")
    ahead = {r["id"] for r in served if YESTERDAY.isoformat() < r["scheduled_time"][:10]}
    assert ahead and ahead <= set(staged["id"].to_pylist())  # they wait for their day
    # The change query and one date_range for the 190 days, in pages of 250.
    pages = math.ceil(len(ahead) / 250)
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/appointments"] == 1 + pages


def test_days_already_known_are_not_listed_again(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, tmp_path: Path
) -> None:
    known = ("2024-01-02", "2024-04-01")
    plan, staged = _plan(dataclasses.replace(STATE, known_ahead=known), api, tmp_path / "data")
    assert plan.known_ahead == known and staged.num_rows == 0
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/appointments"] == 1
