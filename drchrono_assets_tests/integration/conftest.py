"""Fixtures of the integration tests: a PostgreSQL server, a practice after its first
simulated morning, and ``auth login`` processes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drchrono_assets_tests.support.login import AUTH, LoginProcess
from drchrono_assets_tests.support.postgres_server import PostgresServer
from drchrono_assets_tests.support.simulation import AfterFirstMorning, evolving_practice


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server; each test creates the databases it uses."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def after_first_morning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AfterFirstMorning]:
    """Day 10 of an evolving practice, its first simulated morning swept and its runs done;
    the change sensor's clock follows the sandbox's."""
    with evolving_practice(tmp_path, monkeypatch, first_morning=10, days=20) as practice:
        practice.morning.run()
        yield practice


@pytest.fixture
def start_login() -> Iterator[Callable[..., LoginProcess]]:
    """Starts ``auth login --port 0 --no-browser ARGS`` processes; kills those left over."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], *args: str) -> LoginProcess:
        process = subprocess.Popen(
            [*AUTH, "login", "--port", "0", "--no-browser", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return LoginProcess(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
