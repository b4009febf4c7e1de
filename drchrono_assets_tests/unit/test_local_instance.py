"""The local Dagster instance (deploy/local/dagster.yaml): Dagster's SQLite storage with batched
event writes leaves exactly what the stock storage leaves, event by event, also when a write
fails; and both shipped instance files turn run monitoring on."""

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.instance.config import dagster_instance_config

from drchrono_assets.cli.demo import LOCAL_INSTANCE, local_dagster_home
from drchrono_assets.instance.sqlite_event_log import BatchedSqliteEventLogStorage
from drchrono_assets_tests.support.event_log import (
    WEEKS,
    assert_stored_alike,
    assert_stored_once,
    batch_sizes,
    operate,
    run_first_week,
    run_range,
)

PRODUCTION_INSTANCE = LOCAL_INSTANCE.parents[1] / "dagster.yaml"


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


def run_stored_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of a week on the instance of ``home`` succeeds with each of its asset events
    stored once in its own file and once in the index."""
    with open_instance(home, monkeypatch) as instance:
        run = run_first_week(instance)
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        with storage.run_connection(run.run_id) as conn:
            assert_stored_once(conn)
        with storage.index_connection() as conn:
            assert_stored_once(conn)
        assert storage._indexed_only == {}  # nothing left waiting for Dagster's fallback


def test_a_failed_index_transaction_leaves_every_event_stored_once(homes, monkeypatch) -> None:
    _, local = homes
    failures: list[int] = []
    store_latest = BatchedSqliteEventLogStorage._store_latest_asset_entries

    def fail_once(self: BatchedSqliteEventLogStorage, conn: Any, events: Any, ids: Any) -> None:
        # Inside the index transaction, after the batch's rows and tags went in.
        if not failures:
            failures.append(len(events))
            raise sqlite3.OperationalError("database is locked")
        store_latest(self, conn, events, ids)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_latest_asset_entries", fail_once)
    run_stored_once(local, monkeypatch)
    assert failures == [14]  # the planned events' batch, then stored one by one by Dagster


def test_a_failed_run_file_write_after_the_index_leaves_every_event_stored_once(
    homes, monkeypatch
) -> None:
    _, local = homes
    failures: list[int] = []
    insert = BatchedSqliteEventLogStorage._insert_in_run_file

    def fail_once(self: BatchedSqliteEventLogStorage, run_id: str, rows: Any) -> None:
        # The batch's index transaction has committed by now.
        if not failures:
            failures.append(len(rows))
            raise sqlite3.OperationalError("disk I/O error")
        insert(self, run_id, rows)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_insert_in_run_file", fail_once)
    run_stored_once(local, monkeypatch)
    assert failures == [14]


@pytest.mark.parametrize("shipped", [PRODUCTION_INSTANCE, LOCAL_INSTANCE], ids=["prod", "local"])
def test_the_shipped_instance_files_turn_run_monitoring_on(shipped: Path, tmp_path: Path) -> None:
    shutil.copy(shipped, tmp_path / "dagster.yaml")
    # Dagster's own parsing and schema check; nothing connects, so the production file's
    # PostgreSQL settings (environment references) need no server.
    config, _ = dagster_instance_config(str(tmp_path))
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["poll_interval_seconds"] <= 60
    # A run whose worker never came up is failed within minutes.
    assert monitoring["start_timeout_seconds"] + monitoring["poll_interval_seconds"] <= 5 * 60
    assert monitoring["cancel_timeout_seconds"] + monitoring["poll_interval_seconds"] <= 5 * 60
    # The one slot of drchrono_api goes back when a run ends without releasing it.
    assert monitoring["free_slots_after_run_end_seconds"] > 0
    # Runs use Dagster's DefaultRunLauncher, which cannot resume a run; with resume attempts
    # above 0 the instance would refuse to load.
    assert "run_launcher" not in config
    assert not dg.DefaultRunLauncher().supports_resume_run
    assert monitoring["max_resume_run_attempts"] == 0


def test_the_local_instance_runs_the_monitoring_daemon(homes, monkeypatch) -> None:
    _, local = homes
    with open_instance(local, monkeypatch) as instance:
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types()
        assert instance.run_monitoring_poll_interval_seconds == 30
        # Under `dagster dev` no worker health check: only timeouts and freed slots.
        assert type(instance.run_launcher) is dg.DefaultRunLauncher
        assert not instance.run_launcher.supports_check_run_worker_health
