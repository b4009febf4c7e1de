"""Fixtures of the sandbox's tests: a sandbox of each module's own, disarmed after each test,
a session and bearer headers; the histories of an evolving practice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from drchrono_assets_tests.support.evolving import END, START, VERSIONED, ZONE, History
from drchrono_assets_tests.support.sandbox import bearer
from drchrono_sandbox import SandboxConfig, SandboxServer
from drchrono_sandbox.evolution import history_end
from drchrono_sandbox.practice import Practice


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of the module's own: its tests arm faults and count requests."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(module_sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The module's sandbox; faults, latency and chaos a test armed are cleared after it."""
    yield module_sandbox
    module_sandbox.state.faults.clear()
    module_sandbox.state.latency_ms = 0
    module_sandbox.state.chaos = None


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """One HTTP session for the module."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def headers(http: requests.Session, sandbox: SandboxServer) -> dict[str, str]:
    """A new access token's headers for the module's sandbox, with the API version."""
    return {**bearer(http, sandbox), "X-DRC-API-Version": "v2014_08"}


@pytest.fixture(scope="module")
def histories() -> dict[str, dict[Any, History]]:
    """Every versioned record's history, from a practice whose clock is past them all."""
    practice = Practice(SandboxConfig(start=START, end=END, clock=history_end(END), timezone=ZONE))
    return {
        name: {r["id"]: practice.history(name, r["id"]) for r in practice.current(name)}
        for name in VERSIONED
    }
