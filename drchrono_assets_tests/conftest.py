"""Fixtures of both tiers: the bundled sandbox over real HTTP, API resources and Dagster
resources bound to it. Helpers live in ``support/``; this file holds fixtures only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token
from drchrono_sandbox import SandboxServer


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


@pytest.fixture
def api(sandbox_env: dict[str, str]) -> DrchronoApiResource:
    """The API resource of ``sandbox_env``."""
    return api_for(sandbox_env)


@pytest.fixture
def dagster_resources(api: DrchronoApiResource, sandbox_env: dict[str, str]) -> dict[str, Any]:
    """The Dagster resources of ``sandbox_env``: the API and the Parquet IO manager."""
    return {
        "drchrono": api,
        "parquet_io_manager": HiveParquetIOManager(data_root=sandbox_env["DRCHRONO_DATA_ROOT"]),
    }
