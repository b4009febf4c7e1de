"""Fixtures: the bundled sandbox over real HTTP, API resources and Dagster resources bound to it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from drchrono_assets.cli.demo import local_dagster_home
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.config import DEFAULTS

SANDBOX_SPAN = (DEFAULTS.start, DEFAULTS.end)
#: The package's command line, as `pip install -e .` installs it next to this Python.
DRCHRONO_ASSETS = str(Path(sys.executable).parent / "drchrono-assets")
# Fast retries so fault-injection tests take milliseconds, a budget that never waits.
TEST_TUNING: dict[str, Any] = {
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "requests_per_hour": 1_000_000,
    "requests_per_second": 10_000,
}


REDIRECT_URI = "http://127.0.0.1:9/callback"


def authorization_code_token(http: Any, sandbox: SandboxServer) -> dict[str, Any]:
    """A token pair through the authorization-code flow (``http``: requests or a Session)."""
    authorize = http.get(
        f"{sandbox.url}/o/authorize/",
        params={
            "response_type": "code",
            "client_id": sandbox.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "patients calendar billing user",
            "state": "xyz",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert authorize.status_code == 302
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    token = http.post(
        f"{sandbox.url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    return token.json()


def fresh_refresh_token(sandbox: SandboxServer) -> str:
    """A refresh token of its own for a test, so tests never share a rotation chain."""
    return authorization_code_token(requests, sandbox)["refresh_token"]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox for tests that only read (tests that write data start their own)."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def quiet_sandbox(sandbox: SandboxServer) -> SandboxServer:
    """The shared sandbox with zeroed statistics."""
    sandbox.state.stats.reset()
    return sandbox


@pytest.fixture
def sandbox_env(quiet_sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    """``DRCHRONO_*`` variables for this test: own refresh token, token store, data root."""
    return {
        **quiet_sandbox.env(),
        "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(quiet_sandbox),
        "DRCHRONO_TOKEN_STORE": str(tmp_path / "secrets" / "tokens.json"),
        "DRCHRONO_DATA_ROOT": str(tmp_path / "data"),
    }


def api_for(env: dict[str, str], **overrides: Any) -> DrchronoApiResource:
    config = {
        "base_url": env["DRCHRONO_BASE_URL"],
        "client_id": env["DRCHRONO_CLIENT_ID"],
        "client_secret": env["DRCHRONO_CLIENT_SECRET"],
        "refresh_token": env["DRCHRONO_REFRESH_TOKEN"],
        "token_store": env["DRCHRONO_TOKEN_STORE"],
        **TEST_TUNING,
    }
    return DrchronoApiResource(**{**config, **overrides})


@pytest.fixture
def api(sandbox_env: dict[str, str]) -> DrchronoApiResource:
    return api_for(sandbox_env)


@pytest.fixture
def dagster_resources(api: DrchronoApiResource, sandbox_env: dict[str, str]) -> dict[str, Any]:
    return {
        "drchrono": api,
        "parquet_io_manager": HiveParquetIOManager(data_root=sandbox_env["DRCHRONO_DATA_ROOT"]),
    }


def resources_of_own(sandbox: SandboxServer, root: Path) -> dict[str, Any]:
    """Dagster resources for a module's runs against ``sandbox``: a refresh token, token
    store and data root (``root / "data"``) of their own."""
    env = {
        **sandbox.env(),
        "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(sandbox),
        "DRCHRONO_TOKEN_STORE": str(root / "secrets" / "tokens.json"),
    }
    return {
        "drchrono": api_for(env),
        "parquet_io_manager": HiveParquetIOManager(data_root=str(root / "data")),
    }


_CLIENT_SCRIPT = (
    "from drchrono_assets.resources import DrchronoApiResource as R; "
    "r = R.from_env().client; r.current_user(); print(r.requests_used)"
)


def api_client_process(env: dict[str, str]) -> subprocess.Popen:
    """Another process using the API resource once (``current_user``) with ``env``."""
    return subprocess.Popen(
        [sys.executable, "-c", _CLIENT_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def subprocess_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment for a child process (the Dagster CLI, a second client)."""
    dagster_home = local_dagster_home(tmp_path / "dagster_home")
    return {**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}
