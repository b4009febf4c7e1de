"""``drchrono-assets demo`` (``make demo``): materialize a week of every asset from the
bundled sandbox API.

Starts the sandbox on a free port and points the real ``dagster asset materialize`` CLI at it.
The console shows progress and a summary on one screen: each step as it finishes, the rows of
every dataset, and each check's verdict with its reason. Dagster's full log goes to a file the
summary names.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import dagster as dg
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.api.client_settings import tuning_from_env
from drchrono_assets.assets.bi import DATABASE_NAME
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.cli.demo_practices import materialize_practices, summarize_practices
from drchrono_assets.cli.run_progress import LOG_NAME, run_logged
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import DrchronoError
from drchrono_assets.io_managers import HiveDataset
from drchrono_assets.partition_keys import check_partition_range
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.config import DEFAULTS

# Monday to Friday: the last day, where the UI opens, is a working day with visits and bills.
DEMO_WEEK = ("2024-03-04", "2024-03-08")
T = TypeVar("T")
LOCAL_INSTANCE = Path(__file__).resolve().parents[2] / "deploy" / "local" / "dagster.yaml"
FRESHNESS_CHECK = "freshness_check"


def local_dagster_home(folder: Path) -> Path:
    """``folder`` as a DAGSTER_HOME with the local instance file (Dagster's SQLite storage,
    events stored in batches), unless it has an instance file of its own already."""
    folder.mkdir(parents=True, exist_ok=True)
    instance_file = folder / "dagster.yaml"
    if not instance_file.exists() or not instance_file.read_text().strip():
        shutil.copy(LOCAL_INSTANCE, instance_file)
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    """Materialize the days asked for from a sandbox started for the run, then summarize."""
    parser = argparse.ArgumentParser(prog="drchrono-assets demo", description=__doc__)
    parser.add_argument("--first", default=DEMO_WEEK[0], help="first day (YYYY-MM-DD)")
    parser.add_argument("--last", default=DEMO_WEEK[1], help="last day (YYYY-MM-DD)")
    parser.add_argument("--data-root", default="data", help="where the Parquet datasets go")
    parser.add_argument(
        "--practices",
        type=_practice_count,
        default=1,
        help="how many practices of one API application (2 or more: each a DrchronoPractice "
        "component, its data in <data root>/<practice>)",
    )
    args = parser.parse_args(argv)

    practice = checked(check_inherited_settings)
    sandbox_start = DEFAULTS.start.isoformat()
    partitions = dg.DailyPartitionsDefinition(sandbox_start, timezone=practice.timezone)
    window = checked(lambda: check_partition_range(args.first, args.last, partitions))
    dagster_home = local_dagster_home(Path(".dagster_home").resolve())
    data_root = Path(args.data_root).resolve()
    if args.practices > 1:
        print(f"drchrono_assets demo: {args.practices} practices, {args.first}...{args.last}")
        names = materialize_practices(
            args.practices, window, sandbox_start, dagster_home, data_root
        )
        summarize_practices(window, names, data_root)
        return
    print(f"drchrono_assets demo: every asset for {args.first}...{args.last}")
    with SandboxServer() as sandbox:
        env = {
            **sandbox.env(),
            "DRCHRONO_DATA_ROOT": str(data_root),
            "DRCHRONO_START_DATE": sandbox_start,
            "DRCHRONO_TOKEN_STORE": str(dagster_home / "sandbox-tokens.json"),
        }
        materialize(sandbox, window, dagster_home, env)
    summarize(window, dagster_home, data_root)
    dagster = Path(sys.executable).parent / "dagster"
    print(f"\nOpen the UI: DAGSTER_HOME={dagster_home} {dagster} dev -w workspace.yaml")
    print("(or `make ui`: the UI with a live sandbox practice behind it)")


def _practice_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 26:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of practices from 1 to 26")
    return int(text)


def checked(step: Callable[[], T]) -> T:
    """``step()``'s value; the package's error ends the command with its one sentence."""
    try:
        return step()
    except DrchronoError as error:
        sys.exit(f"error: {error}")


def check_inherited_settings() -> settings.PracticeSettings:
    """The runs inherit this environment: a bad ``DRCHRONO_*`` setting is refused now."""
    practice = settings.PracticeSettings.from_env()
    tuning_from_env()
    return practice


def materialize(
    sandbox: SandboxServer, window: DayWindow, dagster_home: Path, env: dict[str, str]
) -> None:
    """Every asset for ``window`` from ``sandbox`` in one run of the real CLI, with ``env``
    (``DRCHRONO_*``) set; exits with the log's path when the run fails."""
    log_path = dagster_home / LOG_NAME
    print(f"  sandbox drchrono API at {sandbox.url} (synthetic practice, no credentials)")
    print(f"  dagster asset materialize, steps done: (full log: {log_path})", flush=True)
    started = time.monotonic()
    command = [
        "dagster", "asset", "materialize",
        "-m", "drchrono_assets.definitions",
        "--select", "*",
        "--partition-range", f"{window.first}...{window.last}",
    ]  # fmt: skip
    # DAGSTER_HOME: the instance file names its folder by it.
    run_env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}
    succeeded = run_logged(command, run_env, log_path)
    requests = sandbox.state.stats.snapshot()["api_requests"]
    if not succeeded:
        sys.exit(f"\nThe run failed; the error is in {log_path}")
    print(f"  done in {time.monotonic() - started:.0f} s with {requests} API requests\n")


def summarize(window: DayWindow, dagster_home: Path, data_root: Path) -> None:
    """The rows of every dataset for ``window``, and the verdicts of the last run's checks."""
    print(f"Datasets under {data_root}:")
    for name in [spec.name for spec in RESOURCES] + ["billing_report"]:
        dataset = HiveDataset(UPath(data_root), name)
        rows = dataset.row_count(window.partition_keys)
        print(f"  {name:<22} {rows:>6} rows  {dataset.glob.relative_to(data_root)}")
    aging = HiveDataset(UPath(data_root), "ar_aging")
    rows = aging.read([None]).num_rows
    print(f"  {'ar_aging':<22} {rows:>6} rows  {aging.file().relative_to(data_root)}")
    print(f"  {'bi_duckdb':<22} {'':>11} {DATABASE_NAME} (views for BI tools)")
    print("\nChecks:")
    for line in _check_verdicts(dagster_home):
        print(f"  {line}")


def _check_verdicts(dagster_home: Path) -> list[str]:
    """Each check of the last run: passed, or its severity and the reason it gives."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)  # the instance file names its folder by it
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs(limit=1)
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    lines = []
    for evaluation in evaluations:
        if evaluation.check_name == FRESHNESS_CHECK or evaluation.partition is not None:
            continue  # a billing check also reports each day; the run's result names them
        verdict = "passed" if evaluation.passed else f"{evaluation.severity.value}: "
        reason = "" if evaluation.passed else evaluation.description or "see the UI"
        lines.append(f"{evaluation.check_name:<40} {verdict}{reason}")
    # One line for every dated asset's: the run's days end before yesterday, so they are
    # overdue until the sensor keeps yesterday current.
    late = sum(not e.passed for e in evaluations if e.check_name == FRESHNESS_CHECK)
    if late:
        lines.append(
            f"{FRESHNESS_CHECK:<40} {late} assets overdue: yesterday is not materialized; "
            "the drchrono_changes sensor keeps it current"
        )
    return lines
