"""``make demo``: materialize a week of every asset from the bundled sandbox API.

Starts the sandbox on a free port, points the real ``dagster asset materialize`` CLI at it,
then prints where the Parquet files are and how many rows each asset got.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from drchrono_assets.assets.bi import DATABASE_NAME
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.partitions import DayWindow
from drchrono_assets.sandbox import SandboxServer

DEMO_WEEK = ("2024-03-04", "2024-03-10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first", default=DEMO_WEEK[0], help="first day (YYYY-MM-DD)")
    parser.add_argument("--last", default=DEMO_WEEK[1], help="last day (YYYY-MM-DD)")
    parser.add_argument("--data-root", default="data", help="where the Parquet datasets go")
    args = parser.parse_args()

    dagster_home = Path(".dagster_home").resolve()
    dagster_home.mkdir(exist_ok=True)
    data_root = Path(args.data_root).resolve()
    with SandboxServer(start=dt.date(2024, 1, 1), end=dt.date(2024, 6, 30)) as sandbox:
        env = {
            **os.environ,
            **sandbox.env(),
            "DAGSTER_HOME": str(dagster_home),
            "DRCHRONO_DATA_ROOT": str(data_root),
            "DRCHRONO_START_DATE": "2024-01-01",
            "DRCHRONO_TOKEN_STORE": str(dagster_home / "sandbox-tokens.json"),
        }
        print(f"sandbox drchrono API at {sandbox.url}", flush=True)
        command = [
            "dagster", "asset", "materialize",
            "-m", "drchrono_assets.definitions",
            "--select", "*",
            "--partition-range", f"{args.first}...{args.last}",
        ]  # fmt: skip
        bin_dir = Path(sys.executable).parent
        subprocess.run([str(bin_dir / command[0]), *command[1:]], env=env, check=True)
        requests = sandbox.state.stats.snapshot()["api_requests"]

    print(f"\nMaterialized {args.first}...{args.last} with {requests} API requests.")
    print(f"Parquet datasets under {data_root}:")
    window = DayWindow(dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.last))
    for name in [spec.name for spec in RESOURCES] + ["billing_report"]:
        folder = data_root / name
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        rows = dataset.count_rows(filter=ds.field("date").isin(window.partition_keys))
        print(f"  {name:<22} {rows:>6} rows  {folder}/date=*/part-0.parquet")
    aging = data_root / "ar_aging" / "part-0.parquet"
    print(f"  {'ar_aging':<22} {ds.dataset(aging).count_rows():>6} rows  {aging}")
    print(f"  {'bi_duckdb':<22} {'':>11} {data_root / DATABASE_NAME} (views for BI tools)")
    dagster = Path(sys.executable).parent / "dagster"
    print(f"\nBrowse the runs: DAGSTER_HOME={dagster_home} {dagster} dev -w workspace.yaml")


if __name__ == "__main__":
    main()
