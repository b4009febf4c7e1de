"""Patient data on a local disk: owner-only (or owner and group) whatever the umask, and
stored files read-only, so a write in place to one day of a snapshot cannot change them all
(tried by another user: integration/test_data_root_processes.py)."""

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from upath import UPath

from drchrono_assets.assets.bi import DATABASE_NAME
from drchrono_assets.io_managers import AtRest, HiveDataset, HiveParquetIOManager
from drchrono_assets.sync.staged import PlannedRun, StagedChanges, SweepPlan, SyncState
from drchrono_assets_tests.support.datasets import FIRST, LAST, SNAPSHOT_DAYS, mode, table
from drchrono_assets_tests.support.definitions import bi_duckdb

DAYS = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-03-04")
RANGE = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}
# (group read, folders, stored files, files their owner may still write)
MODES = [(False, 0o700, 0o400, 0o600), (True, 0o750, 0o440, 0o640)]


@dg.asset(
    partitions_def=DAYS,
    io_manager_key="parquet_io_manager",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def patients(context: dg.AssetExecutionContext) -> dict[str, pa.Table]:
    """A snapshot: one table for every day of the run, so the days share one inode."""
    snapshot = table(1, 2)
    return dict.fromkeys(context.partition_keys, snapshot)


@dg.asset(io_manager_key="parquet_io_manager")
def ar_aging() -> pa.Table:
    return table(3)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def write_everything(io_manager: HiveParquetIOManager) -> None:
    """Every kind of write under a data root: the IO manager's probe, locks and datasets,
    a sweep's staged changes and plan, the sync state, and the DuckDB file for BI."""
    resources = {"parquet_io_manager": io_manager}
    assert dg.materialize([patients, ar_aging], resources=resources, tags=RANGE).success
    staged = StagedChanges.of(io_manager)
    sweep = StagedChanges.new_sweep_id(dt.datetime(2024, 3, 4, 6, 0))
    staged.write(sweep, "appointments", table(4))
    staged.leave_waiting("appointments", table(5))
    run = PlannedRun(("appointments",), "merge", FIRST, LAST)
    staged.write_plan(
        SweepPlan(sweep, FIRST, LAST, "2024-03-04T06:00:00+00:00", LAST, FIRST, (run,))
    )
    staged.save_state(SyncState(f"{LAST}T00:00:00", LAST, FIRST, sweep))
    assert dg.materialize([bi_duckdb], resources=resources).success


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
@pytest.mark.parametrize(("group_read", "folders", "stored", "writable"), MODES)
def test_every_file_and_folder_under_the_data_root_has_the_chosen_mode_whatever_the_umask(
    tmp_path: Path, mask: int, group_read: bool, folders: int, stored: int, writable: int
) -> None:
    root = tmp_path / "data"  # created by the first write
    io_manager = HiveParquetIOManager(data_root=str(root), data_group_read=group_read)
    with umask(mask):
        write_everything(io_manager)

    seen_files = {}
    for folder, _, files in os.walk(root):
        assert mode(folder) == folders, (folder, oct(mode(folder)))
        for name in files:
            path = Path(folder, name)
            seen_files[str(path.relative_to(root))] = mode(path)
    sweep = next(name for name in os.listdir(root / ".changes") if name[0].isdigit())
    expected = {
        **{f"patients/date={day}/part-0.parquet": stored for day in SNAPSHOT_DAYS},
        "ar_aging/part-0.parquet": stored,
        f".changes/{sweep}/appointments.parquet": stored,
        f".changes/{sweep}/plan.json": stored,
        ".changes/waiting/appointments.parquet": stored,
        ".changes/state.json": stored,
        # A reader who could open a lock file could hold it: the owner's alone, always.
        ".locks/patients.lock": 0o600,
        ".locks/ar_aging.lock": 0o600,
        DATABASE_NAME: writable,
    }
    assert {path: oct(value) for path, value in seen_files.items()} == {
        path: oct(value) for path, value in expected.items()
    }
    assert (root / ".staging").is_dir()  # the probe's and staged files' folder, now empty


@pytest.mark.parametrize(("group_read", "stored"), [(False, 0o400), (True, 0o440)])
def test_the_days_of_a_snapshot_share_one_read_only_inode(
    tmp_path: Path, group_read: bool, stored: int
) -> None:
    dataset = HiveDataset(UPath(tmp_path), "charges", AtRest(group_read=group_read))
    dataset.write(dict.fromkeys(SNAPSHOT_DAYS, table(7, 8)))
    inodes = {os.stat(dataset.file(day).path).st_ino for day in SNAPSHOT_DAYS}
    assert len(inodes) == 1
    for day in SNAPSHOT_DAYS:
        assert mode(dataset.file(day).path) == stored
        assert os.stat(dataset.file(day).path).st_nlink == len(SNAPSHOT_DAYS)
