"""``drchrono-assets auth``: real processes and real HTTP against the sandbox."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from drchrono_assets.api.token_store import FileTokenStore
from drchrono_assets.cli.auth import DEFAULT_SCOPES
from drchrono_assets.cli.auth_callback import is_loopback
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.login import AUTH, LoginProcess
from drchrono_assets_tests.support.processes import subprocess_env
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxServer

pytestmark = pytest.mark.processes


def code_flow_env(sandbox_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The child's environment without DRCHRONO_REFRESH_TOKEN: only the code flow connects."""
    env = subprocess_env(sandbox_env, tmp_path)
    env.pop("DRCHRONO_REFRESH_TOKEN", None)
    return env


def run_status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUTH, "status"], env=env, capture_output=True, text=True, timeout=30)


def code_grants(sandbox: SandboxServer) -> int:
    return sandbox.state.stats.snapshot()["authorization_code_grants"]


def authorize_query(url: str) -> dict[str, str]:
    """The parameters of the authorize URL ``url``, each with its one value."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def start_counted_login(
    sandbox: SandboxServer,
    sandbox_env: dict[str, str],
    tmp_path: Path,
    start_login: Callable[..., LoginProcess],
    *args: str,
) -> tuple[dict[str, str], int, LoginProcess]:
    """``auth login *args`` started in the code-flow environment: that environment, the
    sandbox's authorization-code grants before it, and the process."""
    env = code_flow_env(sandbox_env, tmp_path)
    grants_before = code_grants(sandbox)
    return env, grants_before, start_login(env, *args)


def failure_after_callback(
    login: LoginProcess, params: Callable[[dict[str, str]], dict[str, str]]
) -> str:
    """The login's stderr, once its redirect URI, sent ``params(the authorize URL's query)``,
    answered 400 and the login failed (exit code 1) without a traceback."""
    query = authorize_query(login.authorize_url())
    answer = requests.get(query["redirect_uri"], params=params(query), timeout=10)
    assert answer.status_code == 400
    returncode, _stdout, stderr = login.finish()
    assert returncode == 1
    assert "Traceback" not in stderr
    return stderr


def test_login_connects_an_account_through_the_sandbox(
    quiet_sandbox, sandbox_env, tmp_path, start_login, monkeypatch
) -> None:
    env, grants_before, login = start_counted_login(
        quiet_sandbox, sandbox_env, tmp_path, start_login
    )
    store = Path(env["DRCHRONO_TOKEN_STORE"])

    url = login.authorize_url()
    split = urlsplit(url)
    assert f"{split.scheme}://{split.netloc}" == quiet_sandbox.url
    assert split.path == "/o/authorize/"
    query = authorize_query(url)
    assert query["response_type"] == "code"
    assert query["client_id"] == quiet_sandbox.client_id
    assert query["scope"].split() == list(DEFAULT_SCOPES)
    assert all(scope.endswith(":read") for scope in query["scope"].split())
    redirect = urlsplit(query["redirect_uri"])
    assert (redirect.scheme, redirect.hostname, redirect.path) == ("http", "127.0.0.1", "/callback")
    assert redirect.port and redirect.port > 0
    assert len(query["state"]) >= 32

    # "Click" it: the sandbox approves and 302s to the listener, which requests follows.
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert page.url.startswith(query["redirect_uri"])
    assert "close this tab" in page.text

    returncode, stdout, stderr = login.finish()
    assert returncode == 0, stderr
    stored = json.loads(store.read_text())
    secrets = [stored["access_token"], stored["refresh_token"], quiet_sandbox.client_secret]
    assert all(secrets)
    assert stored["scope"] == query["scope"]
    assert code_grants(quiet_sandbox) == grants_before + 1
    account = quiet_sandbox.state.practice.get(
        "users", str(quiet_sandbox.state.practice.account_user_id)
    )
    assert f"{account['username']} (user id {account['id']})" in stdout
    assert str(store) in stdout
    assert "code=" not in stdout + stderr
    for secret in secrets:
        assert secret not in stdout + stderr

    status = run_status(env)
    assert status.returncode == 0, status.stderr
    assert account["username"] in status.stdout
    assert str(account["id"]) in status.stdout
    assert "Access token expires: " in status.stdout
    assert "(in 48 hours)" in status.stdout
    assert str(store) in status.stdout
    after_status = json.loads(store.read_text())
    for secret in [*secrets, after_status["access_token"], after_status["refresh_token"]]:
        assert secret not in status.stdout + status.stderr

    # The assets' resource, configured the same way, runs on the stored tokens alone.
    for name, value in env.items():
        if name.startswith("DRCHRONO_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("DRCHRONO_REFRESH_TOKEN", raising=False)
    api = DrchronoApiResource.from_env()
    assert api.refresh_token is None
    assert api.client.list_records("/api/doctors")
    assert code_grants(quiet_sandbox) == grants_before + 1


def test_a_wrong_state_is_turned_away_and_the_login_waits_for_its_own(
    quiet_sandbox, sandbox_env, tmp_path, start_login
) -> None:
    env, grants_before, login = start_counted_login(
        quiet_sandbox, sandbox_env, tmp_path, start_login
    )
    url = login.authorize_url()
    query = authorize_query(url)

    forged = requests.get(
        query["redirect_uri"], params={"code": "forged", "state": "wrong"}, timeout=10
    )
    assert forged.status_code == 400
    # The answer tells the sender nothing: not the state, not what was wrong.
    for revealing in (query["state"], "forged", "state", "code"):
        assert revealing not in forged.text
    assert login.process.poll() is None  # still waiting

    page = requests.get(url, timeout=10)  # the real redirect, through the sandbox
    assert page.status_code == 200
    assert "close this tab" in page.text

    returncode, stdout, stderr = login.finish()
    assert returncode == 0, stderr
    assert "Connected drchrono account" in stdout
    assert "Ignored a request" in stderr
    assert "Traceback" not in stderr
    stored = json.loads(Path(env["DRCHRONO_TOKEN_STORE"]).read_text())
    assert stored["access_token"] not in stdout + stderr
    # Only the real code was exchanged; the forged one never reached drchrono.
    assert code_grants(quiet_sandbox) == grants_before + 1


def test_a_wrong_state_alone_stores_nothing(
    quiet_sandbox, sandbox_env, tmp_path, start_login
) -> None:
    env, grants_before, login = start_counted_login(
        quiet_sandbox, sandbox_env, tmp_path, start_login, "--timeout", "2"
    )
    stderr = failure_after_callback(login, lambda query: {"code": "forged", "state": "wrong"})
    assert "within 2 seconds (1 request(s) not from this login were ignored)" in stderr
    assert not Path(env["DRCHRONO_TOKEN_STORE"]).exists()
    assert code_grants(quiet_sandbox) == grants_before


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_a_callback_listening_beyond_this_machine_is_warned_about(
    sandbox_env, tmp_path, start_login, host: str, warned: bool
) -> None:
    env = code_flow_env(sandbox_env, tmp_path)
    login = start_login(env, "--host", host, "--timeout", "0.5")
    login.authorize_url()

    returncode, stdout, stderr = login.finish()
    assert returncode == 1  # the timeout: nobody was sent to the redirect URI
    assert stderr.count("beyond this machine") == (1 if warned else 0)
    assert "beyond this machine" not in stdout
    if warned:
        # Said before the listener's wait began (and so before it ended).
        assert stderr.index("beyond this machine") < stderr.index("within 0.5 seconds")


def test_access_denied_is_a_clear_failure(
    quiet_sandbox, sandbox_env, tmp_path, start_login
) -> None:
    env = code_flow_env(sandbox_env, tmp_path)
    login = start_login(env)
    stderr = failure_after_callback(
        login, lambda query: {"error": "access_denied", "state": query["state"]}
    )
    assert "denied" in stderr
    assert not Path(env["DRCHRONO_TOKEN_STORE"]).exists()


def test_login_times_out_clearly(sandbox_env, tmp_path, start_login) -> None:
    env = code_flow_env(sandbox_env, tmp_path)
    login = start_login(env, "--timeout", "0.5")
    login.authorize_url()

    returncode, _stdout, stderr = login.finish()
    assert returncode == 1
    assert "within 0.5 seconds" in stderr
    assert "Traceback" not in stderr


def test_status_without_tokens_says_how_to_connect(sandbox_env, tmp_path) -> None:
    env = code_flow_env(sandbox_env, tmp_path)
    status = run_status(env)
    assert status.returncode == 1
    assert "No drchrono account is connected" in status.stdout
    assert "drchrono-assets auth login" in status.stdout
    assert env["DRCHRONO_TOKEN_STORE"] in status.stdout
    assert not Path(env["DRCHRONO_TOKEN_STORE"]).exists()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_which_hosts_keep_the_callback_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- which credential drchrono refused ---------------------------------------------------


def connected_env_needing_a_refresh(sandbox_env, tmp_path) -> dict[str, str]:
    """An account connected in the token store whose access token has expired, so the next
    check refreshes; DRCHRONO_REFRESH_TOKEN unset, as after ``auth login``."""
    api_for(sandbox_env).client.current_user()  # stores a token pair
    store = FileTokenStore(Path(sandbox_env["DRCHRONO_TOKEN_STORE"]))
    stored = store.load()
    assert stored is not None
    store.save(dataclasses.replace(stored, expires_at=time.time() - 3600))
    return code_flow_env(sandbox_env, tmp_path)


def test_status_with_a_wrong_client_secret_names_the_variables_not_a_login(
    sandbox_env, tmp_path
) -> None:
    env = connected_env_needing_a_refresh(sandbox_env, tmp_path)
    env["DRCHRONO_CLIENT_SECRET"] = "WRONG-CLIENT-SECRET"
    status = run_status(env)
    assert status.returncode == 1
    assert (
        "Account: not connected: drchrono rejected DRCHRONO_CLIENT_ID/DRCHRONO_CLIENT_SECRET "
        "(HTTP 401, invalid_client from its token endpoint, refreshing the access token): copy "
        "both again from the API application's page in drchrono (Account > API); no "
        "re-authorization is needed\n"
    ) in status.stdout
    assert "auth login" not in status.stdout
    assert "WRONG-CLIENT-SECRET" not in status.stdout + status.stderr
    assert "Traceback" not in status.stderr


def test_status_with_a_spent_refresh_token_says_to_log_in_again(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = connected_env_needing_a_refresh(sandbox_env, tmp_path)
    stored = FileTokenStore(Path(env["DRCHRONO_TOKEN_STORE"])).load()
    assert stored is not None
    spent = requests.post(  # another copy of the tokens spent it
        f"{quiet_sandbox.url}/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": stored.refresh_token,
            "client_id": quiet_sandbox.client_id,
            "client_secret": quiet_sandbox.client_secret,
        },
        timeout=10,
    )
    assert spent.status_code == 200
    status = run_status(env)
    assert status.returncode == 1
    assert (
        "Account: not connected: drchrono's token endpoint refused the refresh_token grant "
        "(HTTP 400, invalid_grant): the refresh token is spent or revoked: re-authorize with "
        "`drchrono-assets auth login` or set a new DRCHRONO_REFRESH_TOKEN\n"
    ) in status.stdout
    assert "DRCHRONO_CLIENT_SECRET" not in status.stdout
    assert "(as stored; drchrono did not accept the credentials)" in status.stdout
    assert stored.refresh_token not in status.stdout + status.stderr


def test_login_with_a_wrong_client_secret_names_the_variables(
    quiet_sandbox, sandbox_env, tmp_path, start_login
) -> None:
    env = code_flow_env(sandbox_env, tmp_path)
    env["DRCHRONO_CLIENT_SECRET"] = "WRONG-CLIENT-SECRET"
    login = start_login(env)
    page = requests.get(login.authorize_url(), timeout=10)  # the sandbox checks only the id
    assert page.status_code == 200

    returncode, stdout, stderr = login.finish()
    assert returncode == 1
    assert stderr == (
        "error: drchrono rejected DRCHRONO_CLIENT_ID/DRCHRONO_CLIENT_SECRET (HTTP 401, "
        "invalid_client from its token endpoint, for the authorization_code grant): copy both "
        "again from the API application's page in drchrono (Account > API); then run "
        "`drchrono-assets auth login` again\n"
    )
    assert "WRONG-CLIENT-SECRET" not in stdout + stderr
    assert not Path(env["DRCHRONO_TOKEN_STORE"]).exists()
