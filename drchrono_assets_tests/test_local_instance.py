"""The local Dagster instance (deploy/local/dagster.yaml): Dagster's SQLite storage with batched
event writes leaves exactly what the stock storage leaves, event by event."""

import sqlite3
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from drchrono_assets.day_window import DayWindow
from drchrono_assets.instance.sqlite_event_log import (
    BatchedSqliteEventLogStorage,
)
from drchrono_assets_tests.conftest import local_dagster_home

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")
WEEKS = (("2024-01-01", "2024-01-07"), ("2024-01-05", "2024-01-20"))  # overlapping runs


class Outage(Exception):
    """The step's failure in a failing run."""


def day_assets(fail: bool = False) -> list[dg.AssetsDefinition]:
    """Two range-run assets like the ingest ones: per-day metadata, tags, a check."""

    def build(name: str) -> dg.AssetsDefinition:
        @dg.asset(
            name=name,
            partitions_def=DAYS,
            backfill_policy=dg.BackfillPolicy.single_run(),
            io_manager_key="memory",
        )
        def day_asset(context: dg.AssetExecutionContext) -> dict[str, int]:
            if fail:
                raise Outage("the API is down")
            for number, key in enumerate(context.partition_keys):
                context.add_asset_metadata({"rows": number}, partition_key=key)
            return dict.fromkeys(context.partition_keys, 1)

        return day_asset

    return [build("visits"), build("payments")]


def run_range(instance: dg.DagsterInstance, first: str, last: str, fail: bool = False) -> None:
    dg.materialize(
        day_assets(fail),
        instance=instance,
        resources={"memory": dg.InMemoryIOManager()},
        tags=DayWindow.from_partition_keys([first, last]).run_tags,
        raise_on_error=False,
    )


def stored_state(home: Path, instance: dg.DagsterInstance) -> dict[str, Any]:
    """What the storage holds, without the ids, times and run ids that differ run to run."""
    index = sqlite3.connect(home / "history" / "runs" / "index.db")
    runs = {run.run_id: number for number, run in enumerate(reversed(instance.get_runs()))}
    events = index.execute(
        "SELECT run_id, dagster_event_type, asset_key, partition FROM event_logs"
    )
    state: dict[str, Any] = {
        "events": sorted(((runs.get(run_id), *rest) for run_id, *rest in events), key=str),
        # Values are data versions, hashes of each run's own id.
        "tags": sorted(index.execute("SELECT asset_key, key FROM asset_event_tags")),
    }
    for key in (dg.AssetKey("visits"), dg.AssetKey("payments")):
        (record,) = instance.get_asset_records([key])
        entry = record.asset_entry
        last = entry.last_materialization_record
        status = get_and_update_asset_status_cache_value(instance, key, DAYS)
        assert status is not None
        state[key.to_user_string()] = {
            "last_run": runs[entry.last_run_id] if entry.last_run_id else None,
            "last_materialized": last.partition_key if last else None,
            "last_metadata": dict(last.asset_materialization.metadata) if last else None,
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "failed": sorted(
                status.deserialize_failed_partition_subsets(DAYS).get_partition_keys()
            ),
        }
    # Every run's own file holds its events.
    state["run_files"] = sorted(
        sqlite3.connect(path).execute("SELECT count(*) FROM event_logs").fetchone()[0]
        for path in (home / "history" / "runs").glob("*.db")
        if path.name != "index.db"
    )
    return state


def open_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The instance of ``home``, as Dagster's commands open it (the file names DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


def operate(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Two overlapping range runs and a failing one, then what the storage holds."""
    with open_instance(home, monkeypatch) as instance:
        for first, last in WEEKS:
            run_range(instance, first, last)
        run_range(instance, "2024-02-01", "2024-02-03", fail=True)
        return stored_state(home, instance)


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    stock = tmp_path / "stock"
    stock.mkdir()
    (stock / "dagster.yaml").write_text("")  # Dagster's default local storage
    return stock, local_dagster_home(tmp_path / "local")


def test_the_local_instance_is_dagsters_sqlite_storage_with_batched_writes(
    homes, monkeypatch
) -> None:
    _, local = homes
    with open_instance(local, monkeypatch) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage) is BatchedSqliteEventLogStorage
        run_range(instance, *WEEKS[0])
    # The default layout: a file per run and the index beside them.
    assert (local / "history" / "runs" / "index.db").exists()
    assert (local / "history" / "runs.db").exists()


def test_batched_writes_leave_what_event_by_event_writes_leave(homes, monkeypatch) -> None:
    stock, local = homes
    expected, got = operate(stock, monkeypatch), operate(local, monkeypatch)
    assert got == expected
    # The comparison covers what the UI shows: days done, days failed, per-day metadata.
    assert got["visits"]["materialized"] == [f"2024-01-{day:02d}" for day in range(1, 21)]
    assert got["visits"]["failed"] == ["2024-02-01", "2024-02-02", "2024-02-03"]
    assert got["visits"]["last_metadata"] == {"rows": dg.IntMetadataValue(15)}


def test_a_run_writes_one_batch_per_asset_not_one_commit_per_event(homes, monkeypatch) -> None:
    _, local = homes
    stored: list[int] = []
    batch = BatchedSqliteEventLogStorage.store_event_batch

    def counted(self: BatchedSqliteEventLogStorage, events: list[Any]) -> None:
        stored.append(len(events))
        batch(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", counted)
    with open_instance(local, monkeypatch) as instance:
        run_range(instance, "2024-01-01", "2024-01-31")
    # The planned events of both assets, then each asset's materializations.
    assert stored == [62, 31, 31]
