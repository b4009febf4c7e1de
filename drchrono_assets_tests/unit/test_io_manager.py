"""The hive Parquet IO manager on local disk, with small assets of its own (a writer killed
mid-write: integration/test_data_root_processes.py)."""

from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from upath import UPath

from drchrono_assets.io_managers import HiveDataset, HiveParquetIOManager
from drchrono_assets_tests.support.datasets import (
    CHARGES_SCHEMA,
    charge_totals,
    charges,
    run_charges,
)


def test_writes_every_partition_of_a_range_and_reports_each(tmp_path: Path) -> None:
    result = run_charges(tmp_path, "2024-03-01", "2024-03-06")
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["charges"]
    ]
    metadata = {e.partition: e.materialization.metadata for e in events}
    assert sorted(metadata) == [f"2024-03-0{n}" for n in range(1, 7)]
    assert metadata["2024-03-02"]["dagster/row_count"].value == 2
    assert metadata["2024-03-03"]["dagster/row_count"].value == 0
    assert metadata["2024-03-02"]["path"].value.endswith("charges/date=2024-03-02/part-0.parquet")
    assert [c.name for c in metadata["2024-03-02"]["dagster/column_schema"].schema.columns] == [
        "id",
        "amount",
    ]
    empty = pq.read_table(HiveDataset(UPath(tmp_path), "charges").file("2024-03-03").path)
    assert empty.num_rows == 0 and empty.schema == CHARGES_SCHEMA


def test_a_declared_column_schema_is_not_repeated_in_each_days_event(tmp_path: Path) -> None:
    result = run_charges(tmp_path, "2024-03-01", "2024-03-06")
    events = result.asset_materializations_for_node("charge_totals")
    assert len(events) == 6
    for event in events:
        metadata = event.metadata
        assert "dagster/column_schema" not in metadata and "dagster/row_count" in metadata


def test_loads_a_range_as_one_dataframe_with_exact_decimals(tmp_path: Path) -> None:
    result = run_charges(tmp_path, "2024-03-01", "2024-03-06")
    totals = pq.read_table(HiveDataset(UPath(tmp_path), "charge_totals").file("2024-03-05").path)
    assert totals["total"].to_pylist() == [Decimal("20.20")]
    loaded = [
        e.materialization.metadata["loaded_rows"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["charge_totals"]
    ]
    assert set(loaded) == {sum(n % 3 for n in range(1, 7))}


def test_rerun_replaces_files_and_leaves_no_partial_files(tmp_path: Path) -> None:
    run_charges(tmp_path, "2024-03-01", "2024-03-03")
    run_charges(tmp_path, "2024-03-02", "2024-03-04")
    charges_dataset = HiveDataset(UPath(tmp_path), "charges")
    for day in ("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"):
        folder = charges_dataset.file(day).parent
        assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]


def test_missing_upstream_partition_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"charges partition 2024-03-02 has not been"):
        dg.materialize(
            [charges.to_source_asset(), charge_totals],
            resources={"io_manager": HiveParquetIOManager(data_root=str(tmp_path))},
            partition_key="2024-03-02",
        )
