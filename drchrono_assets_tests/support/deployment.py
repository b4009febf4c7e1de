"""The deployed stack: ``dagster-webserver`` and ``dagster-daemon`` loading ``workspace.yaml``
on a throwaway PostgreSQL server and the bundled sandbox API, as process groups of their own."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from drchrono_assets.definitions import defs
from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.postgres_server import PostgresServer
from drchrono_assets_tests.support.processes import (
    BIN,
    free_port,
    stop,
    subprocess_env,
    tail,
    wait_for,
)
from drchrono_assets_tests.support.sandbox import fresh_refresh_token
from drchrono_sandbox import SandboxServer

STARTUP_SECONDS = 120
#: Every asset of the code location, by name.
ALL_ASSETS = sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())
WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


@dataclass
class Deployment:
    """The running webserver and daemon, and where they keep things."""

    url: str
    home: Path
    env: dict[str, str]
    data_root: Path
    logs: list[Path]
    workspace: dict[str, Any] | None = None

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a GraphQL query to the webserver, which must answer no errors."""
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tails(self) -> str:
        """The end of the webserver's and the daemon's logs."""
        return "\n".join(f"--- {log.name}\n{tail(log)}" for log in self.logs)


@contextmanager
def deployed(sandbox: SandboxServer, tmp: Path) -> Iterator[Deployment]:
    """The webserver and daemon on a new PostgreSQL server, once the code location loaded."""
    processes: list[subprocess.Popen] = []
    with PostgresServer() as postgres:
        database = f"dagster_{uuid.uuid4().hex[:8]}"
        postgres.create_database(database)
        env = subprocess_env(
            {
                **sandbox.env(),
                "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(sandbox),
                "DRCHRONO_TOKEN_STORE": str(tmp / "secrets" / "tokens.json"),
                "DRCHRONO_DATA_ROOT": str(tmp / "data"),
                **postgres.dagster_env(database),
            },
            tmp,
        )
        home = Path(env["DAGSTER_HOME"])
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        port = free_port()
        deployment = Deployment(
            url=f"http://127.0.0.1:{port}",
            home=home,
            env=env,
            data_root=tmp / "data",
            logs=[tmp / "webserver.log", tmp / "daemon.log"],
        )
        commands = [
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        ]  # fmt: skip
        # Started together on a fresh database, the webserver and the daemon both create
        # Dagster's tables and one fails ("type jobs already exists"): create them first,
        # as a deployment's migration step does.
        subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"],
            cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        try:
            for command, log in zip(commands, deployment.logs, strict=True):
                with log.open("wb") as out:
                    processes.append(
                        subprocess.Popen(
                            command,
                            cwd=REPO,
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,  # its own process group, stopped as one
                        )
                    )

            def location_loaded() -> dict[str, Any] | None:
                for process in processes:
                    if process.poll() is not None:
                        pytest.fail(f"{process.args[0]} exited\n{deployment.log_tails()}")
                try:
                    data = deployment.graphql(WORKSPACE_QUERY)
                except requests.RequestException:
                    return None
                entries = data["workspaceOrError"].get("locationEntries") or []
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return data
                return None

            loaded = wait_for(
                "the webserver to load the code location",
                location_loaded,
                STARTUP_SECONDS,
                deployment.log_tails,
            )
            deployment.workspace = loaded
            yield deployment
        finally:
            for process in reversed(processes):
                stop(process)


@contextmanager
def production_instance(deployment: Deployment) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance, on PostgreSQL through the production instance config."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in deployment.env.items():
            if key.startswith("DAGSTER_PG_"):
                patch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
            yield instance
