"""Benchmark: a year's backfill of a large practice, this package versus dlt's rest_api source.

    .venv/bin/pip install -e '.[benchmark]'
    .venv/bin/python benchmarks/year_backfill.py
    .venv/bin/python benchmarks/year_backfill.py --rounds 1 --latency-ms 0 --scenarios package dlt

Scenarios, each a fresh process tree against a freshly started sandbox (its own process, so
its CPU and memory are not the client's; fresh, so no scenario profits from its caches):
- ``package``: what a user runs, ``dagster asset materialize -m drchrono_assets.definitions
  --select group:drchrono --partition-range FIRST...LAST``: the ten ingest assets, one run;
  ``package-capped``: the same at the shipped burst cap;
- ``dlt``: dlt's ``rest_api`` source configured by hand for the same queries, written as
  Parquet by the ``filesystem`` destination: what a data engineer would use instead;
- ``fetch-only``: the same queries with ``requests`` in threads, parsed, nothing stored:
  the lower bound.

Per run: API requests (the sandbox's count of ``/api/`` requests; token refreshes are not
counted), wall seconds (launch to exit, interpreter start and imports included), and peak
memory of the whole process tree (the sum of the RSS of the process and all its descendants,
sampled every 50 ms; pages shared between processes count once per process; a child between
fork and exec is not counted). The floor is the fewest requests the queries allow, the sum
over queries of max(1, ceil(rows / 250)), taken from fetch-only's row counts. Figures are
printed, never asserted.

dlt and psutil come from the ``benchmark`` extra, installed in the project's own venv: it
changes no version of anything that the package's dependencies use (only setuptools is
upgraded, which none of them needs), so every scenario runs with ``sys.executable``.

The package's hourly request budget is raised (``DRCHRONO_REQUESTS_PER_HOUR``) so it never
waits on it. Its burst cap (``DRCHRONO_REQUESTS_PER_SECOND``, 10 as shipped: drchrono's
throttle) is lifted to what the server allows in every scenario but ``package-capped``: the
sandbox enforces no burst limit and dlt is given none, so a capped run measures the cap (275
requests take 27.5 s at 10 a second, whatever the client). Dagster runs in a fresh instance of
the package's local configuration (``deploy/local/dagster.yaml``, as ``make demo`` sets up;
``--instance stock`` for Dagster's default storage), with its own bookkeeping in the wall
time: a planned and a materialization event per asset and day.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import requests

SCENARIOS = (
    "package", "package-capped", "dagster-floor", "dlt", "fetch-only", "package-day", "floor-day",
)  # fmt: skip
DAGSTER_SCENARIOS = {  # scenario -> (code location args, selection, every day or the last)
    "package": (["-m", "drchrono_assets.definitions"], "group:drchrono", True),
    "package-capped": (["-m", "drchrono_assets.definitions"], "group:drchrono", True),
    "dagster-floor": (["-f", "benchmarks/dagster_floor.py"], "*", True),
    "package-day": (["-m", "drchrono_assets.definitions"], "*", False),
    "floor-day": (["-f", "benchmarks/dagster_floor.py"], "*", False),
}
# the scenarios the request floor is for
YEAR_FETCHING = ("package", "package-capped", "dlt", "fetch-only")
# Runs with the package's shipped burst cap, drchrono's 10 requests a second.
CAPPED = ("package-capped",)
EVERY_ASSET = 13  # the ten ingest assets, billing_report, ar_aging, bi_duckdb
SNAPSHOTS = (
    "doctors",
    "offices",
    "users",
    "patients",
    "appointment_profiles",
    "appointment_templates",
    "reminder_profiles",
)
DATED = ("appointments", "documents", "transactions")  # the rows compared across scenarios
PAGE_SIZE = 250  # the API's maximum
MAX_WINDOW_DAYS = 190  # the API's longest `date_range`; the package chunks a backfill so
SAMPLE_SECONDS = 0.05
REPO = Path(__file__).resolve().parents[1]
LOCAL_INSTANCE = REPO / "deploy" / "local" / "dagster.yaml"  # what `make demo` sets up
CHILD_JOB = "YEAR_BACKFILL_JOB"  # env var carrying a child scenario's settings
RESULT = "YEAR_BACKFILL_RESULT "  # prefix of the line a child scenario reports on
# Known credentials, so a scenario can refresh without reading the sandbox's output.
CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN = "bench-client", "bench-secret", "bench-refresh-0"


class Query(NamedTuple):
    """One list query of the backfill; ``per_doctor`` ones run once per doctor."""

    table: str
    path: str  # under /api/
    params: dict[str, str]
    per_doctor: bool = False


def appointment_windows(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Consecutive ``date_range`` windows of at most 190 days covering first..last."""
    windows = []
    while first <= last:
        end = min(first + dt.timedelta(days=MAX_WINDOW_DAYS - 1), last)
        windows.append((first, end))
        first = end + dt.timedelta(days=1)
    return windows


def since(first: dt.date) -> str:
    """The ``since`` of a sweep from the first day (practice-local midnight, as the package)."""
    return f"{first.isoformat()}T00:00:00"


def query_plan(first: dt.date, last: dt.date) -> list[Query]:
    """The queries the package issues for a first..last backfill (see the catalog's rules)."""
    return [
        *(Query(name, name, {}) for name in SNAPSHOTS),
        *(
            Query("appointments", "appointments", {"date_range": f"{start}/{end}"})
            for start, end in appointment_windows(first, last)
        ),
        Query("documents", "documents", {"since": since(first)}),
        Query("transactions", "transactions", {"since": since(first)}, per_doctor=True),
    ]


# -- child scenarios (run as `python year_backfill.py _child NAME`) ------------------------


def access_token(job: dict[str, str]) -> str:
    """One refresh grant: refresh tokens are single-use, so each scenario spends its own."""
    answer = requests.post(
        f"{job['base_url']}/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": job["refresh_token"],
            "client_id": job["client_id"],
            "client_secret": job["client_secret"],
        },
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def run_dlt(job: dict[str, str]) -> dict[str, Any]:
    """dlt's rest_api source as a data engineer would configure it for the same queries."""
    import dlt
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
    from dlt.sources.rest_api import RESTAPIConfig, rest_api_source

    first, last = dt.date.fromisoformat(job["first"]), dt.date.fromisoformat(job["last"])
    config: RESTAPIConfig = {
        "client": {
            "base_url": f"{job['base_url']}/api/",
            "auth": BearerTokenAuth(access_token(job)),
            "paginator": JSONLinkPaginator(next_url_path="next"),
        },
        "resource_defaults": {
            "parallelized": True,
            "endpoint": {"data_selector": "results", "params": {"page_size": PAGE_SIZE}},
        },
        "resources": [
            *SNAPSHOTS,
            # One resource per 190-day window, all into one table.
            *(
                {
                    "name": f"appointments_{number}",
                    "table_name": "appointments",
                    "endpoint": {
                        "path": "appointments",
                        "params": {"date_range": f"{start}/{end}"},
                    },
                }
                for number, (start, end) in enumerate(appointment_windows(first, last), 1)
            ),
            {
                "name": "documents",
                "endpoint": {"path": "documents", "params": {"since": since(first)}},
            },
            # The endpoint requires `doctor`: one sweep per doctor the doctors resource lists.
            {
                "name": "transactions",
                "endpoint": {
                    "path": "transactions",
                    "params": {"since": since(first), "doctor": "{resources.doctors.id}"},
                },
            },
        ],
    }
    out = Path(job["out"])
    pipeline = dlt.pipeline(
        pipeline_name="drchrono_year",
        destination=dlt.destinations.filesystem(bucket_url=out.as_uri()),
        dataset_name="drchrono",
        pipelines_dir=str(out.parent / "dlt_pipelines"),
    )
    pipeline.run(rest_api_source(config), loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return {"rows": {table: counts.get(table, 0) for table in DATED}}


def run_fetch_only(job: dict[str, str]) -> dict[str, Any]:
    """The plan's queries with plain requests, every query in its own thread."""
    first, last = dt.date.fromisoformat(job["first"]), dt.date.fromisoformat(job["last"])
    headers = {"Authorization": f"Bearer {access_token(job)}"}
    local = threading.local()

    def fetch(query: Query, extra: dict[str, Any]) -> tuple[int, list[Any]]:
        """The query's row count, and the doctors' ids when it lists doctors."""
        # One keep-alive session per thread: requests' Session is not thread-safe.
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        url: str | None = f"{job['base_url']}/api/{query.path}"
        params: dict[str, Any] | None = {**query.params, **extra, "page_size": PAGE_SIZE}
        rows, ids = 0, []
        while url:
            answer = session.get(url, params=params, headers=headers, timeout=120)
            answer.raise_for_status()
            body = json.loads(answer.content)
            rows += len(body["results"])
            if query.table == "doctors":
                ids.extend(record["id"] for record in body["results"])
            url, params = body["next"], None  # `next` carries every filter
        return rows, ids  # the records themselves are dropped: nothing is kept

    plan = query_plan(first, last)
    results: list[tuple[Query, Future[tuple[int, list[Any]]]]] = []
    # Enough threads for every query at once, each doctor's sweep included.
    with ThreadPoolExecutor(max_workers=len(plan) + 32) as pool:
        for query in plan:
            if not query.per_doctor:
                results.append((query, pool.submit(fetch, query, {})))
        doctors = next(future for query, future in results if query.table == "doctors")
        for query in plan:
            if query.per_doctor:
                for doctor in doctors.result()[1]:
                    results.append((query, pool.submit(fetch, query, {"doctor": doctor})))
        fetched = [(query, future.result()[0]) for query, future in results]
    return {
        "queries": len(fetched),
        "floor": sum(max(1, math.ceil(rows / PAGE_SIZE)) for _, rows in fetched),
        "rows": {
            table: sum(rows for query, rows in fetched if query.table == table) for table in DATED
        },
    }


def child_main(scenario: str) -> None:
    job = json.loads(os.environ[CHILD_JOB])
    figures = run_dlt(job) if scenario == "dlt" else run_fetch_only(job)
    print(RESULT + json.dumps(figures), flush=True)


# -- the harness ---------------------------------------------------------------------------


class Sandbox:
    """The bundled sandbox API server in its own process, with known credentials."""

    def __init__(self, args: argparse.Namespace, latency_ms: float, log: Path) -> None:
        self.command = [
            sys.executable, "-m", "drchrono_sandbox", "--port", "0",
            "--size", args.size, "--start", args.first, "--end", args.last,
            "--latency-ms", str(latency_ms), "--log-level", "warning",
            *(["--patients", str(args.patients)] if args.patients else []),
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--refresh-token", REFRESH_TOKEN,
        ]  # fmt: skip
        self.log = log
        self.url = ""

    def __enter__(self) -> Sandbox:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("export DRCHRONO_BASE_URL="):
                self.url = line.strip().split("=", 1)[1].strip("'\"")
                break
        if not self.url:
            raise RuntimeError(f"the sandbox did not start; see {self.log}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/stats/reset", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/_sandbox/stats", timeout=30)
        answer.raise_for_status()
        return answer.json()


def tree_rss(root: psutil.Process) -> int:
    """Bytes resident in ``root`` and all its descendants right now.

    A child that still runs its parent's program and is younger than a second is a spawn
    between fork and exec (Dagster starts log tailers at each step). Python spawns with
    vfork, so it shares the parent's memory, and counting it would double the parent."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    now = time.time()
    for process in processes:
        # One may have ended between listing and reading.
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process is not root and now - process.create_time() < 1:
                parent = process.parent()
                if parent is not None and process.cmdline() == parent.cmdline():
                    continue
            total += process.memory_info().rss
    return total


def measured(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run ``command`` to its end; its wall seconds and the peak MB of its process tree."""
    peak = 0
    started = time.perf_counter()
    with log.open("wb") as output:
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=output)
    root = psutil.Process(child.pid)
    while child.poll() is None:
        peak = max(peak, tree_rss(root))
        time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{command[:4]} exited {child.returncode}; log {log}:\n{tail}")
    return wall, peak / 1e6


def folder_mb(folder: Path) -> float:
    """Disk used by the files under ``folder``; hard links to one file count once."""
    stats = [path.stat() for path in folder.rglob("*") if path.is_file()]
    return sum({(st.st_dev, st.st_ino): st.st_size for st in stats}.values()) / 1e6


def package_rows(data_root: Path) -> dict[str, int]:
    """Rows the package stored per dated resource (from the Parquet footers)."""
    import pyarrow.parquet as pq

    return {
        table: sum(pq.read_metadata(f).num_rows for f in (data_root / table).rglob("*.parquet"))
        for table in DATED
    }


def base_env() -> dict[str, str]:
    """This environment without any DRCHRONO_/DAGSTER_ setting that would change a run."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DRCHRONO_", "DAGSTER_"))
    }


def run_scenario(
    scenario: str, args: argparse.Namespace, sandbox: Sandbox, scratch: Path
) -> dict[str, Any]:
    """One measured run of ``scenario`` against a fresh sandbox; its figures."""
    out = scratch / "out"
    out.mkdir(parents=True)
    log = scratch / "run.log"
    credentials = {
        "DRCHRONO_BASE_URL": sandbox.url,
        "DRCHRONO_CLIENT_ID": CLIENT_ID,
        "DRCHRONO_CLIENT_SECRET": CLIENT_SECRET,
        "DRCHRONO_REFRESH_TOKEN": REFRESH_TOKEN,
    }
    if scenario in DAGSTER_SCENARIOS:
        location, selection, every_day = DAGSTER_SCENARIOS[scenario]
        home = scratch / "dagster_home"
        home.mkdir()
        instance = LOCAL_INSTANCE.read_text() if args.instance == "local" else ""
        (home / "dagster.yaml").write_text(instance + "\ntelemetry:\n  enabled: false\n")
        env = {
            **base_env(),
            **credentials,
            "DAGSTER_HOME": str(home),
            "DRCHRONO_DATA_ROOT": str(out),
            "DRCHRONO_START_DATE": args.first,
            "DRCHRONO_TOKEN_STORE": str(scratch / "tokens.json"),
            # Far above what a year takes, so the hourly budget never makes it wait.
            "DRCHRONO_REQUESTS_PER_HOUR": "10000000",
            "DAGSTER_FLOOR_ASSETS": str(10 if every_day else EVERY_ASSET),
        }
        if scenario not in CAPPED:
            env["DRCHRONO_REQUESTS_PER_SECOND"] = str(args.requests_per_second)
        partitions = (
            ["--partition-range", f"{args.first}...{args.last}"]
            if every_day
            else ["--partition", args.last]
        )
        dagster = Path(sys.executable).with_name("dagster")
        command = [
            *([str(dagster)] if dagster.exists() else [sys.executable, "-m", "dagster"]),
            "asset", "materialize", *location, "--select", selection, *partitions,
        ]  # fmt: skip
    else:
        job = {
            "base_url": sandbox.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "first": args.first,
            "last": args.last,
            "out": str(out),
        }
        env = {
            **base_env(),
            CHILD_JOB: json.dumps(job),
            # dlt: no usage reports, no config from a .dlt folder of the caller's.
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "RUNTIME__LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, str(Path(__file__).resolve()), "_child", scenario]
    sandbox.reset()
    wall, peak_mb = measured(command, env, REPO, log)
    stats = sandbox.stats()
    figures: dict[str, Any] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(RESULT):
            figures = json.loads(line[len(RESULT) :])
    if scenario in DAGSTER_SCENARIOS:
        figures["rows"] = package_rows(out)
    return {
        **figures,
        "requests": stats["api_requests"],
        "by_path": stats["by_path"],
        "wall": wall,
        "peak_mb": peak_mb,
        "disk_mb": folder_mb(out),
    }


def print_table(
    latency_ms: float, args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]
) -> None:
    def median(scenario: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[scenario])

    floors = {run["floor"] for run in runs.get("fetch-only", [])}
    floor = min(floors) if floors else None
    print()
    print(
        f"year backfill {args.first}...{args.last}, {args.size} practice, sandbox latency "
        f"{latency_ms:g} ms, median of {args.rounds} round(s); dlt {metadata.version('dlt')}"
    )
    print(
        f"{'scenario':<15}{'requests':>10}{'/floor':>8}{'wall s':>9}{'peak MB':>9}"
        f"{'disk MB':>9}  rows (appointments, documents, transactions)"
    )
    for scenario in args.scenarios:
        requests_made = median(scenario, "requests")
        fetches_the_range = scenario in YEAR_FETCHING
        ratio = f"{requests_made / floor:.2f}" if floor and fetches_the_range else "n/a"
        rows = runs[scenario][0]["rows"]
        print(
            f"{scenario:<15}{requests_made:>10.0f}{ratio:>8}{median(scenario, 'wall'):>9.1f}"
            f"{median(scenario, 'peak_mb'):>9.0f}{median(scenario, 'disk_mb'):>9.1f}  "
            + ", ".join(str(rows.get(table, 0)) for table in DATED)
        )
    if floor is not None:
        queries = runs["fetch-only"][0]["queries"]
        print(f"floor: {floor} requests ({queries} queries, max(1, ceil(rows / {PAGE_SIZE})) each)")
    if "package" in runs and "dlt" in runs:
        print(
            f"package / dlt: wall {median('package', 'wall') / median('dlt', 'wall'):.2f}x, "
            f"peak memory {median('package', 'peak_mb') / median('dlt', 'peak_mb'):.2f}x, "
            f"requests {median('package', 'requests') / median('dlt', 'requests'):.2f}x"
        )
    if "package-capped" in runs:
        print(
            f"package-capped (10 requests a second, as shipped): "
            f"{median('package-capped', 'wall'):.1f} s, of which the cap alone is "
            f"{median('package-capped', 'requests') / 10:.1f} s"
        )
    if "package" in runs and "dagster-floor" in runs:
        own = median("package", "wall") - median("dagster-floor", "wall")
        print(
            f"dagster-floor (Dagster's own run and events, nothing fetched or stored): "
            f"{median('dagster-floor', 'wall'):.1f} s; the package beyond it: {own:.1f} s"
            + (f" = {own / median('dlt', 'wall'):.2f}x dlt" if "dlt" in runs else "")
        )
    if "package-day" in runs and "floor-day" in runs:
        print(
            f"one day of every asset: {median('package-day', 'wall'):.1f} s, "
            f"{median('package-day', 'wall') / median('floor-day', 'wall'):.2f}x Dagster's "
            f"empty run of {EVERY_ASSET} assets ({median('floor-day', 'wall'):.1f} s)"
        )
    # Where a scenario's requests differ from the lower bound's, say on which endpoints.
    if "fetch-only" in runs:
        reference = runs["fetch-only"][0]["by_path"]
        for scenario in args.scenarios:
            by_path = runs[scenario][0]["by_path"]
            differences = [
                f"{path} {by_path.get(path, 0)} (fetch-only {reference.get(path, 0)})"
                for path in sorted(set(by_path) | set(reference))
                if path.startswith("/api/") and by_path.get(path, 0) != reference.get(path, 0)
            ]
            if scenario in YEAR_FETCHING and scenario != "fetch-only" and differences:
                print(f"{scenario} requests differing: " + "; ".join(differences))


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        child_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", default="2024-01-01")
    parser.add_argument("--last", default="2024-12-31")
    parser.add_argument("--size", default="large", choices=["small", "large"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 100])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument(
        "--instance",
        default="local",
        choices=["local", "stock"],
        help="the Dagster instance: the package's local one (deploy/local/dagster.yaml, the "
        "default) or a stock one (Dagster's default storage, no dagster.yaml settings)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--patients", type=int, default=None, help="override the practice's patient count"
    )
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=1000,
        help="the package's burst cap in every scenario but package-capped (default: 1000, "
        "none below what the server allows, as dlt is given none; the sandbox enforces none)",
    )
    args = parser.parse_args()
    # In the table's order whatever the command line's.
    args.scenarios = [name for name in SCENARIOS if name in args.scenarios]

    scratch = Path(tempfile.mkdtemp(prefix="year_backfill_"))
    try:
        for latency_ms in args.latency_ms:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.scenarios}
            for round_number in range(1, args.rounds + 1):
                # Scenarios alternate within a round so drift hits them alike.
                for scenario in args.scenarios:
                    folder = scratch / f"{latency_ms:g}ms" / f"round{round_number}" / scenario
                    folder.mkdir(parents=True)
                    with Sandbox(args, latency_ms, folder / "sandbox.log") as sandbox:
                        run = run_scenario(scenario, args, sandbox, folder)
                    runs[scenario].append(run)
                    print(
                        f"# {latency_ms:g} ms round {round_number} {scenario}: "
                        f"{run['requests']} requests, {run['wall']:.1f} s, "
                        f"{run['peak_mb']:.0f} MB peak",
                        file=sys.stderr,
                        flush=True,
                    )
            print_table(latency_ms, args, runs)
    finally:
        if args.keep:
            print(f"# scratch kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
