"""The hive Parquet IO manager on local disk, with small assets of its own."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveDataset, HiveParquetIOManager
from drchrono_assets.io_managers.hive_dataset import remove_abandoned_files

days = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-03-10")
SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2))])


@dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
def charges(context: dg.AssetExecutionContext) -> dict[str, pa.Table]:
    return {
        key: pa.Table.from_pylist(
            [{"id": n, "amount": Decimal("10.10")} for n in range(int(key[-2:]) % 3)], SCHEMA
        )
        for key in context.partition_keys
    }


@dg.asset(
    partitions_def=days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn("total")])},
)
def charge_totals(context: dg.AssetExecutionContext, charges: pd.DataFrame) -> dict[str, pa.Table]:
    """Loads every upstream partition of the run as one DataFrame."""
    context.add_output_metadata({"loaded_rows": len(charges)})
    totals = charges.groupby("date")["amount"].sum()
    return {
        key: pa.table(
            {"total": pa.array([totals.get(pd.Timestamp(key).date(), Decimal(0))], SCHEMA[1].type)}
        )
        for key in context.partition_keys
    }


def run(root: Path, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [charges, charge_totals],
        resources={"io_manager": HiveParquetIOManager(data_root=str(root))},
        tags=DayWindow.from_partition_keys([first, last]).run_tags,
    )


def test_writes_every_partition_of_a_range_and_reports_each(tmp_path: Path) -> None:
    result = run(tmp_path, "2024-03-01", "2024-03-06")
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
    assert empty.num_rows == 0 and empty.schema == SCHEMA


def test_a_declared_column_schema_is_not_repeated_in_each_days_event(tmp_path: Path) -> None:
    result = run(tmp_path, "2024-03-01", "2024-03-06")
    events = result.asset_materializations_for_node("charge_totals")
    assert len(events) == 6
    for event in events:
        metadata = event.metadata
        assert "dagster/column_schema" not in metadata and "dagster/row_count" in metadata


def test_loads_a_range_as_one_dataframe_with_exact_decimals(tmp_path: Path) -> None:
    result = run(tmp_path, "2024-03-01", "2024-03-06")
    totals = pq.read_table(HiveDataset(UPath(tmp_path), "charge_totals").file("2024-03-05").path)
    assert totals["total"].to_pylist() == [Decimal("20.20")]
    loaded = [
        e.materialization.metadata["loaded_rows"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["charge_totals"]
    ]
    assert set(loaded) == {sum(n % 3 for n in range(1, 7))}


def test_rerun_replaces_files_and_leaves_no_partial_files(tmp_path: Path) -> None:
    run(tmp_path, "2024-03-01", "2024-03-03")
    run(tmp_path, "2024-03-02", "2024-03-04")
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


ROWS = 2_000_000
# Rewrites two partitions of a large table through the IO manager's staging, forever.
_WRITER = f"""
import sys
import pyarrow as pa
import pyarrow.compute as pc
from upath import UPath
from drchrono_assets.io_managers.hive_dataset import (
    STAGING_FOLDER, HiveDataset, parquet_bytes, write_atomically,
)

root = UPath(sys.argv[1])
big = HiveDataset(root, "big")
ids = pa.array(range({ROWS}), pa.int64())
table = parquet_bytes(pa.table({{"id": ids, "name": pc.cast(ids, pa.string())}}))
while True:
    for day in ("2024-03-01", "2024-03-02"):
        write_atomically(table, [big.file(day)], root / STAGING_FOLDER)
"""


def _killed_mid_write(root: Path) -> None:
    """Start the writer, SIGKILL it while a staged file is being written."""
    staging = root / ".staging"
    second_day = HiveDataset(UPath(root), "big").file("2024-03-02")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert writer.poll() is None, writer.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never staged a file"
            if second_day.exists() and list(staging.glob("*.partial")):
                # Stopped, it cannot rename the file between our look and the kill.
                writer.send_signal(signal.SIGSTOP)
                os.waitpid(writer.pid, os.WUNTRACED)
                if list(staging.glob("*.partial")):
                    break
                writer.send_signal(signal.SIGCONT)
            time.sleep(0.01)
    finally:
        writer.kill()
        writer.wait()


def test_writer_killed_mid_write_leaves_datasets_whole_and_the_next_write_cleans_up(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    staging = root / ".staging"
    _killed_mid_write(root)
    (abandoned,) = staging.iterdir()
    assert abandoned.name.endswith(".partial")
    outside_staging = [p for p in root.rglob("*") if p.is_file() and p.parent != staging]
    assert sorted(str(p.relative_to(root)) for p in outside_staging) == [
        "big/date=2024-03-01/part-0.parquet",
        "big/date=2024-03-02/part-0.parquet",
    ]
    counted = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/big/*/*')").fetchall()
    assert counted == [(2 * ROWS,)]

    held = staging / "held.parquet.partial"  # another writer's, still being written
    fd = os.open(held, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run(root, "2024-03-01", "2024-03-02")
        assert not abandoned.exists()
        assert held.exists()
        remove_abandoned_files(UPath(staging))
        assert held.exists()
    finally:
        os.close(fd)
    remove_abandoned_files(UPath(staging))
    assert not held.exists()
