"""``drchrono-assets ui`` (``make ui``): the Dagster UI on the demo's data, with a live
sandbox practice behind it.

Starts the sandbox in live mode (its practice changes as real days pass, so the
``drchrono_changes`` sensor has a morning to sweep), materializes the week before yesterday
the first time, starts every sensor (daily operation, freshness, automation), and runs
``dagster dev`` with the sandbox's settings in its environment until Ctrl-C. Everything it
keeps is under one folder (``live/`` by default): the Dagster home, the data and the tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from drchrono_assets.cli.demo import (
    check_inherited_settings,
    checked,
    local_dagster_home,
    materialize,
    summarize,
)
from drchrono_assets.day_window import DayWindow
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.config import SandboxConfig

# The live practice: history before the first launch, bookings a year ahead of it.
HISTORY_DAYS = 35
FUTURE_DAYS = 365
FIRST_DAYS = 7  # materialized at the first launch, up to the day before yesterday
PRACTICE_FILE = "practice.json"
DAGSTER = Path(sys.executable).parent / "dagster"


@dataclasses.dataclass(frozen=True)
class LivePractice:
    """Which practice a live folder holds: fixed at its first launch, so later launches
    serve the practice its data came from."""

    sandbox_start: str
    sandbox_end: str
    start_date: str  # DRCHRONO_START_DATE: the first materialized day

    @classmethod
    def first(cls, today: dt.date) -> LivePractice:
        first_day = today - dt.timedelta(days=FIRST_DAYS + 1)
        return cls(
            sandbox_start=(today - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
            sandbox_end=(today + dt.timedelta(days=FUTURE_DAYS)).isoformat(),
            start_date=first_day.isoformat(),
        )

    @classmethod
    def of(cls, folder: Path, today: dt.date) -> tuple[LivePractice, bool]:
        """The folder's practice, and whether it is new (nothing materialized yet)."""
        path = folder / PRACTICE_FILE
        if path.exists():
            return cls(**json.loads(path.read_text())), False
        practice = cls.first(today)
        path.write_text(json.dumps(dataclasses.asdict(practice)))
        return practice, True

    def sandbox(self, port: int) -> SandboxConfig:
        return SandboxConfig(
            start=dt.date.fromisoformat(self.sandbox_start),
            end=dt.date.fromisoformat(self.sandbox_end),
            live=True,
            port=port,
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a SIGTERM stops dagster dev and the sandbox as Ctrl-C does


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the UI on the live folder's practice, materializing its first week once."""
    # Ctrl-C reaches dagster dev too, however this was started: a SIGINT ignored here (a
    # background job of a script) would stay ignored in it, and it could not be stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="drchrono-assets ui", description=__doc__)
    parser.add_argument("--folder", default="live", help="where everything it keeps goes")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port")
    parser.add_argument("--sandbox-port", type=int, default=0, help="0 picks a free one")
    args = parser.parse_args(argv)
    checked(check_inherited_settings)

    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    dagster_home = local_dagster_home(folder / "dagster_home")
    data_root = folder / "data"
    today = dt.datetime.now(dt.UTC).date()
    practice, new = LivePractice.of(folder, today)
    if dt.date.fromisoformat(practice.sandbox_end) <= today:
        sys.exit(f"The live practice in {folder} has ended: remove the folder to start anew.")
    with SandboxServer(practice.sandbox(args.sandbox_port)) as sandbox:
        env = {
            **sandbox.env(),
            "DAGSTER_HOME": str(dagster_home),
            "DRCHRONO_DATA_ROOT": str(data_root),
            "DRCHRONO_START_DATE": practice.start_date,
            "DRCHRONO_TIMEZONE": sandbox.config.timezone,
            "DRCHRONO_TOKEN_STORE": str(dagster_home / "sandbox-tokens.json"),
            # Sweep at once, whatever the hour the UI is opened.
            "DRCHRONO_SYNC_HOUR": "0",
        }
        if new:
            window = DayWindow(
                dt.date.fromisoformat(practice.start_date), today - dt.timedelta(days=2)
            )
            print(f"drchrono_assets UI: first, every asset for {window.first}...{window.last}")
            materialize(sandbox, window, dagster_home, env)
            summarize(window, dagster_home, data_root)
        serve(args.port, {**os.environ, **env}, data_root)


def serve(port: int, env: dict[str, str], data_root: Path) -> None:
    """Start every sensor, then ``dagster dev`` in the foreground until Ctrl-C."""
    workspace = ["-w", str(Path(__file__).resolve().parents[2] / "workspace.yaml")]
    subprocess.run(
        [str(DAGSTER), "sensor", "start", "--start-all", *workspace],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(
        f"\nThe UI: http://127.0.0.1:{port}  (Ctrl-C stops it and the sandbox)\n"
        f"  sandbox drchrono API at {env['DRCHRONO_BASE_URL']}, a live practice\n"
        f"  data under {data_root}\n"
        "  the drchrono_changes sensor sweeps yesterday within minutes: Automation, then "
        "Runs; billing_report follows by automation\n",
        flush=True,
    )
    with subprocess.Popen([str(DAGSTER), "dev", *workspace, "-p", str(port)], env=env) as dev:
        try:
            dev.wait()
        except KeyboardInterrupt:  # dagster dev got the Ctrl-C too: let it shut down
            dev.send_signal(signal.SIGINT)
            dev.wait()
