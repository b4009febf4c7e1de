"""Settings from the environment, and the code location as the Dagster CLI loads it."""

import subprocess
import sys
from pathlib import Path

import pytest

from drchrono_assets import settings
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.resources import DrchronoApiResource

REPO = Path(__file__).resolve().parents[1]


def test_bad_timezone_and_start_date_name_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError, match="DRCHRONO_TIMEZONE='Mars/Olympus_Mons'"):
        settings.timezone()
    monkeypatch.setenv("DRCHRONO_START_DATE", "03/01/2024")
    with pytest.raises(ConfigurationError, match="DRCHRONO_START_DATE='03/01/2024'"):
        settings.start_date()


def test_partitions_follow_the_practice_timezone_and_start_date() -> None:
    probe = (
        "from drchrono_assets.partitions import daily_partitions as p; "
        "print(p.timezone, p.start.date(), p.get_first_partition_key())"
    )
    env = {"DRCHRONO_TIMEZONE": "America/Chicago", "DRCHRONO_START_DATE": "2023-07-01"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["America/Chicago", "2023-07-01", "2023-07-01"]


def test_workspace_loads_in_the_dagster_cli(tmp_path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_bi_database_is_defined_only_for_a_local_data_root() -> None:
    probe = (
        "from drchrono_assets.definitions import defs; "
        "print(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))"
    )
    for root, has_bi in (("data", True), ("s3://bucket/prefix", False)):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", probe],
            env={"DRCHRONO_DATA_ROOT": root, "HOME": "/tmp"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert ("bi_duckdb" in out) is has_bi and "billing_report" in out


def test_request_budget_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_REQUESTS_PER_HOUR", "300")
    monkeypatch.setenv("DRCHRONO_REQUESTS_PER_SECOND", "4")
    api = DrchronoApiResource.from_env()
    assert (api.requests_per_hour, api.requests_per_second) == (300, 4)
