"""An API nothing answers at: runs give up after a short bounded retry, ``auth`` commands at
once, both naming the address and DRCHRONO_BASE_URL; an API that answers 503 keeps the long
backoff. Real sockets and real processes."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from drchrono_assets.api.answers import connect_failure
from drchrono_assets.api.reachability import RUN_CONNECT_WAITS
from drchrono_assets.api.token_store import FileTokenStore, TokenSet
from drchrono_assets.errors import ApiRequestError, ApiUnreachableError
from drchrono_assets_tests.support.fake_api import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    LocalServer,
    Received,
    client_for,
    scripted_api,
)
from drchrono_assets_tests.support.processes import DRCHRONO_ASSETS
from drchrono_assets_tests.support.resources import api_for

pytestmark = pytest.mark.processes

AUTH = [DRCHRONO_ASSETS, "auth"]
# What a run would use: the defaults of ClientSettings for the long backoff.
RUN_BACKOFF = {"max_attempts": 10, "backoff_initial_seconds": 2.0, "backoff_max_seconds": 120.0}
STORED_ACCESS_TOKEN = "SECRET-STORED-ACCESS-TOKEN"
STORED_REFRESH_TOKEN = "SECRET-STORED-REFRESH-TOKEN"


@pytest.fixture
def closed_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: the port was bound, then freed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def store_tokens(path: Path, *, access_token_valid: bool) -> None:
    """A connected account in the token store, its access token valid or expired."""
    expires_at = time.time() + (3600 if access_token_valid else -3600)
    FileTokenStore(path).save(
        TokenSet(
            refresh_token=STORED_REFRESH_TOKEN,
            access_token=STORED_ACCESS_TOKEN,
            expires_at=expires_at,
            scope="user:read",
        )
    )


def assert_names_the_address(message: str, url: str) -> None:
    assert f"the drchrono API at {url} cannot be reached" in message
    assert "check that DRCHRONO_BASE_URL is the API's address" in message
    for secret in (STORED_ACCESS_TOKEN, STORED_REFRESH_TOKEN, "sandbox-client-secret"):
        assert secret not in message


# -- runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("stored_access_token", [None, "valid"], ids=["token_endpoint", "read"])
def test_a_run_gives_up_on_a_closed_port_within_seconds_naming_the_address(
    sandbox_env: dict[str, str],
    closed_url: str,
    tmp_path: Path,
    stored_access_token: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first request of a run (a refresh, or a read on a stored access token)."""
    env = {**sandbox_env, "DRCHRONO_BASE_URL": closed_url}
    if stored_access_token:
        store_tokens(Path(env["DRCHRONO_TOKEN_STORE"]), access_token_valid=True)
    api = api_for(env, **RUN_BACKOFF)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(ApiUnreachableError) as raised:
        api.client.list_records("/api/doctors")
    elapsed = time.monotonic() - started
    print(f"run-style client gave up after {elapsed:.2f}s")  # shown with -s: the measured time
    message = str(raised.value)
    endpoint = "GET /api/doctors" if stored_access_token else "POST /o/token/"
    assert message.startswith(f"{endpoint}: the drchrono API at {closed_url} cannot be reached")
    assert "connection refused, nothing was sent; 3 attempts over 8 s" in message
    assert_names_the_address(message, closed_url)
    # The short waits, not the long backoff (2, 5, 9, 17... s).
    assert sum(RUN_CONNECT_WAITS) <= elapsed < 15
    retries = [record.getMessage() for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == len(RUN_CONNECT_WAITS)
    assert all(f"cannot reach {closed_url}" in retry for retry in retries)


def test_parallel_queries_of_a_step_give_up_together_not_one_after_another(
    sandbox_env: dict[str, str], closed_url: str
) -> None:
    """Threads queue on the token lock: after the first gave up, the others try once."""
    api = api_for({**sandbox_env, "DRCHRONO_BASE_URL": closed_url}, **RUN_BACKOFF)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(api.client.list_records, "/api/doctors") for _ in range(4)]
        errors = [future.exception(timeout=60) for future in futures]
    elapsed = time.monotonic() - started
    print(f"4 parallel queries gave up after {elapsed:.2f}s")
    assert all(isinstance(error, ApiUnreachableError) for error in errors)
    assert elapsed < 15
    # Later calls of the same client fail at once too.
    started = time.monotonic()
    with pytest.raises(ApiUnreachableError, match=r"1 attempt\)"):
        api.client.current_user()
    assert time.monotonic() - started < 1


def test_an_api_that_stops_taking_connections_mid_run_gets_the_long_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once it answered, a refused connection is more likely a restart than a wrong address."""
    with LocalServer(scripted_api()) as api:
        # More attempts than the short retry's 3: the count in the message tells which ran.
        client = client_for(api.url, tmp_path, monkeypatch, max_attempts=4)
        assert client.current_user()["username"] == "dr-who"
    # The server is gone: its port refuses connections.
    with pytest.raises(ApiUnreachableError) as raised:
        client.list_records("/api/doctors")
    message = str(raised.value)
    assert message.startswith(f"GET /api/doctors: the drchrono API at {api.url} cannot be reached")
    assert "4 attempts" in message
    for secret in (ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in message


def test_an_api_answering_503_still_gets_every_attempt_of_the_long_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[Received] = []

    def unavailable(request: Received) -> tuple[int, dict[str, str], object]:
        answered.append(request)
        return 503, {}, {"detail": "Service unavailable"}

    with LocalServer(unavailable) as api:
        client = client_for(api.url, tmp_path, monkeypatch, max_attempts=5)
        with pytest.raises(ApiRequestError) as raised:
            client.current_user()
    assert not isinstance(raised.value, ApiUnreachableError)
    assert str(raised.value) == "POST /o/token/ failed after 5 attempts: HTTP 503"
    assert len(answered) == 5


def _wrapped(reason: Exception) -> requests.ConnectionError:
    """What requests raises when urllib3 could not connect."""
    pool = urllib3.HTTPConnectionPool("127.0.0.1", 9)
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/", reason))


def test_which_failures_mean_no_connection_was_made() -> None:
    conn = urllib3.connection.HTTPConnection("drchrono.invalid")
    refused = urllib3.exceptions.NewConnectionError(conn, "refused")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    not_found = urllib3.exceptions.NameResolutionError("drchrono.invalid", conn, OSError())
    unroutable = urllib3.exceptions.NewConnectionError(conn, "unreachable")
    unroutable.__cause__ = OSError(101, "Network is unreachable")
    assert connect_failure(_wrapped(refused)) == "connection refused"
    assert connect_failure(_wrapped(not_found)) == "host name not found"
    assert connect_failure(_wrapped(unroutable)) == "no connection could be made"
    assert connect_failure(requests.ConnectTimeout("slow")) == "connection timed out"
    # Connected, then lost: the request may have arrived; the long backoff's business.
    assert connect_failure(requests.ConnectionError("reset")) is None
    assert connect_failure(requests.ReadTimeout("slow")) is None


# -- interactive commands ----------------------------------------------------------------


@pytest.fixture
def auth_env(closed_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``auth``'s environment: the closed port, credentials, its own store and HOME."""
    home = tmp_path / "home"
    home.mkdir()
    inherited = {name: value for name, value in os.environ.items() if "DRCHRONO" not in name}
    yield {
        **inherited,
        "HOME": str(home),
        "DRCHRONO_BASE_URL": closed_url,
        "DRCHRONO_CLIENT_ID": "sandbox-client-id",
        "DRCHRONO_CLIENT_SECRET": "sandbox-client-secret",
        "DRCHRONO_TOKEN_STORE": str(tmp_path / "secrets" / "tokens.json"),
        "DRCHRONO_DATA_ROOT": str(tmp_path / "data"),
    }


def run_auth(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([*AUTH, *args], env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.parametrize("access_token_valid", [True, False], ids=["read", "refresh"])
def test_auth_status_reports_an_unreachable_api_in_one_line_within_seconds(
    auth_env: dict[str, str], closed_url: str, access_token_valid: bool
) -> None:
    store_tokens(Path(auth_env["DRCHRONO_TOKEN_STORE"]), access_token_valid=access_token_valid)
    status, elapsed = run_auth(auth_env, "status")
    print(f"auth status gave up after {elapsed:.2f}s (process start included)")
    assert status.returncode == 1
    assert elapsed < 10
    lines = status.stderr.splitlines()
    assert len(lines) == 1, status.stderr
    assert lines[0].startswith("error: ")
    assert_names_the_address(lines[0], closed_url)
    assert "1 attempt)" in lines[0]
    assert "Traceback" not in status.stderr
    # Never reached, the API said nothing about the token.
    assert "accept" not in status.stdout + status.stderr
    assert "Account:" not in status.stdout
    assert STORED_ACCESS_TOKEN not in status.stdout + status.stderr


def test_auth_login_refuses_an_unreachable_api_before_printing_the_authorize_url(
    auth_env: dict[str, str], closed_url: str
) -> None:
    login, elapsed = run_auth(auth_env, "login", "--port", "0", "--no-browser", "--timeout", "30")
    print(f"auth login gave up after {elapsed:.2f}s (process start included)")
    assert login.returncode == 1
    assert elapsed < 10
    lines = login.stderr.splitlines()
    assert len(lines) == 1, login.stderr
    assert_names_the_address(lines[0], closed_url)
    assert "/o/authorize/" not in login.stdout
    assert "Traceback" not in login.stderr
