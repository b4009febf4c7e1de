"""The sweep's plan of the days ahead: what was booked before the sweeps began is listed by
date once, 190 days at a time, and only when the sweeps have reached the last known day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.source.extraction import extract
from drchrono_assets.sync.staged import StagedChanges, SyncState
from drchrono_assets.sync.sweep import AHEAD_DAYS, SweepConfig, plan_sweep
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token
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


PATIENTS = tuple(spec for spec in RESOURCES if spec.name == "patients")


def _sweep_patients(
    api: DrchronoApiResource, data_root: Path, checked: str, before_sweep: Callable[[], None]
) -> tuple[dict[str, tuple[str, ...]], int]:
    """A sweep of patients after a snapshot of the day before yesterday was stored, then
    ``before_sweep`` ran; patients last checked for deletions on ``checked``. Its runs (mode
    -> assets) and its requests."""
    io_manager = HiveParquetIOManager(data_root=str(data_root))
    day = DayWindow.from_partition_keys(["2024-02-29"])
    stored = extract(PATIENTS[0], api.client, day, logging.getLogger("test"))
    io_manager.dataset(dg.AssetKey("patients")).write(stored)
    before_sweep()
    before = api.client.requests_used
    config = SweepConfig(sweep="2024-03-02T043000-cccccc", yesterday=YESTERDAY.isoformat())
    state = dataclasses.replace(STATE, deletions_checked=checked)
    partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    log = logging.getLogger("test")
    plan = plan_sweep(config, state, api.client, io_manager, log, partitions, PATIENTS, 7)
    due = checked <= (YESTERDAY - dt.timedelta(days=7)).isoformat()
    assert plan.deletions_checked == (YESTERDAY.isoformat() if due else checked)
    return {run.mode: run.assets for run in plan.runs}, api.client.requests_used - before


def test_patients_are_merged_and_counted_only_when_the_check_is_due(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, tmp_path: Path
) -> None:
    # Checked six days ago: the changes alone (one request), merged.
    merged = {"merge": ("patients",)}
    assert _sweep_patients(api, tmp_path / "a", "2024-02-24", lambda: None) == (merged, 1)
    # Checked seven days ago: and the count, which agrees.
    assert _sweep_patients(api, tmp_path / "b", "2024-02-23", lambda: None) == (merged, 2)


def test_a_chart_deleted_in_drchrono_is_found_by_the_count(tmp_path: Path) -> None:
    """The count differs from the snapshot's: patients are listed whole by their run."""
    with SandboxServer() as sandbox:
        env = {
            **sandbox.env(),
            "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(sandbox),
            "DRCHRONO_TOKEN_STORE": str(tmp_path / "secrets" / "tokens.json"),
        }
        practice = sandbox.state.practice
        runs = _sweep_patients(
            api_for(env),
            tmp_path / "data",
            "2024-02-23",
            lambda: practice.delete("patients", practice.patients[-1]["id"]),
        )
    assert runs == ({"fetch": ("patients",)}, 2)
