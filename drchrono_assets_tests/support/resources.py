"""The API resource and the Dagster resources, bound to a sandbox, with fast retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.sandbox import fresh_refresh_token
from drchrono_sandbox import SandboxServer

# Fast retries so fault-injection tests take milliseconds, a budget that never waits.
TEST_TUNING: dict[str, Any] = {
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "requests_per_hour": 1_000_000,
    "requests_per_second": 10_000,
}


def api_for(env: dict[str, str], **overrides: Any) -> DrchronoApiResource:
    """The API resource for the ``DRCHRONO_*`` variables ``env``, tuned for tests."""
    config = {
        "base_url": env["DRCHRONO_BASE_URL"],
        "client_id": env["DRCHRONO_CLIENT_ID"],
        "client_secret": env["DRCHRONO_CLIENT_SECRET"],
        "refresh_token": env["DRCHRONO_REFRESH_TOKEN"],
        "token_store": env["DRCHRONO_TOKEN_STORE"],
        **TEST_TUNING,
    }
    return DrchronoApiResource(**{**config, **overrides})


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
