"""Dagster on PostgreSQL, as deploy/dagster.yaml configures it, on a real server: the batched
event log, run storage, the change sensor, and the API pool's slots."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import subprocess
import threading
import uuid
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy
from dagster._utils.concurrency import ConcurrencySlotStatus

from drchrono_assets import settings
from drchrono_assets.definitions import defs
from drchrono_assets.instance.event_batches import BATCH_SIZE, BATCH_SIZE_VARIABLE
from drchrono_assets.instance.postgres_event_log import AtomicSlotPostgresEventLogStorage
from drchrono_assets.resources.drchrono_api import SWEEP_TAG
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets_tests.support.assets import every_asset, materialize
from drchrono_assets_tests.support.event_log import (
    assert_stored_alike,
    assert_stored_once,
    batch_sizes,
    operate,
    run_first_week,
)
from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.processes import DAGSTER, subprocess_env
from drchrono_assets_tests.support.simulation import launch

pytestmark = [pytest.mark.postgres, pytest.mark.processes]


@pytest.fixture
def pg_home(postgres, tmp_path, monkeypatch) -> tuple[Path, dict[str, str]]:
    """A DAGSTER_HOME with the shipped production dagster.yaml and a fresh database."""
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres.create_database(database)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = postgres.dagster_env(database)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return home, env


@pytest.fixture
def pg_instance(pg_home) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(pg_home[0])) as instance:
        yield instance


def test_batched_planned_events_leave_what_dagsters_own_storage_leaves(
    postgres, tmp_path, monkeypatch
) -> None:
    """deploy/dagster.yaml's event log stores a run's planned events in one transaction; it
    keeps what Dagster's PostgreSQL event log keeps, event by event."""
    monkeypatch.setenv(BATCH_SIZE_VARIABLE, str(BATCH_SIZE))  # both storages get batches
    shipped = (REPO / "deploy" / "dagster.yaml").read_text()
    ours = (
        "module: drchrono_assets.instance.postgres_event_log\n"
        "  class: AtomicSlotPostgresEventLogStorage"
    )
    dagsters = "module: dagster_postgres.event_log\n  class: PostgresEventLogStorage"
    assert ours in shipped
    batches = batch_sizes(monkeypatch, AtomicSlotPostgresEventLogStorage)
    states = []
    for config in (shipped.replace(ours, dagsters), shipped):
        database = f"dagster_{uuid.uuid4().hex[:8]}"
        postgres.create_database(database)
        home = tmp_path / database
        home.mkdir()
        (home / "dagster.yaml").write_text(config)
        for name, value in postgres.dagster_env(database).items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            states.append(operate(instance))
    assert_stored_alike(*states)
    assert batches[0] == 2 * 7  # the first run's planned events: two assets, a week


def test_a_failed_batch_transaction_leaves_every_event_stored_once(
    pg_instance, monkeypatch
) -> None:
    """A batch is one transaction: when it fails, Dagster stores its events one by one, and
    each is then there once (Dagster's own storage commits a batch of materializations before
    their tags, and has them twice)."""
    failures: list[int] = []
    store_tags = AtomicSlotPostgresEventLogStorage._store_asset_event_tags

    def fail_once(self: Any, conn: Any, events: Any, event_ids: Any) -> None:
        # The first batch of materializations, after its rows went in.
        if not failures and events[0].get_dagster_event().is_step_materialization:
            failures.append(len(events))
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("connection lost"))
        store_tags(self, conn, events, event_ids)

    monkeypatch.setattr(AtomicSlotPostgresEventLogStorage, "_store_asset_event_tags", fail_once)
    run_first_week(pg_instance)
    assert failures == [7]  # one asset's week
    with pg_instance.event_log_storage.index_connection() as conn:
        assert_stored_once(conn)


def test_runs_and_materializations_are_kept_in_postgres(pg_instance, dagster_resources) -> None:
    assert type(pg_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(pg_instance.event_log_storage) is AtomicSlotPostgresEventLogStorage
    assert type(pg_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert pg_instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    result = materialize(
        dagster_resources, "2024-03-04", "2024-03-05", instance=pg_instance, assets=every_asset()
    )
    assert result.success
    (run,) = pg_instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert pg_instance.get_materialized_partitions(dg.AssetKey("billing_report")) == {
        "2024-03-04",
        "2024-03-05",
    }
    records = pg_instance.fetch_materializations(dg.AssetKey("appointments"), limit=10).records
    assert {r.partition_key for r in records} == {"2024-03-04", "2024-03-05"}
    assert records[0].asset_materialization.metadata["dagster/row_count"].value > 0
    checks = pg_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("billing_report"), "billing_report_reconciles")]
    )
    assert len(checks) == 1


def test_change_sensor_sweeps_and_advances_on_postgres(
    pg_instance, dagster_resources, monkeypatch
) -> None:
    """The sensor finds its runs' statuses in PostgreSQL run storage and advances its cursor."""
    morning = dt.datetime(2024, 3, 6, 5, tzinfo=zoneinfo.ZoneInfo(settings.timezone()))
    monkeypatch.setattr(sync_sensor, "clock", lambda: morning)
    sensor = defs.resolve_sensor_def("drchrono_changes")

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=pg_instance, cursor=cursor, resources=dagster_resources
        ) as context:
            return sensor.evaluate_tick(context)

    result, cursor = None, None
    for _ in range(4):  # the sweep run, its merge runs, the finish run, then the cursor clears
        result = tick(cursor)
        cursor = result.cursor
        for request in result.run_requests:
            assert launch(request, pg_instance, dagster_resources)
    assert not result.run_requests
    assert sync_sensor.SyncCursor.from_json(cursor).sweep is None
    assert sync_sensor.SyncCursor.from_json(result.cursor).day == "2024-03-06"
    sweep_runs = [run for run in pg_instance.get_runs() if SWEEP_TAG in run.tags]
    assert {run.tags[SWEEP_TAG][:17] for run in sweep_runs} == {"2024-03-06T050000"}
    assert len(sweep_runs) > 1 and all(
        run.status == dg.DagsterRunStatus.SUCCESS for run in sweep_runs
    )
    state = StagedChanges.of(dagster_resources["parquet_io_manager"]).state()
    assert state is not None and state.since > "2024-03-05"
    assert "2024-03-05" in pg_instance.get_materialized_partitions(dg.AssetKey("transactions"))


def test_a_pool_slot_claimed_at_the_same_instant_goes_to_one_step(pg_instance) -> None:
    """Two claims released together by a barrier, 200 times: one of them gets the slot."""
    storage = pg_instance.event_log_storage
    storage.set_concurrency_slots("drchrono_api", 1)
    barrier = threading.Barrier(2)
    claims: list[ConcurrencySlotStatus] = [ConcurrencySlotStatus.BLOCKED] * 2

    def claim(index: int) -> None:
        barrier.wait()
        claims[index] = storage._claim_concurrency_slot("drchrono_api", "run", f"step_{index}")

    for _ in range(200):
        threads = [threading.Thread(target=claim, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert claims.count(ConcurrencySlotStatus.CLAIMED) == 1, "both steps took the one slot"
        storage.free_concurrency_slots_for_run("run")


def test_api_pool_lets_one_api_step_run_at_a_time(
    pg_home, pg_instance, quiet_sandbox, sandbox_env, tmp_path
) -> None:
    home, pg_env = pg_home
    env = {**subprocess_env(sandbox_env, tmp_path), **pg_env, "DAGSTER_HOME": str(home)}
    # Once per instance, as docs/deploy.md says: otherwise two runs starting together on a
    # fresh instance race to create the pool's default limit (a UniqueViolation in Dagster).
    subprocess.run(
        [DAGSTER, "instance", "concurrency", "set", "drchrono_api", "1"],
        env=env, check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    quiet_sandbox.state.latency_ms = 300  # long enough that unpooled steps would overlap
    try:
        # Two runs at once (each runs its steps one after another, in process).
        command = [DAGSTER, "asset", "materialize", "-m", "drchrono_assets.definitions"]
        launched = [
            subprocess.Popen(
                [*command, "--select", selection, "--partition", "2024-03-05"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for selection in ("doctors,offices", "users,reminder_profiles")
        ]
        for process in launched:
            _, errors = process.communicate(timeout=600)
            assert process.returncode == 0, errors[-3000:]
    finally:
        quiet_sandbox.state.latency_ms = 0
    runs = pg_instance.get_runs()
    assert len(runs) == 2
    spans: dict[str, list[float]] = {}
    # The runs' other steps (the assets' freshness checks) call no API and take no slot.
    api_steps = {"doctors", "offices", "users", "reminder_profiles"}
    for run in runs:
        for entry in pg_instance.all_logs(run.run_id):
            if (
                entry.step_key in api_steps
                and entry.dagster_event
                and entry.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")
            ):
                spans.setdefault(entry.step_key, []).append(entry.timestamp)
    intervals = sorted(spans.values())
    assert len(intervals) == 4
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end, "two API steps ran at the same time"
    info = pg_instance.event_log_storage.get_concurrency_info("drchrono_api")
    assert info.slot_count == 1
