"""The command lines as users run them: ``drchrono-assets`` and the real ``dagster asset
materialize`` against the sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.day_window import DayWindow
from drchrono_assets_tests.support.assets import partition_file
from drchrono_assets_tests.support.processes import DAGSTER, DRCHRONO_ASSETS, subprocess_env

pytestmark = pytest.mark.processes

DEFINITIONS = "drchrono_assets.definitions"


def run_help(*command: str) -> str:
    done = subprocess.run(
        [DRCHRONO_ASSETS, *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_drchrono_assets_hands_each_command_its_own_arguments() -> None:
    assert all(name in run_help() for name in ("auth", "demo", "ui", "sandbox"))
    assert run_help("auth", "login").startswith("usage: drchrono-assets auth login")
    assert run_help("demo").startswith("usage: drchrono-assets demo")
    assert run_help("ui").startswith("usage: drchrono-assets ui")
    sandbox = run_help("sandbox")
    assert sandbox.startswith("usage: drchrono-assets sandbox") and "--clock ISO" in sandbox


def materialize_cli(env: dict[str, str], *partition_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "drchrono_assets.definitions", "--select", "*",
         *partition_args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_partition_range_of_every_asset_in_one_run(quiet_sandbox, sandbox_env, tmp_path) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    done = materialize_cli(env, "--partition-range", "2024-03-01...2024-03-31")
    assert done.returncode == 0, done.stderr[-3000:]
    march = DayWindow.from_partition_keys(["2024-03-01", "2024-03-31"])
    for spec in RESOURCES:
        for day in march.partition_keys:
            assert partition_file(env["DRCHRONO_DATA_ROOT"], spec.name, day).exists()
    runs = list((Path(env["DAGSTER_HOME"]) / "storage").iterdir())
    assert len([run for run in runs if run.is_dir()]) == 1  # one run for the whole range


def test_unknown_partition_is_refused_and_writes_nothing(sandbox_env, tmp_path) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    done = materialize_cli(env, "--partition", "2023-06-01")
    assert done.returncode != 0
    assert "2023-06-01" in done.stderr + done.stdout
    assert not Path(env["DRCHRONO_DATA_ROOT"]).exists()


def test_missing_credentials_fail_clearly_and_keep_written_data(sandbox_env, tmp_path) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    assert materialize_cli(env, "--partition", "2024-03-05").returncode == 0
    written = partition_file(env["DRCHRONO_DATA_ROOT"], "appointments", "2024-03-05")
    before = written.read_bytes()
    del env["DRCHRONO_CLIENT_ID"], env["DRCHRONO_CLIENT_SECRET"]
    done = materialize_cli(env, "--partition", "2024-03-05")
    assert done.returncode != 0
    assert "DRCHRONO_CLIENT_ID and DRCHRONO_CLIENT_SECRET" in done.stderr + done.stdout
    assert written.read_bytes() == before


def test_sensor_preview_shows_the_sweep_run_and_changes_nothing(sandbox_env, tmp_path) -> None:
    """``dagster sensor preview`` evaluates the sensor as a tick would: it shows the run it
    would request (the sweep, with its config) and sends no request, writes no file."""
    env = subprocess_env({**sandbox_env, "DRCHRONO_SYNC_HOUR": "0"}, tmp_path)
    data_root = Path(env["DRCHRONO_DATA_ROOT"])
    preview = [DAGSTER, "sensor", "preview", "drchrono_changes", "-m", DEFINITIONS]
    done = subprocess.run(preview, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "returning run requests for 1 run(s)" in done.stdout, done.stdout
    assert "sweep_changes:" in done.stdout and "yesterday:" in done.stdout
    assert not data_root.exists() or not any(data_root.rglob("*"))
