"""The local Dagster instance (deploy/local/dagster.yaml): Dagster's SQLite storage with batched
event writes leaves exactly what the stock storage leaves, event by event."""

import sqlite3
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from drchrono_assets.demo import local_dagster_home
from drchrono_assets.instance.sqlite_event_log import BatchedSqliteEventLogStorage
from drchrono_assets_tests.event_log_support import (
    WEEKS,
    assert_stored_alike,
    batch_sizes,
    operate,
    run_range,
)


def open_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The instance of ``home``, as Dagster's commands open it (the file names DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


def operate_on(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``operate`` on the instance of ``home``, and what each run's own file holds."""
    with open_instance(home, monkeypatch) as instance:
        state = operate(instance)
    state["run_files"] = sorted(
        sqlite3.connect(path).execute("SELECT count(*) FROM event_logs").fetchone()[0]
        for path in (home / "history" / "runs").glob("*.db")
        if path.name != "index.db"
    )
    return state


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
    assert_stored_alike(operate_on(stock, monkeypatch), operate_on(local, monkeypatch))


def test_a_run_writes_one_batch_per_asset_not_one_commit_per_event(homes, monkeypatch) -> None:
    _, local = homes
    stored = batch_sizes(monkeypatch, BatchedSqliteEventLogStorage)
    with open_instance(local, monkeypatch) as instance:
        run_range(instance, "2024-01-01", "2024-01-31")
    # The planned events of both assets, then each asset's materializations.
    assert stored == [62, 31, 31]
