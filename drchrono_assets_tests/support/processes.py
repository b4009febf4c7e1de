"""Child processes of the tests: the package's command line, API clients, servers started as
a process group, and waiting on them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drchrono_assets.cli.demo import local_dagster_home

#: Where `pip install -e .` puts the command lines: next to this Python.
BIN = Path(sys.executable).parent
#: The package's command line.
DRCHRONO_ASSETS = str(BIN / "drchrono-assets")
#: Dagster's command line.
DAGSTER = str(BIN / "dagster")

_CLIENT_SCRIPT = (
    "from drchrono_assets.resources import DrchronoApiResource as R; "
    "r = R.from_env().client; r.current_user(); print(r.requests_used)"
)


def subprocess_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment for a child process (the Dagster CLI, a second client)."""
    dagster_home = local_dagster_home(tmp_path / "dagster_home")
    return {**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}


def api_client_process(env: dict[str, str]) -> subprocess.Popen:
    """Another process using the API resource once (``current_user``) with ``env``."""
    return subprocess.Popen(
        [sys.executable, "-c", _CLIENT_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, or "(no log)"."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def wait_for(what: str, check: Callable[[], Any], seconds: float, report: Callable[[], str]) -> Any:
    """``check()``'s first truthy value, polled for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}\n{report()}")
        time.sleep(1)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group we started (the code servers and run workers too), then KILL."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give the rest of its group the same grace.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
