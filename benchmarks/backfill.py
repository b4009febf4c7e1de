"""Benchmark: requests, wall time and peak memory of a backfill against the sandbox API.

    .venv/bin/python benchmarks/backfill.py --first 2024-01-01 --last 2024-03-31 --latency-ms 100

The sandbox runs in its own process with added latency; each scenario runs in a fresh child
process so its peak memory is its own. Scenarios:
- ``single-run``: every asset over the whole range as one run (what a Dagster backfill does);
- ``per-day``: the obvious approach, one run per day (``--per-day-sample K`` runs every K-th
  day and scales the figures up, to keep the baseline short).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests


def _scenario(
    env: dict[str, str], days: list[tuple[str, str]], queue: multiprocessing.Queue
) -> None:
    os.environ.update(env)
    import dagster as dg

    from drchrono_assets.day_window import DayWindow
    from drchrono_assets.io_managers import HiveParquetIOManager
    from drchrono_assets.practice import PracticeDefinitions
    from drchrono_assets.resources import DrchronoApiResource
    from drchrono_assets.settings import PracticeSettings

    resources = {
        "drchrono": DrchronoApiResource.from_env().model_copy(
            update={"requests_per_hour": 1_000_000}
        ),
        "parquet_io_manager": HiveParquetIOManager(data_root=env["DRCHRONO_DATA_ROOT"]),
    }
    started = time.perf_counter()
    for first, last in days:
        dg.materialize(
            PracticeDefinitions.build(PracticeSettings.from_env()).resource_assets,
            resources=resources,
            tags=DayWindow.from_partition_keys([first, last]).run_tags,
        )
    queue.put(
        {
            "wall_seconds": time.perf_counter() - started,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _run(
    name: str, sandbox_url: str, env: dict[str, str], days: list[tuple[str, str]]
) -> dict[str, Any]:
    requests.post(f"{sandbox_url}/_sandbox/stats/reset", timeout=10)
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_scenario, args=(env, days, queue))
    child.start()
    figures = queue.get(timeout=3600)
    child.join()
    stats = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()
    return {"scenario": name, "requests": stats["requests"], **figures}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--first", default="2024-01-01")
    parser.add_argument("--last", default="2024-03-31")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--per-day-sample", type=int, default=7, help="run every K-th day")
    args = parser.parse_args()

    first, last = dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.last)
    all_days = [first + dt.timedelta(n) for n in range((last - first).days + 1)]
    sampled = all_days[:: args.per_day_sample]

    sandbox = subprocess.Popen(
        [sys.executable, "-m", "drchrono_sandbox", "--port", "0",
         "--start", "2024-01-01", "--end", "2024-06-30", "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        exports = {}
        for line in sandbox.stdout:
            match = re.match(r"export (DRCHRONO_\w+)=(\S+)", line.strip())
            if match:
                exports[match[1]] = match[2].strip("'\"")
            if len(exports) == 4:
                break
        url = exports["DRCHRONO_BASE_URL"]
        with tempfile.TemporaryDirectory() as scratch:
            results = []
            for name, windows in (
                ("single-run", [(args.first, args.last)]),
                ("per-day", [(d.isoformat(), d.isoformat()) for d in sampled]),
            ):
                env = {
                    **exports,
                    "DRCHRONO_DATA_ROOT": f"{scratch}/{name}/data",
                    "DRCHRONO_TOKEN_STORE": f"{scratch}/tokens.json",
                    "DAGSTER_HOME": scratch,
                }
                results.append(_run(name, url, env, windows))
    finally:
        sandbox.terminate()
        sandbox.communicate(timeout=30)

    scale = len(all_days) / len(sampled)
    single, per_day = results
    print(f"backfill {args.first}...{args.last} ({len(all_days)} days), "
          f"sandbox latency {args.latency_ms} ms, 10 assets")  # fmt: skip
    print(f"{'scenario':<34}{'requests':>10}{'wall s':>10}{'peak MiB':>10}")
    print(f"{'single run for the range':<34}{single['requests']:>10}"
          f"{single['wall_seconds']:>10.1f}{single['peak_rss_mib']:>10.0f}")  # fmt: skip
    print(f"{f'one run per day (1 in {args.per_day_sample}, scaled)':<34}"
          f"{per_day['requests'] * scale:>10.0f}{per_day['wall_seconds'] * scale:>10.1f}"
          f"{per_day['peak_rss_mib']:>10.0f}")  # fmt: skip
    print(f"per-day / single-run requests: {per_day['requests'] * scale / single['requests']:.0f}x")


if __name__ == "__main__":
    main()
