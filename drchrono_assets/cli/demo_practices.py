"""``drchrono-assets demo --practices N``: the demo's week for N practices of one sandbox
API application, as a deployment of many practices runs them.

Each practice is a ``DrchronoPractice`` component (``clinic_a``, ``clinic_b``, ...) of a
``dg`` project written under ``.dagster_home/practices``, connected with the real ``auth
login`` (the sandbox approves at once: no browser), and all are materialized in one run of
``dagster asset materialize`` into a data root each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests
from upath import UPath

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.cli.practices_project import write_practices_project
from drchrono_assets.cli.run_progress import LOG_NAME, run_logged
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveDataset
from drchrono_sandbox import SandboxConfig, SandboxServer

PACKAGE = "demo_practices"
AUTHORIZE = "/o/authorize/"


def practice_names(count: int) -> list[str]:
    """``clinic_a``, ``clinic_b``, ...: the demo's practices, the sandbox's in order."""
    return [f"clinic_{chr(ord('a') + index)}" for index in range(count)]


def connect(name: str, index: int, defs: Path, env: dict[str, str]) -> None:
    """``auth login NAME`` for the sandbox's practice ``index``; exits naming the practice
    when the login fails."""
    command = [str(Path(sys.executable).parent / "drchrono-assets"), "auth", "login", name]
    command += ["--defs", str(defs), "--port", "0", "--no-browser"]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as login:
        assert login.stdout is not None
        for line in login.stdout:
            if AUTHORIZE in line:
                # The browser's part: the sandbox approves and redirects to the login's port.
                requests.get(f"{line.strip()}&practice={index}", timeout=30)
                break
        _, errors = login.communicate(timeout=60)
    if login.returncode != 0:
        # The login's own one-line error, never a traceback wall.
        reason = (errors.strip().splitlines() or ["no message"])[-1]
        sys.exit(f"error: connecting practice {name} failed: {reason}")


def materialize_practices(
    count: int, window: DayWindow, start: str, dagster_home: Path, data_root: Path
) -> list[str]:
    """``count`` practices of one sandbox application, connected, and every asset of each
    for ``window`` in one run; returns their names."""
    names = practice_names(count)
    project = dagster_home / "practices"
    with SandboxServer(SandboxConfig(practices=count)) as sandbox:
        attributes = {
            name: {
                "name": name,
                "base_url": sandbox.url,
                "start_date": start,
                "data_root": str(data_root / name),
            }
            for name in names
        }
        shutil.rmtree(project, ignore_errors=True)  # the last demo's
        defs = write_practices_project(project, PACKAGE, attributes)
        env = {
            **os.environ,
            "DRCHRONO_CLIENT_ID": sandbox.client_id,
            "DRCHRONO_CLIENT_SECRET": sandbox.client_secret,
            "DRCHRONO_TOKEN_STORE": str(dagster_home / "sandbox-tokens.json"),
            "DAGSTER_HOME": str(dagster_home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(project), os.getenv("PYTHONPATH")])),
        }
        print(f"  sandbox drchrono API at {sandbox.url}: {count} practices, one application")
        for index, name in enumerate(names):
            connect(name, index, defs, env)
        print(f"  connected {', '.join(names)} (auth login, each its own refresh token)")
        log_path = dagster_home / LOG_NAME
        print(f"  dagster asset materialize, steps done: (full log: {log_path})", flush=True)
        started = time.monotonic()
        command = [
            "dagster", "asset", "materialize",
            "-f", str(project / PACKAGE / "definitions.py"),
            "--select", "*",
            "--partition-range", f"{window.first}...{window.last}",
        ]  # fmt: skip
        if not run_logged(command, env, log_path):
            sys.exit(f"\nThe run failed; the error is in {log_path}")
        stats = sandbox.state.stats.snapshot()
    by_practice = ", ".join(
        f"{name} {stats['by_practice'].get(str(index), 0)}" for index, name in enumerate(names)
    )
    print(f"  done in {time.monotonic() - started:.0f} s; API requests by practice: {by_practice}")
    return names


def summarize_practices(window: DayWindow, names: list[str], data_root: Path) -> None:
    """The rows of every dataset of each practice for ``window``, a column a practice."""
    print(f"\nRows under {data_root}/<practice>:")
    print(f"  {'dataset':<22}" + "".join(f" {name:>10}" for name in names))
    for dataset in [spec.name for spec in RESOURCES] + ["billing_report"]:
        counts = [
            HiveDataset(UPath(data_root / name), dataset).row_count(window.partition_keys)
            for name in names
        ]
        print(f"  {dataset:<22}" + "".join(f" {rows:>10}" for rows in counts))
