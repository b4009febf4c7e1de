"""Benchmark: one code location holding many practices.

    .venv/bin/python benchmarks/many_practices.py --practices 1 10 100 --operated 1 10 100

For each count of ``--practices``, a ``dg`` project with that many ``DrchronoPractice``
components (one ``defs.yaml`` each) is written to a temporary folder, and the benchmark
prints: the time and peak memory of loading its definitions in a fresh process (what a code
server, ``dagster dev`` or a run worker pays at start), and the wall time of ``dg check
defs`` on it. Target: 100 practices load in under 15 seconds on a 2-core machine.

For each count of ``--operated``, that many practices of one sandbox application run
``--mornings`` simulated mornings of daily operation in one code location (every sensor
and automation, as the daemons would), and it prints the API requests a morning of each
practice: their mean, least and most, and the operation's wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.support.practices_simulation import PracticesMorning
from drchrono_assets_tests.support.projects import write_project
from drchrono_assets_tests.support.simulation import START
from drchrono_sandbox import SandboxConfig, SandboxServer

BIN = Path(sys.executable).parent
_LOAD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
import dagster as dg
defs = dg.load_from_defs_folder(path_within_project=__import__("pathlib").Path(sys.argv[1]))
assets = len(list(defs.resolve_all_asset_keys()))
print(json.dumps({"seconds": time.perf_counter() - started, "assets": assets,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(count: int, folder: Path) -> dict[str, float]:
    """Load time, peak memory and ``dg check defs`` time of a project of ``count`` practices."""
    practices = {
        f"clinic_{n:03}": {"name": f"clinic_{n:03}", "data_root": str(folder / f"clinic_{n:03}")}
        for n in range(count)
    }
    project, _ = write_project(folder, practices)
    env = {**os.environ, "PYTHONPATH": str(project), "HOME": str(folder)}
    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD, str(project)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures = json.loads(loaded.stdout.strip().splitlines()[-1])
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "dg"), "check", "defs"], cwd=project, env=env, capture_output=True, check=True
    )
    figures["dg_check_defs_seconds"] = time.perf_counter() - started
    return figures


def requests_a_morning(count: int, mornings: int, folder: Path) -> dict[int, float]:
    """Each practice's API requests a morning, over ``mornings`` simulated mornings of
    ``count`` practices of one application, after the first (which fills their history)."""
    first = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), dt.UTC)
    end = START + dt.timedelta(days=mornings + 1)
    config = SandboxConfig(practices=count, start=START, end=end, clock=first)
    with SandboxServer(config) as sandbox:
        sync_sensor.clock = sandbox.state.clock.now  # the sensor's mornings are the sandbox's
        morning = PracticesMorning(sandbox, folder, connected=count)
        morning.run()
        sandbox.state.stats.reset()
        for number in range(1, mornings + 1):
            sandbox.state.clock.set(first + dt.timedelta(days=number))
            morning.run()
        by_practice = sandbox.state.stats.snapshot()["by_practice"]
    return {int(index): by_practice.get(str(index), 0) / mornings for index in range(count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--operated", type=int, nargs="*", default=[1, 10, 100])
    parser.add_argument("--mornings", type=int, default=3)
    args = parser.parse_args()
    print(f"{'practices':>9} {'assets':>7} {'load s':>7} {'peak MiB':>9} {'dg check defs s':>16}")
    for count in args.practices:
        with tempfile.TemporaryDirectory() as folder:
            figures = measure(count, Path(folder))
        print(
            f"{count:>9} {figures['assets']:>7} {figures['seconds']:>7.1f} "
            f"{figures['peak_rss_mib']:>9.0f} {figures['dg_check_defs_seconds']:>16.1f}"
        )
    for count in args.operated:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            per_practice = list(requests_a_morning(count, args.mornings, Path(folder)).values())
        print(
            f"{count} practice(s) operated, {args.mornings} mornings: requests a morning per "
            f"practice {sum(per_practice) / count:.1f} (least {min(per_practice):.1f}, most "
            f"{max(per_practice):.1f}); {time.perf_counter() - started:.0f} s"
        )


if __name__ == "__main__":
    main()
