"""The PostgreSQL token store and request ledger on a real server: processes refreshing at
once, tables created at once, and token writes that fail after drchrono issued new tokens."""

from __future__ import annotations

import logging
import multiprocessing
import subprocess
import traceback
import uuid
from typing import Any

import dagster as dg
import pytest
import sqlalchemy

from drchrono_assets.api.rate_budget import LEDGER_TABLE, RequestBudget, open_request_ledger
from drchrono_assets.api.shared_documents import PostgresDocument
from drchrono_assets.api.token_store import PostgresTokenStore, TokenSet
from drchrono_assets.errors import ConfigurationError
from drchrono_assets_tests.support.postgres_server import PostgresServer
from drchrono_assets_tests.support.processes import api_client_process, subprocess_env
from drchrono_assets_tests.support.resources import api_for

pytestmark = [pytest.mark.postgres, pytest.mark.processes]


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
