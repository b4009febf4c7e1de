"""Many practices in one code location: each ``DrchronoPractice`` under ``defs/`` brings its
own keys, names, partitions, resources, token chain and data root, beside the practice the
``DRCHRONO_*`` variables configure, whose keys stay unprefixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest

from drchrono_assets.api import ClientSettings
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.practice import PracticeDefinitions
from drchrono_assets.settings import PracticeSettings
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets.sync.sweep import SweepConfig
from drchrono_assets_tests.support.projects import write_project
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token

SWEEP = "2024-03-06T043000-a1b2c3"
CLINIC_A = {"name": "clinic_a", "data_root": "/srv/data/clinic_a", "start_date": "2024-01-01"}
CLINIC_B = {
    "name": "clinic_b",
    "application": "billing_co",
    "data_root": "s3://bucket/clinic_b",
    "start_date": "2024-03-01",
    "timezone": "America/Chicago",
    "sync_hour": 5,
}


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **practices: Any) -> dg.Definitions:
    """The definitions of a project of ``practices`` (folder name -> attributes or None)."""
    project, _ = write_project(tmp_path, practices)
    monkeypatch.syspath_prepend(str(project))
    return dg.load_from_defs_folder(path_within_project=project)


def test_practices_load_side_by_side_each_under_its_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_CLIENT_SECRET", "s3cr3t-of-the-application")
    defs = load(tmp_path, monkeypatch, clinic_a=CLINIC_A, clinic_b=CLINIC_B, practice=None)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    for prefix in ("clinic_a/", "clinic_b/", ""):
        for name in ("appointments", "transactions", "billing_report", "ar_aging"):
            assert prefix + name in keys
    assert "clinic_a/bi_duckdb" in keys and "clinic_b/bi_duckdb" not in keys  # S3: no file
    assert {sensor.name for sensor in defs.sensors or []} == {
        f"{prefix}{name}"
        for prefix in ("clinic_a__", "clinic_b__", "")
        for name in ("drchrono_changes", "drchrono_freshness")
    }
    report = defs.resolve_assets_def(dg.AssetKey(["clinic_b", "billing_report"]))
    assert {key.to_user_string() for key in report.dependency_keys} == {
        "clinic_b/appointments",
        "clinic_b/transactions",
        "clinic_b/doctors",
    }
    partitions = report.partitions_def
    assert (partitions.start.date().isoformat(), partitions.timezone) == (
        "2024-03-01",
        "America/Chicago",
    )
    # Each practice its own resources; a secret only by the name of its variable.
    resources = defs.resources or {}
    api = resources["clinic_b__drchrono"]
    assert (api.practice, api.data_root) == ("clinic_b", "s3://bucket/clinic_b")
    assert isinstance(api.client_secret, dg.EnvVar)
    assert api.client_secret.env_var_name == "DRCHRONO_CLIENT_SECRET"
    assert "s3cr3t" not in repr(resources) + str(api.client_settings)
    assert resources["clinic_a__parquet_io_manager"].data_root == "/srv/data/clinic_a"
    assert {"drchrono", "parquet_io_manager"} <= set(resources)  # the environment's practice


def test_steps_that_call_the_api_claim_their_application_pool(tmp_path, monkeypatch) -> None:
    defs = load(tmp_path, monkeypatch, clinic_a=CLINIC_A, clinic_b=CLINIC_B, practice=None)
    pools = {
        key.to_user_string(): defs.resolve_assets_def(key).op.pool
        for key in (dg.AssetKey(["clinic_a", "patients"]), dg.AssetKey(["clinic_b", "patients"]))
    }
    assert pools == {
        "clinic_a/patients": "drchrono_api",
        "clinic_b/patients": "drchrono_api__billing_co",
    }
    assert defs.resolve_assets_def("patients").op.pool == "drchrono_api"


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "IANA time zone"),
        ({"start_date": "2024-02-30"}, "not a valid date"),
        ({"sync_hour": 24}, "sync_hour"),
        ({"deletion_check_days": 0}, "deletion_check_days"),
        ({"name": "Clinic A"}, "lowercase letters"),
        ({"base_url": "http://drchrono.example"}, "https"),
        ({"resources": ["appointments", "doctors", "transactions", "patient"]}, "no resource"),
        ({"resources": ["appointments", "doctors"]}, "transactions missing"),
    ],
)
def test_a_bad_attribute_is_refused_naming_it(tmp_path, monkeypatch, attributes, named) -> None:
    with pytest.raises(Exception) as raised:
        load(tmp_path, monkeypatch, clinic_a={**CLINIC_A, **attributes})
    # Dagster names the component's file; its cause, the attribute and what is wrong.
    assert "clinic_a" in str(raised.value)
    cause = raised.value.__cause__
    assert cause is not None and named in str(cause)
    assert next(iter(attributes)) in str(cause)


def test_each_practice_has_its_own_token_chain_and_one_ledger_per_application(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    store = str(tmp_path / "secrets" / "tokens.json")
    settings = {name: ClientSettings(client_id="app", practice=name) for name in ("a", "b")}
    assert settings["a"].application_key() == settings["b"].application_key()
    assert settings["a"].token_key() != settings["b"].token_key()
    assert settings["a"].token_location(store) == str(tmp_path / "secrets" / "tokens.a.json")
    database = "postgresql+psycopg2://u@h/db"
    assert settings["a"].token_location(database) == database  # keyed by token_key there

    for practice in ("clinic_a", "clinic_b"):
        # Each practice's own grant (auth login of that practice), rotated on its own.
        grant = fresh_refresh_token(quiet_sandbox)
        api = api_for(sandbox_env, token_store=store, practice=practice, refresh_token=grant)
        assert api.client.list_records("/api/doctors")
        api.client.close()
    secrets = tmp_path / "secrets"
    assert {path.name for path in secrets.iterdir() if not path.name.endswith(".lock")} == {
        "tokens.clinic_a.json",
        "tokens.clinic_b.json",
        "tokens.requests.json",  # the application's ledger: both practices' requests
    }


def test_a_named_practice_materializes_into_its_own_data_root(sandbox_env, tmp_path) -> None:
    root = tmp_path / "clinic_a"
    practice = PracticeDefinitions.build(PracticeSettings(name="clinic_a", data_root=str(root)))
    day = "2024-03-05"
    result = dg.materialize(
        [*practice.resource_assets, practice.billing_report, *practice.billing_checks],
        partition_key=day,
        resources={
            "clinic_a__drchrono": api_for(sandbox_env, practice="clinic_a"),
            "clinic_a__parquet_io_manager": HiveParquetIOManager(
                data_root=str(root), practice="clinic_a"
            ),
        },
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    for name in ("appointments", "billing_report"):
        stored = pq.read_table(root / name / f"date={day}" / "part-0.parquet")
        assert stored.num_rows > 0, name
    assert not (root / "clinic_a").exists()  # the root is the practice's own


def test_a_practice_not_connected_fails_its_runs_naming_it_and_the_others_run(
    sandbox_env, tmp_path
) -> None:
    store = str(tmp_path / "secrets" / "tokens.json")
    results = {}
    for name, grant in (("clinic_a", sandbox_env["DRCHRONO_REFRESH_TOKEN"]), ("clinic_b", None)):
        practice = PracticeDefinitions.build(
            PracticeSettings(name=name, data_root=str(tmp_path / name))
        )
        results[name] = dg.materialize(
            [practice.resource_assets[0]],
            partition_key="2024-03-05",
            resources={
                f"{name}__drchrono": api_for(
                    sandbox_env, token_store=store, practice=name, refresh_token=grant
                ),
                f"{name}__parquet_io_manager": practice.io_manager(),
            },
            raise_on_error=False,
        )
    assert results["clinic_a"].success
    assert not results["clinic_b"].success
    (failure,) = [event for event in results["clinic_b"].all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert (
        "practice clinic_b is not connected: run `drchrono-assets auth login clinic_b`" in message
    )


def test_a_practice_ingests_and_sweeps_only_its_resources(quiet_sandbox, sandbox_env, tmp_path):
    chosen = ("appointments", "doctors", "patients", "transactions")
    practice = PracticeDefinitions.build(
        PracticeSettings(name="clinic_a", data_root=str(tmp_path / "a"), resources=chosen)
    )
    defs = practice.definitions(api_for(sandbox_env, practice="clinic_a"))
    ingested = {asset.key.path[-1] for asset in practice.resource_assets}
    assert ingested == set(chosen)
    assert dg.AssetKey(["clinic_a", "documents"]) not in defs.resolve_all_asset_keys()
    sweep = defs.resolve_job_def("clinic_a__drchrono_sweep")
    config = SweepConfig(sweep=SWEEP, yesterday="2024-03-05", since="2024-03-01T00:00:00")
    result = sweep.execute_in_process(
        run_config=dg.RunConfig(ops={"clinic_a__sweep_changes": config})
    )
    assert result.success
    (plan,) = [StagedChanges(str(tmp_path / "a")).plan(SWEEP)]
    planned = {name for run in plan.runs for name in run.assets}
    assert "patients" in planned and planned <= set(chosen)
    asked = {
        path.removeprefix("/api/").strip("/")
        for path in quiet_sandbox.state.stats.snapshot()["by_path"]
    }
    # Documents would be asked for their changes with every resource; not so without them.
    assert {"appointments", "transactions"} <= asked and "documents" not in asked
