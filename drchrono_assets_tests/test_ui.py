"""The deployed stack end to end: dagster-webserver and dagster-daemon on PostgreSQL.

Both processes load ``workspace.yaml`` against a throwaway PostgreSQL server and the bundled
sandbox API. A run is launched through the webserver's GraphQL API with the same queries and
mutation the UI's Materialize button sends for one partition; the daemon dequeues it. Headless
Chromium then opens the global asset lineage page and must find every asset rendered.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from drchrono_assets.assets import resource_assets
from drchrono_assets.definitions import defs
from drchrono_assets_tests.assets_support import partition_file
from drchrono_assets_tests.conftest import fresh_refresh_token, subprocess_env
from drchrono_assets_tests.postgres_server import PostgresServer
from drchrono_sandbox import SandboxServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "test-artifacts"
PARTITION = "2024-03-05"
RANGE = ("2024-03-06", "2024-03-07")  # launched as one run, as the demo's week is
LOCATION = "drchrono_assets.definitions"  # workspace.yaml gives none: the module name
STARTUP_SECONDS = 120
RUN_SECONDS = 300
BROWSER_SECONDS = 60

ALL_ASSETS = sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())
INGEST_ASSETS = sorted(spec.key.to_user_string() for a in resource_assets for spec in a.specs)
LAUNCHED = [*INGEST_ASSETS, "billing_report"]
BILLING_CHECKS = (
    "billing_report_one_row_per_appointment",
    "billing_report_orphans_and_unbilled",
    "billing_report_reconciles",
)


def run_checks(days: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(asset, check, day or "") of each check result a run of LAUNCHED over ``days`` stores:
    each of the billing report's three checks, one for the run's days and one for each day;
    each launched asset's freshness check, once."""
    billing = [("billing_report", name, day) for name in BILLING_CHECKS for day in ("", *days)]
    return sorted([*billing, *((name, "freshness_check", "") for name in LAUNCHED)])


# The UI's own operations, copied from dagster-webserver's bundled ui-core sources
# (assets/LaunchAssetExecutionButton.tsx, launchpad/ConfigFetch.tsx, runs/RunUtils.tsx),
# trimmed to the fields the launch logic reads.
LAUNCH_ASSET_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    id
    jobNames
    isObservable
    isExecutable
    assetKey { path }
    partitionDefinition { name type }
    assetChecksOrError { ... on AssetChecks { checks { name jobNames } } }
    repository { name location { name } }
  }
  assetNodeAdditionalRequiredKeys(assetKeys: $assetKeys) { path }
}
"""
CONFIG_PARTITION_FOR_ASSET_JOB_QUERY = """
query ConfigPartitionForAssetJobQuery(
  $repositoryName: String!, $repositoryLocationName: String!, $jobName: String!,
  $partitionName: String!, $assetKeys: [AssetKeyInput!]!
) {
  pipelineOrError(params: {pipelineName: $jobName, repositoryName: $repositoryName,
                           repositoryLocationName: $repositoryLocationName}) {
    __typename
    ... on Pipeline {
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {
        runConfigOrError { __typename ... on PartitionRunConfig { yaml }
                           ... on PythonError { message } }
        tagsOrError { __typename ... on PartitionTags { results { key value } }
                      ... on PythonError { message } }
      }
    }
  }
}
"""
LAUNCH_PIPELINE_EXECUTION_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""
WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""
RUN_QUERY = """
query RunQuery($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status pipelineName tags { key value } }
    ... on PythonError { message }
  }
}
"""
# The Checks tab's query (assets/asset-checks/AssetChecksQuery.tsx), trimmed to what its
# status column reads (asset-checks/util.tsx): per-partition statuses when the check has
# them, else the execution for the latest materialization.
ASSET_CHECKS_QUERY = """
query AssetChecksQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            partitionDefinition { name }
            partitionStatuses { __typename }
            executionForLatestMaterialization {
              runId
              status
              evaluation {
                severity
                partition
                metadataEntries { label ... on MarkdownMetadataEntry { mdStr } }
              }
            }
          }
        }
      }
    }
  }
}
"""
# The check's execution history (asset-checks/AssetCheckDetailDialog.tsx, trimmed).
ASSET_CHECK_DETAILS_QUERY = """
query AssetCheckDetailsQuery($assetKey: AssetKeyInput!, $checkName: String!, $limit: Int!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: $limit) {
    runId
    status
    evaluation { partition }
  }
}
"""
RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId, limit: 500) {
    ... on EventConnection { events { __typename ... on MessageEvent { message stepKey } } }
  }
}
"""


# The text of each node of the asset graph (the SVG viewport's foreignObjects) whose box lies
# wholly inside the viewport: nodes cut off at its edges, or not drawn at all, do not count.
GRAPH_TEXT_SCRIPT = """
const viewport = document.querySelector('[data-svg-viewport]');
if (!viewport) return [];
const view = viewport.getBoundingClientRect();
return Array.from(viewport.querySelectorAll('svg foreignObject > *'))
  .filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.top >= view.top && box.bottom <= view.bottom
      && box.left >= view.left && box.right <= view.right;
  })
  .map((node) => node.innerText);
"""


@dataclass
class Deployment:
    """The running webserver and daemon, and where they keep things."""

    url: str
    home: Path
    env: dict[str, str]
    data_root: Path
    logs: list[Path]
    workspace: dict[str, Any] | None = None

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{_tail(log)}" for log in self.logs)


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _label_for(name: str, lines: set[str]) -> str | None:
    """The graph label showing ``name``: the name, or the name with its middle cut to "…"."""
    if name in lines:
        return name
    for line in lines:
        head, cut, tail = line.partition("…")
        if cut and len(line) < len(name) and name.startswith(head) and name.endswith(tail):
            return line
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(what: str, check: Callable[[], Any], seconds: float, report: Callable[[], str]):
    """``check()``'s first truthy value, polled for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}\n{report()}")
        time.sleep(1)


def _stop(process: subprocess.Popen) -> None:
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


@pytest.fixture(scope="module")
def deployment(sandbox: SandboxServer, tmp_path_factory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("ui")
    processes: list[subprocess.Popen] = []
    with PostgresServer() as postgres:
        database = f"dagster_{uuid.uuid4().hex[:8]}"
        postgres.create_database(database)
        env = subprocess_env(
            {
                **sandbox.env(),
                "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(sandbox),
                "DRCHRONO_TOKEN_STORE": str(tmp / "secrets" / "tokens.json"),
                "DRCHRONO_DATA_ROOT": str(tmp / "data"),
                **postgres.dagster_env(database),
            },
            tmp,
        )
        home = Path(env["DAGSTER_HOME"])
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        port = _free_port()
        deployment = Deployment(
            url=f"http://127.0.0.1:{port}",
            home=home,
            env=env,
            data_root=tmp / "data",
            logs=[tmp / "webserver.log", tmp / "daemon.log"],
        )
        commands = [
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        ]  # fmt: skip
        try:
            for command, log in zip(commands, deployment.logs, strict=True):
                with log.open("wb") as out:
                    processes.append(
                        subprocess.Popen(
                            command,
                            cwd=REPO,
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,  # its own process group, stopped as one
                        )
                    )

            def location_loaded() -> dict[str, Any] | None:
                for process in processes:
                    if process.poll() is not None:
                        pytest.fail(f"{process.args[0]} exited\n{deployment.log_tails()}")
                try:
                    data = deployment.graphql(WORKSPACE_QUERY)
                except requests.RequestException:
                    return None
                entries = data["workspaceOrError"].get("locationEntries") or []
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return data
                return None

            loaded = _wait_for(
                "the webserver to load the code location",
                location_loaded,
                STARTUP_SECONDS,
                deployment.log_tails,
            )
            deployment.workspace = loaded
            yield deployment
        finally:
            for process in reversed(processes):
                _stop(process)


@pytest.fixture(autouse=True)
def _logs_on_failure(request, deployment: Deployment) -> Iterator[None]:
    """The webserver's and daemon's logs under a failed test's report."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(deployment.log_tails())


def test_code_location_loads_with_every_asset(deployment: Deployment) -> None:
    (entry,) = deployment.workspace["workspaceOrError"]["locationEntries"]
    assert entry["name"] == LOCATION
    assert entry["loadStatus"] == "LOADED"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    assert location["repositories"] == [{"name": "__repository__"}]

    data = deployment.graphql(
        """
        query Repo($selector: RepositorySelector!) {
          repositoryOrError(repositorySelector: $selector) {
            __typename
            ... on Repository { assetNodes { assetKey { path } groupName } }
            ... on PythonError { message }
          }
        }
        """,
        {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}},
    )
    repository = data["repositoryOrError"]
    assert repository["__typename"] == "Repository", repository
    nodes = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in repository["assetNodes"]}
    assert len(ALL_ASSETS) == 13
    assert sorted(nodes) == ALL_ASSETS
    assert {nodes[name] for name in INGEST_ASSETS} == {"drchrono"}
    assert (nodes["billing_report"], nodes["ar_aging"], nodes["bi_duckdb"]) == (
        "billing",
        "billing",
        "bi",
    )


def _materialize_like_the_ui(
    deployment: Deployment, names: list[str], partition: str, last: str | None = None
) -> str:
    """What the Materialize button does for ``names`` and one partition chosen in its dialog,
    or the range ``partition...last`` launched as one run.

    useMaterializationAction loads the asset nodes, picks the first job every asset is in
    (getCommonJob), and, the assets being partitioned, opens LaunchAssetChoosePartitionsDialog;
    with one partition that launches a single run (onLaunchAsSingleRun): the partition's tags
    and run config from ConfigPartitionForAssetJobQuery, executionParamsForAssetJob, plus the
    dagster/from_ui tag (paramsWithUIExecutionTags), through LaunchPipelineExecution. A range
    launched as one run (the dialog's "single run" backfill option, launchWithRangesAsTags)
    is the same with the first day's config, its dagster/partition tags replaced by the range
    tags.
    """
    keys = [{"path": [name]} for name in names]
    loaded = deployment.graphql(LAUNCH_ASSET_LOADER_QUERY, {"assetKeys": keys})
    assets = loaded["assetNodes"]
    assert len(assets) == len(names)
    assert loaded["assetNodeAdditionalRequiredKeys"] == []
    assert all(a["isExecutable"] and not a["isObservable"] for a in assets)
    assert all(a["partitionDefinition"] for a in assets)
    repository = assets[0]["repository"]
    job = next(j for j in assets[0]["jobNames"] if all(j in a["jobNames"] for a in assets))
    assert job == "__ASSET_JOB"  # the implicit asset job, listed before daily_update

    selector = {
        "repositoryName": repository["name"],
        "repositoryLocationName": repository["location"]["name"],
    }
    config = deployment.graphql(
        CONFIG_PARTITION_FOR_ASSET_JOB_QUERY,
        {**selector, "jobName": job, "partitionName": partition, "assetKeys": keys},
    )["pipelineOrError"]
    assert config["__typename"] == "Pipeline", config
    tags = config["partition"]["tagsOrError"]
    run_config = config["partition"]["runConfigOrError"]
    assert tags["__typename"] == "PartitionTags", tags
    assert run_config["__typename"] == "PartitionRunConfig", run_config
    assert {"key": "dagster/partition", "value": partition} in tags["results"]

    partition_tags = tags["results"]
    if last is not None:
        partition_tags = [
            *(t for t in partition_tags if not t["key"].startswith("dagster/partition")),
            {"key": "dagster/asset_partition_range_start", "value": partition},
            {"key": "dagster/asset_partition_range_end", "value": last},
        ]
    checks = [
        {"name": check["name"], "assetKey": {"path": a["assetKey"]["path"]}}
        for a in assets
        for check in (a["assetChecksOrError"].get("checks") or [])
        if not check["jobNames"] or job in check["jobNames"]
    ]
    execution_params = {
        "mode": "default",
        "executionMetadata": {
            "tags": [
                *(t for t in partition_tags if t["key"] != "dagster/from_ui"),
                {"key": "dagster/from_ui", "value": "true"},
            ]
        },
        "runConfigData": run_config["yaml"],
        "selector": {
            **selector,
            "pipelineName": job,
            "assetSelection": keys,
            "assetCheckSelection": checks,
        },
    }
    launched = deployment.graphql(
        LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": execution_params}
    )["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert launched["run"]["pipelineName"] == job
    return launched["run"]["id"]


def _finished_run(deployment: Deployment, run_id: str) -> dict[str, Any]:
    """The run once it has finished successfully (its log and the servers' on failure)."""

    def run_log() -> str:
        events = deployment.graphql(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
        lines = [f"{e.get('stepKey')}: {e.get('message')}" for e in events.get("events", [])]
        return "\n".join(lines[-60:]) + "\n" + deployment.log_tails()

    def finished() -> dict[str, Any] | None:
        run = deployment.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    run = _wait_for(f"run {run_id} to finish", finished, RUN_SECONDS, run_log)
    assert run["status"] == "SUCCESS", run_log()
    assert {"key": "dagster/from_ui", "value": "true"} in run["tags"]
    return run


@contextmanager
def _production_instance(deployment: Deployment) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance, on PostgreSQL through the production instance config."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in deployment.env.items():
            if key.startswith("DAGSTER_PG_"):
                patch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
            yield instance


def _checks_evaluated(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, str]]:
    """(asset, check, day or "") of each check result the run stored."""
    evaluations = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    results = [entry.dagster_event.event_specific_data for entry in evaluations]
    return sorted((r.asset_key.to_user_string(), r.check_name, r.partition or "") for r in results)


def test_materialize_a_partition_through_the_webserver(deployment: Deployment) -> None:
    run_id = _materialize_like_the_ui(deployment, LAUNCHED, PARTITION)
    run = _finished_run(deployment, run_id)
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]

    for name in LAUNCHED:
        path = partition_file(deployment.data_root, name, PARTITION)
        assert path.is_file() and path.stat().st_size > 0, path

    # The run's history, read straight from PostgreSQL through the production instance config.
    with _production_instance(deployment) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        record = instance.get_run_by_id(run_id)
        assert record is not None and record.status == dg.DagsterRunStatus.SUCCESS
        assert record.tags["dagster/partition"] == PARTITION
        assert {k.to_user_string() for k in record.asset_selection} == set(LAUNCHED)
        steps = {
            entry.step_key
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        }
        assert set(LAUNCHED) <= steps, steps
        for name in LAUNCHED:
            (materialization,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[PARTITION]),
                limit=5,
            ).records
            assert materialization.run_id == run_id
            assert PARTITION in instance.get_materialized_partitions(dg.AssetKey(name))
        assert _checks_evaluated(instance, run_id) == run_checks((PARTITION,))
        # Queued by the webserver; the daemon's run coordinator dequeues and starts it.
        queue = [
            entry.dagster_event.event_type
            for entry in instance.all_logs(run_id)
            if entry.dagster_event
            and entry.dagster_event.event_type
            in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING)
        ]
        assert queue == [dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING]


def test_a_range_run_shows_each_checks_verdict_for_every_day(deployment: Deployment) -> None:
    """A range launched as one run (the demo's kind of run) leaves each billing check with
    its status in the Checks tab and each day's own verdict in its history, none Skipped."""
    run_id = _materialize_like_the_ui(deployment, LAUNCHED, RANGE[0], RANGE[-1])
    run = _finished_run(deployment, run_id)
    assert {"key": "dagster/asset_partition_range_start", "value": RANGE[0]} in run["tags"]
    assert not any(t["key"] == "dagster/partition" for t in run["tags"])
    with _production_instance(deployment) as instance:
        assert _checks_evaluated(instance, run_id) == run_checks(RANGE)

    node = deployment.graphql(ASSET_CHECKS_QUERY, {"assetKey": {"path": ["billing_report"]}})
    checks = {c["name"]: c for c in node["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert sorted(checks) == sorted([*BILLING_CHECKS, "freshness_check"])
    for name in BILLING_CHECKS:
        check = checks[name]
        # No per-day statuses: the UI shows the check's latest result as its status.
        assert check["partitionDefinition"] is None and check["partitionStatuses"] is None
        execution = check["executionForLatestMaterialization"]
        assert execution is not None, name
        assert (execution["runId"], execution["status"]) == (run_id, "SUCCEEDED"), name
        assert execution["evaluation"]["partition"] is None  # the result for the run's days
        entries = {e["label"]: e for e in execution["evaluation"]["metadataEntries"]}
        days = entries["days"]["mdStr"]
        for day in RANGE:
            assert f"| {day} | passed |" in days, (name, days)
        # The check's history (its detail page): the run's result and each day's own.
        history = deployment.graphql(
            ASSET_CHECK_DETAILS_QUERY,
            {"assetKey": {"path": ["billing_report"]}, "checkName": name, "limit": 50},
        )["assetCheckExecutions"]
        verdicts = {
            e["evaluation"]["partition"] if e["evaluation"] else "(none)": e["status"]
            for e in history
            if e["runId"] == run_id
        }
        assert verdicts == dict.fromkeys([None, *RANGE], "SUCCEEDED"), (name, verdicts)


def test_asset_graph_page_renders_every_asset(deployment: Deployment, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # What the first-visit "Join the Dagster community" dialog's Skip does on the server, so
    # the dialog does not cover the graph.
    deployment.graphql("mutation { setNuxSeen }")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1600,1200",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    screenshot = ARTIFACTS / "asset-graph.png"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.set_page_load_timeout(BROWSER_SECONDS)
        driver.set_script_timeout(10)
        driver.get(f"{deployment.url}/asset-groups")

        def graph_lines() -> set[str]:
            """The text of the graph's nodes lying wholly inside its viewport (not the sidebar)."""
            texts = driver.execute_script(GRAPH_TEXT_SCRIPT)
            return {line.strip() for text in texts for line in text.splitlines()}

        def report() -> str:
            driver.save_screenshot(str(screenshot))
            return f"{driver.current_url}\ngraph text: {sorted(graph_lines())}"

        # Three groups: the graph first draws them collapsed, one box per group.
        _wait_for(
            "the asset groups drawn in the graph",
            lambda: {"drchrono", "billing", "bi"} <= graph_lines(),
            BROWSER_SECONDS,
            report,
        )
        # The graph's own shortcut for "Expand all groups" (in its settings menu).
        ActionChains(driver).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
        _wait_for("the groups to expand", lambda: "expanded=" in driver.current_url, 10, report)

        _wait_for(
            "the expanded groups' assets drawn in the graph",
            lambda: set(ALL_ASSETS) & graph_lines(),
            BROWSER_SECONDS,
            report,
        )

        # The page fits the graph to its width and draws only the nodes inside the view, so the
        # tall graph is cut off at first. Zoom out a step at a time (the viewport's own zoom-out
        # button) until every asset's node is wholly in view. At that scale the nodes
        # are minimal and a name over 18 characters is shown middle-truncated ("abc…_xyz").
        zoom_out = driver.find_element(
            By.XPATH, "//*[@data-svg-viewport]//button[.//*[@aria-label='zoom_out']]"
        )

        def labels() -> dict[str, str] | None:
            """Each asset's label in the graph, when every asset is drawn."""
            lines = graph_lines()
            found = {name: _label_for(name, lines) for name in ALL_ASSETS}
            return None if None in found.values() else found  # type: ignore[return-value]

        def every_asset_drawn() -> dict[str, str] | None:
            found = labels()
            if found is None:
                zoom_out.click()
            return found

        shown = _wait_for(
            "every asset drawn in the graph", every_asset_drawn, BROWSER_SECONDS, report
        )
        assert driver.save_screenshot(str(screenshot))

        # A truncated label is the asset's minimal node: double-clicking a node zooms to it, and
        # at that scale the full node shows the whole name.
        for name, label in shown.items():
            if label == name:
                continue

            def full_name_drawn(name: str = name, label: str = label) -> bool:
                if name in graph_lines():
                    return True
                nodes = driver.find_elements(
                    By.XPATH,
                    "//*[@data-svg-viewport]//*[local-name()='foreignObject']"
                    f"//div[normalize-space(text())='{label}']",
                )
                if nodes:
                    ActionChains(driver).double_click(nodes[0]).perform()
                else:
                    zoom_out.click()
                return False

            _wait_for(f"{name}'s full name in the graph", full_name_drawn, 30, report)
    finally:
        driver.quit()
    content = screenshot.read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 10_000
