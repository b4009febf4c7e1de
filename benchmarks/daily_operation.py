"""Benchmark: requests per simulated morning of daily operation, against the incremental floor.

    .venv/bin/python benchmarks/daily_operation.py --mornings 90

Drives the code location's sensor and automation (as the daemons would) through simulated
mornings against the sandbox's evolving practice, and prints for each morning the API
requests spent and the floor: per ``since`` query max(1, ceil(changed rows / 250)), plus one
listing of each snapshot resource.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drchrono_assets.sandbox import SandboxServer
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.simulation import Morning, incremental_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 1, 1))
    parser.add_argument("--mornings", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    first = dt.datetime.combine(args.start + dt.timedelta(days=1), dt.time(4, 30), dt.UTC)
    end = args.start + dt.timedelta(days=args.mornings)
    total_requests = total_floor = 0
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as folder,
        SandboxServer(seed=args.seed, start=args.start, end=end, clock=first) as sandbox,
    ):
        morning = Morning(sandbox, Path(folder))
        sync_sensor.clock = sandbox.state.clock.now
        previous = dt.datetime.combine(args.start, dt.time(), dt.UTC)
        print("morning      requests  floor")
        for number in range(args.mornings):
            now = first + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            before = sandbox.state.stats.snapshot()["api_requests"]
            morning.run()
            spent = sandbox.state.stats.snapshot()["api_requests"] - before
            floor = incremental_floor(sandbox, previous, now)
            previous = now
            total_requests += spent
            total_floor += floor
            print(f"{now.date()}  {spent:8d}  {floor:5d}")
    print(
        f"total: {total_requests} requests, floor {total_floor} "
        f"({total_requests / total_floor:.2f}x), {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
