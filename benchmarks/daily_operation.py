"""Benchmark: requests per simulated morning of daily operation, against the incremental floor.

    .venv/bin/python benchmarks/daily_operation.py --mornings 90 --size small large

Drives the code location's sensor and automation (as the daemons would) through simulated
mornings against the sandbox's evolving practice, and prints for each morning the API
requests spent and the floor: per ``since`` query max(1, ceil(changed rows / 250)), plus one
listing of each snapshot resource. ``--size`` picks the sandbox practice: ``small`` (3 doctors,
300 patients, about 27 appointments a weekday) or ``large`` (8 doctors, 5,000 patients,
about 100 a weekday); each size runs in turn. Last, how many practices one API application
(500 requests an hour) keeps current at each size's cost: with a day's budget, and with the
budget of the four hours after the sync hour (every practice's sweep in one zone's morning).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.support.simulation import Morning, incremental_floor
from drchrono_sandbox import PracticeSize, SandboxConfig, SandboxServer

REQUESTS_PER_HOUR = 500  # drchrono's budget for one API application, all its practices
MORNING_HOURS = 4


def simulate(size: PracticeSize, start: dt.date, mornings: int, seed: int) -> tuple[int, int]:
    """Print each morning's requests and floor; return the totals."""
    first = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(4, 30), dt.UTC)
    end = start + dt.timedelta(days=mornings)
    total_requests = total_floor = 0
    with (
        tempfile.TemporaryDirectory() as folder,
        SandboxServer(
            SandboxConfig(seed=seed, start=start, end=end, clock=first, size=size)
        ) as sandbox,
    ):
        morning = Morning(sandbox, Path(folder))
        sync_sensor.clock = sandbox.state.clock.now
        previous = dt.datetime.combine(start, dt.time(), dt.UTC)
        print("morning      requests  floor")
        for number in range(mornings):
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
    return total_requests, total_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 1, 1))
    parser.add_argument("--mornings", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", nargs="+", choices=("small", "large"), default=["small"])
    args = parser.parse_args()
    summary = []
    for name in args.size:
        print(f"\n== {name} practice, {args.mornings} mornings")
        began = time.perf_counter()
        requests, floor = simulate(
            PracticeSize.from_name(name), args.start, args.mornings, args.seed
        )
        a_morning = requests / args.mornings
        summary.append(
            f"{name}: {requests} requests, floor {floor} ({requests / floor:.2f}x), "
            f"{a_morning:.1f} a morning (floor {floor / args.mornings:.1f}), "
            f"{time.perf_counter() - began:.0f} s; one application keeps "
            f"{int(REQUESTS_PER_HOUR * 24 / a_morning)} such practices current a day, "
            f"{int(REQUESTS_PER_HOUR * MORNING_HOURS / a_morning)} within {MORNING_HOURS} hours "
            "of one sync hour"
        )
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
