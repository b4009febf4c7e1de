"""Every asset materialized against the sandbox, its Parquet checked against what was served."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import ConfigurationError, MalformedPageError, SchemaChangedError
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.source.versions import VERSION_KEY
from drchrono_assets_tests.support.assets import (
    SPECS,
    assert_partition_matches,
    materialize,
    partition_file,
    read_partition,
    served,
    unversioned,
)
from drchrono_assets_tests.support.definitions import resource_assets
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxConfig, SandboxServer

MARCH = DayWindow(dt.date(2024, 3, 1), dt.date(2024, 3, 31))


def pages(rows: int) -> int:
    """Requests a query costs at the largest page size."""
    return max(1, math.ceil(rows / 250))


def test_every_asset_for_one_day(quiet_sandbox, dagster_resources, sandbox_env) -> None:
    result = materialize(dagster_resources, "2024-03-05")
    assert result.success
    root = sandbox_env["DRCHRONO_DATA_ROOT"]
    for spec in RESOURCES:
        table = read_partition(root, spec.name, "2024-03-05")
        assert VERSION_KEY in table.schema.metadata, spec.name
        assert unversioned(table.schema).equals(spec.schema, check_metadata=True), spec.name
        assert_partition_matches(table, spec, served(quiet_sandbox, spec.name, "2024-03-05"))
    assert read_partition(root, "appointments", "2024-03-05").num_rows > 20
    assert read_partition(root, "transactions", "2024-03-05").num_rows > 10


def test_a_month_in_one_run_costs_rows_over_page_size(
    quiet_sandbox, dagster_resources, sandbox_env
) -> None:
    result = materialize(dagster_resources, "2024-03-01", "2024-03-31")
    assert result.success
    # Each asset's step ran once for the whole month.
    assert len(result.get_step_success_events()) == len(RESOURCES)
    materialized = result.get_asset_materialization_events()
    assert len(materialized) == len(RESOURCES) * 31

    root = sandbox_env["DRCHRONO_DATA_ROOT"]
    for spec in RESOURCES:
        for day in MARCH.partition_keys:
            table = read_partition(root, spec.name, day)
            assert unversioned(table.schema).equals(spec.schema, check_metadata=True), day
            assert_partition_matches(table, spec, served(quiet_sandbox, spec.name, day))

    practice = quiet_sandbox.state.practice
    by_path = quiet_sandbox.state.stats.snapshot()["by_path"]
    march_appointments = sum(
        len(served(quiet_sandbox, "appointments", d)) for d in MARCH.partition_keys
    )
    # One date_range query for the month, not one per day.
    assert by_path["/api/appointments"] == pages(march_appointments)
    # Snapshots are listed once for the whole range (doctors once more for the fan-out).
    for name in ("patients", "offices", "users", "appointment_profiles", "reminder_profiles"):
        assert by_path[f"/api/{name}"] == pages(len(getattr(practice, name))), name
    assert by_path["/api/doctors"] == 2
    # One since-sweep per doctor: at most the pages of everything since March 1.
    later = [t for t in practice.transactions if t["date"] >= "2024-03-01"]
    assert by_path["/api/transactions"] <= pages(len(later)) + len(practice.doctors)
    assert by_path["/api/documents"] <= pages(len(practice.documents))
    # Each asset's metadata counts its own requests (the transactions' include the doctors
    # listing they fan out over; one asset's, the token refresh).
    requests = {
        event.asset_key.path[-1]: event.materialization.metadata["drchrono/requests"].value
        for event in materialized
    }
    own = {spec.name: by_path[f"/api/{spec.name}"] for spec in RESOURCES}
    own["doctors"] -= 1
    own["transactions"] += 1
    surplus = [requests[name] - own[name] for name in own]
    assert set(surplus) <= {0, 1} and sum(surplus) <= by_path["/o/token/"], (requests, own)


def test_empty_day_is_a_zero_row_file_with_the_full_schema(dagster_resources, sandbox_env) -> None:
    sunday = "2024-03-10"
    assert materialize(dagster_resources, sunday).success
    for name in ("appointments", "transactions", "documents"):
        table = read_partition(sandbox_env["DRCHRONO_DATA_ROOT"], name, sunday)
        assert table.num_rows == 0
        assert unversioned(table.schema).equals(SPECS[name].schema, check_metadata=True)


def test_duckdb_reads_all_days_as_one_dataset(
    quiet_sandbox, dagster_resources, sandbox_env
) -> None:
    assert materialize(dagster_resources, "2024-03-08", "2024-03-12").success
    root = sandbox_env["DRCHRONO_DATA_ROOT"]
    days = DayWindow(dt.date(2024, 3, 8), dt.date(2024, 3, 12)).partition_keys
    for name in ("appointments", "transactions", "documents", "patients"):
        counts = dict(
            duckdb.sql(
                f"SELECT strftime(date, '%Y-%m-%d'), count(*) FROM read_parquet("
                f"'{root}/{name}/**/*.parquet', hive_partitioning = true) GROUP BY 1"
            ).fetchall()
        )
        assert counts == {
            day: len(served(quiet_sandbox, name, day))
            for day in days
            if served(quiet_sandbox, name, day)
        }, name


def test_rematerialization_replaces_and_never_duplicates(
    quiet_sandbox, dagster_resources, sandbox_env
) -> None:
    root = Path(sandbox_env["DRCHRONO_DATA_ROOT"])
    for _ in range(2):
        assert materialize(dagster_resources, "2024-03-05", "2024-03-06").success
    assert materialize(dagster_resources, "2024-03-06").success
    for spec in RESOURCES:
        for day in ("2024-03-05", "2024-03-06"):
            path = partition_file(root, spec.name, day)
            assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]
            expected = len(served(quiet_sandbox, spec.name, day))
            assert pq.read_table(path).num_rows == expected


def test_failed_run_loses_nothing_already_written(
    quiet_sandbox, dagster_resources, sandbox_env
) -> None:
    assert materialize(dagster_resources, "2024-03-05").success
    appointments = partition_file(sandbox_env["DRCHRONO_DATA_ROOT"], "appointments", "2024-03-05")
    before = appointments.read_bytes()
    quiet_sandbox.state.faults.add(path_prefix="/api/appointments", times=1, malformed_page=True)
    result = materialize(dagster_resources, "2024-03-05", raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("appointments")
    assert failure is not None and failure.error.cause.cls_name == MalformedPageError.__name__
    assert "GET /api/appointments: page 1 has no 'results' list" in failure.error.cause.message
    assert appointments.read_bytes() == before
    assert [p.name for p in appointments.parent.iterdir()] == ["part-0.parquet"]


@pytest.mark.parametrize("spec", RESOURCES, ids=lambda spec: spec.name)
def test_asset_shows_description_and_column_schema(spec) -> None:
    from drchrono_assets.definitions import defs

    node = defs.resolve_assets_def(spec.name)
    assert spec.path in node.descriptions_by_key[node.key]
    schema = node.metadata_by_key[node.key]["dagster/column_schema"]
    assert [column.name for column in schema.columns] == spec.schema.names


def _ingest_asset(name: str):
    return next(node for node in resource_assets if node.key.path == [name])


def test_field_the_api_stops_sending_fails_the_run_and_keeps_the_files(
    sandbox_env, tmp_path
) -> None:
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    with SandboxServer(SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 8))) as own:
        root = tmp_path / "own-data"
        resources = {
            "drchrono": api_for({**sandbox_env, **own.env()}),
            "parquet_io_manager": HiveParquetIOManager(data_root=str(root)),
        }
        appointments = [_ingest_asset("appointments")]
        assert materialize(resources, days[0], days[-1], assets=appointments).success
        before = {day: partition_file(root, "appointments", day).read_bytes() for day in days}
        practice = own.state.practice
        with practice.lock:
            for record in practice.appointments:
                del record["status"]
            values = {
                value
                for record in practice.appointments
                for value in record.values()
                if isinstance(value, str) and len(value) > 3
            }
        result = materialize(
            resources, days[0], days[-1], assets=appointments, raise_on_error=False
        )
    assert not result.success
    failure = result.failure_data_for_node("appointments")
    assert failure is not None and failure.error.cause.cls_name == SchemaChangedError.__name__
    message = failure.error.cause.message
    assert "drchrono appointments: records no longer carry the API field(s) status." in message
    assert not [value for value in values if value in message]
    assert {day: partition_file(root, "appointments", day).read_bytes() for day in days} == before


def test_unwritable_data_root_fails_the_run_before_any_request(
    quiet_sandbox, dagster_resources, tmp_path
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where the data root's parent folder should be")
    resources = {
        **dagster_resources,
        "parquet_io_manager": HiveParquetIOManager(data_root=str(blocker / "data")),
    }
    quiet_sandbox.state.stats.reset()  # the fixtures' authorization-code grant
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        materialize(resources, "2024-03-05", assets=[_ingest_asset("appointments")])
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert "set DRCHRONO_DATA_ROOT to a folder or bucket this process can write" in str(cause)
    assert quiet_sandbox.state.stats.snapshot()["requests"] == 0
