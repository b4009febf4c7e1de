"""Dagster on PostgreSQL (deploy/dagster.yaml) and the PostgreSQL token store, on a real server."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import multiprocessing
import shutil
import subprocess
import sys
import threading
import traceback
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
from drchrono_assets.api.rate_budget import LEDGER_TABLE, RequestBudget, open_request_ledger
from drchrono_assets.api.shared_documents import PostgresDocument
from drchrono_assets.api.token_store import PostgresTokenStore, TokenSet
from drchrono_assets.definitions import defs
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.instance.event_batches import BATCH_SIZE, BATCH_SIZE_VARIABLE
from drchrono_assets.instance.postgres_event_log import AtomicSlotPostgresEventLogStorage
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import SWEEP_TAG, StagedChanges
from drchrono_assets_tests.assets_support import every_asset, materialize
from drchrono_assets_tests.conftest import api_client_process, api_for, subprocess_env
from drchrono_assets_tests.event_log_support import (
    STORED_ONCE,
    WEEKS,
    assert_stored_alike,
    batch_sizes,
    operate,
    run_range,
    times_stored,
)
from drchrono_assets_tests.postgres_server import PostgresServer
from drchrono_assets_tests.simulation import launch

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


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
    run_range(pg_instance, *WEEKS[0])
    (run,) = pg_instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert failures == [7]  # one asset's week
    with pg_instance.event_log_storage.index_connection() as conn:
        assert times_stored(conn) == STORED_ONCE


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


# -- the PostgreSQL token store ---------------------------------------------------------


def test_processes_refreshing_at_once_spend_each_refresh_token_once(
    postgres, quiet_sandbox, sandbox_env, tmp_path
) -> None:
    url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
    env = {**subprocess_env(sandbox_env, tmp_path), "DRCHRONO_TOKEN_STORE": url}

    def clients() -> list[subprocess.Popen]:
        return [api_client_process(env) for _ in range(4)]

    for process in clients():
        assert process.wait(60) == 0, process.stderr.read().decode()
    # Every access token revoked: all four must refresh again, still one spend per token.
    quiet_sandbox.state.oauth.revoke_access_tokens()
    for process in clients():
        assert process.wait(60) == 0, process.stderr.read().decode()
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_token_reuse"] == 0
    assert stats["refresh_grants"] == 2
    with sqlalchemy.create_engine(url).connect() as connection:
        (count,) = connection.execute(
            sqlalchemy.text(f"SELECT count(*) FROM {PostgresTokenStore.TABLE}")
        ).one()
    assert count == 1


def test_postgres_store_round_trip_and_an_unreachable_database_hides_the_password(
    postgres,
) -> None:
    url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
    store = PostgresTokenStore(url, "key")
    assert store.load() is None
    store.update(lambda _: TokenSet(refresh_token="r", access_token="a", expires_at=1.0))
    assert store.load() == TokenSet(refresh_token="r", access_token="a", expires_at=1.0)
    unreachable = PostgresTokenStore("postgresql+psycopg2://u:SECRET-PW@127.0.0.1:1/x", "key")
    with pytest.raises(ConfigurationError, match="cannot reach the token store") as raised:
        unreachable.load()
    assert "SECRET-PW" not in str(raised.value) and raised.value.__context__ is None


def test_token_store_url_stays_an_env_reference(monkeypatch) -> None:
    from drchrono_assets.resources import DrchronoApiResource

    monkeypatch.setenv("DRCHRONO_TOKEN_STORE", "postgresql+psycopg2://u:SECRET-PW@h/db")
    resource = DrchronoApiResource.from_env()
    assert isinstance(resource.token_store, dg.EnvVar)
    assert "SECRET-PW" not in repr(resource)


def test_api_resource_uses_the_postgres_store(postgres, quiet_sandbox, sandbox_env) -> None:
    url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
    api = api_for({**sandbox_env, "DRCHRONO_TOKEN_STORE": url})
    api.client.current_user()
    assert isinstance(api.client.open_token_store(), PostgresTokenStore)
    assert api.client.stored_tokens().refresh_token


def _open_store_and_update(url: str, start: Any) -> None:
    start.wait(30)  # every process creates the table at the same moment
    PostgresTokenStore(url, "key").update(lambda current: current or TokenSet(refresh_token="r"))
    PostgresDocument(url, LEDGER_TABLE, "ledger", "key").update(lambda current: current or {})


def test_processes_creating_the_tables_at_once_on_a_fresh_database(postgres) -> None:
    """Several pods starting together on a new database: nobody trips over CREATE TABLE."""
    for _ in range(3):
        url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(8)
        processes = [
            context.Process(target=_open_store_and_update, args=(url, start)) for _ in range(8)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [process.exitcode for process in processes] == [0] * 8


def test_request_ledger_is_a_table_beside_the_postgres_tokens(postgres, tmp_path) -> None:
    url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
    ledger = open_request_ledger(url, "app")
    budget = RequestBudget(per_hour=2, per_second=10, ledger=ledger)
    budget.release(budget.acquire())
    other_process = RequestBudget(per_hour=2, per_second=10, ledger=ledger, sleep=_no_sleep)
    other_process.acquire()
    with pytest.raises(_WouldWait):
        other_process.acquire()  # the hour's two requests are spent, by both "processes"
    with sqlalchemy.create_engine(url).connect() as connection:
        (count,) = connection.execute(sqlalchemy.text(f"SELECT count(*) FROM {LEDGER_TABLE}")).one()
    assert count == 1


class _WouldWait(Exception):
    pass


def _no_sleep(seconds: float) -> None:
    raise _WouldWait(seconds)


# -- a token store write that fails after drchrono issued new tokens ----------------------


def _fail_token_writes(url: str, times: int, how: str) -> None:
    """The next ``times`` UPDATEs of the token table fail: the trigger raises, or ends its
    own connection (a failover, an idle-in-transaction timeout). A sequence counts them: it
    is not rolled back with the failed transaction."""
    effect = {
        "raise": "RAISE EXCEPTION 'injected failure of a token store write'",
        "disconnect": "PERFORM pg_terminate_backend(pg_backend_pid())",
    }[how]
    with sqlalchemy.create_engine(url).begin() as connection:
        connection.execute(sqlalchemy.text("CREATE SEQUENCE token_write_failures"))
        connection.execute(
            sqlalchemy.text(
                "CREATE FUNCTION fail_token_writes() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF nextval('token_write_failures') <= {times} THEN {effect}; END IF; "
                "RETURN NEW; END $$"
            )
        )
        connection.execute(
            sqlalchemy.text(
                f"CREATE TRIGGER fail_token_writes BEFORE UPDATE ON {PostgresTokenStore.TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION fail_token_writes()"
            )
        )


def _allow_token_writes(url: str) -> None:
    with sqlalchemy.create_engine(url).begin() as connection:
        connection.execute(
            sqlalchemy.text(f"DROP TRIGGER fail_token_writes ON {PostgresTokenStore.TABLE}")
        )


def _every_token(sandbox: Any) -> set[str]:
    """Every token the sandbox ever issued or took back."""
    oauth = sandbox.state.oauth
    return {*oauth._refresh_tokens, *oauth._spent_refresh_tokens, *oauth._access_tokens}


def _token_store_for(postgres: PostgresServer, sandbox_env: dict[str, str]) -> dict[str, str]:
    url = postgres.create_database(f"tokens_{uuid.uuid4().hex[:8]}")
    env = {**sandbox_env, "DRCHRONO_TOKEN_STORE": url}
    PostgresTokenStore(url, api_for(env).client.application_key()).load()  # creates the table
    return env


@pytest.mark.parametrize("how", ["raise", "disconnect"])
def test_a_token_store_write_failing_once_after_a_refresh_keeps_the_new_refresh_token(
    postgres, quiet_sandbox, sandbox_env, caplog, how
) -> None:
    env = _token_store_for(postgres, sandbox_env)
    _fail_token_writes(env["DRCHRONO_TOKEN_STORE"], 1, how)
    client = api_for(env).client
    with caplog.at_level(logging.DEBUG):
        assert client.current_user()["username"]  # the write is retried on a new connection
    store = PostgresTokenStore(env["DRCHRONO_TOKEN_STORE"], client.application_key())
    stored = store.load()
    assert stored is not None and stored.refresh_token != env["DRCHRONO_REFRESH_TOKEN"]
    assert "could not save" in caplog.text and PostgresTokenStore.TABLE in caplog.text
    for token in _every_token(quiet_sandbox):
        assert token not in caplog.text
    quiet_sandbox.state.oauth.revoke_access_tokens()
    assert api_for(env).client.current_user()["username"]  # another process, the stored token
    stats = quiet_sandbox.state.stats.snapshot()
    assert (stats["refresh_grants"], stats["refresh_token_reuse"]) == (2, 0)


def test_tokens_the_store_cannot_take_are_kept_in_memory_until_it_can(
    postgres, quiet_sandbox, sandbox_env, caplog, monkeypatch
) -> None:
    """While the store refuses every write: one clear error naming the store, this process
    goes on with the tokens it holds, and stores them once the store takes writes again."""
    from drchrono_assets.errors import DrchronoError

    env = _token_store_for(postgres, sandbox_env)
    url = env["DRCHRONO_TOKEN_STORE"]
    _fail_token_writes(url, 1_000_000, "raise")
    client = api_for(env).client
    errors: list[DrchronoError] = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(DrchronoError) as raised:
            client.current_user()
        errors.append(raised.value)
        assert client.current_user()["username"]  # the tokens kept in memory
        quiet_sandbox.state.oauth.revoke_access_tokens()
        with pytest.raises(DrchronoError) as raised:
            client.current_user()  # refreshed with the kept refresh token, not the spent one
        errors.append(raised.value)
        assert client.current_user()["username"]
        stats = quiet_sandbox.state.stats.snapshot()
        assert (stats["refresh_grants"], stats["refresh_token_reuse"]) == (2, 0)

        _allow_token_writes(url)
        monkeypatch.setattr("drchrono_assets.api.oauth_tokens.RESAVE_INTERVAL_SECONDS", 0.0)
        assert client.current_user()["username"]  # stores the kept tokens
    message = str(errors[0])
    assert message.startswith("drchrono issued new tokens but the token store PostgreSQL table")
    assert errors[0].__context__ is None and errors[0].__cause__ is None
    assert "DRCHRONO_TOKEN_STORE" in message
    shown = caplog.text + "".join("".join(traceback.format_exception(e)) for e in errors)
    for token in _every_token(quiet_sandbox):
        assert token not in shown
    quiet_sandbox.state.oauth.revoke_access_tokens()
    assert api_for(env).client.current_user()["username"]  # another process, the stored token
    stats = quiet_sandbox.state.stats.snapshot()
    assert (stats["refresh_grants"], stats["refresh_token_reuse"]) == (3, 0)
