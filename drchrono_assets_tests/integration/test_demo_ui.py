"""``make ui`` from a fresh folder, as a newcomer runs it: the UI opens on a week of data with
every billing check passed per day, with a live sandbox behind it, and the daily sensor's
first tick requests its sweep run. Checked through the webserver's GraphQL."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from drchrono_assets_tests.support.definitions import billing_checks
from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.processes import DRCHRONO_ASSETS, free_port, stop, tail, wait_for

pytestmark = pytest.mark.processes

LOCATION = {"repositoryLocationName": "drchrono_assets.definitions"}
SENSOR_QUERY = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      description
      sensorState { status ticks(limit: 20) { status runIds skipReason } }
    }
  }
}
"""
CHECK_EXECUTIONS_QUERY = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 50) {
    status partition
  }
}
"""
PARTITIONS_QUERY = """
query Partitions($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode { partitionStats { numMaterialized numPartitions } }
  }
}
"""
WORKSPACE_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }
"""
READY_SECONDS = 300  # set-up of the week included
TICK_SECONDS = 240


def test_make_ui_opens_on_data_with_passed_checks_and_a_sensor_that_requests_runs(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    log_path = tmp_path / "ui.log"

    def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def report() -> str:
        return tail(log_path, 6000)

    command = [
        DRCHRONO_ASSETS, "ui",
        "--folder", str(tmp_path / "live"), "--port", str(port),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped as one group: the UI, daemon and runs
        )
    try:

        def loaded() -> bool:
            assert process.poll() is None, f"make ui exited\n{report()}"
            try:
                entries = graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            except requests.RequestException:
                return False
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

        wait_for("the UI to load", loaded, READY_SECONDS, report)
        week = [
            (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=n)).isoformat() for n in range(2, 9)
        ]
        stats = graphql(PARTITIONS_QUERY, {"assetKey": {"path": ["billing_report"]}})
        assert stats["assetNodeOrError"]["partitionStats"]["numMaterialized"] == len(week)
        for check in billing_checks:
            (name,) = [key.name for key in check.check_keys]
            executions = graphql(
                CHECK_EXECUTIONS_QUERY,
                {"assetKey": {"path": ["billing_report"]}, "checkName": name},
            )["assetCheckExecutions"]
            verdicts = {e["partition"]: e["status"] for e in executions}
            # A warning is a verdict too (orphans over a threshold); Skipped never is.
            assert {verdicts.get(day) for day in week} <= {"SUCCEEDED", "FAILED"}, verdicts
            if name != "billing_report_orphans_and_unbilled":
                assert {verdicts[day] for day in week} == {"SUCCEEDED"}, verdicts

        def sensor(name: str) -> dict[str, Any]:
            selector = {**LOCATION, "repositoryName": "__repository__", "sensorName": name}
            return graphql(SENSOR_QUERY, {"selector": selector})["sensorOrError"]

        changes = sensor("drchrono_changes")
        assert "one change sweep each morning" in changes["description"]
        for name in ("drchrono_changes", "default_automation_condition_sensor"):
            assert sensor(name)["sensorState"]["status"] == "RUNNING", name

        def requested_runs() -> list[str]:
            ticks = sensor("drchrono_changes")["sensorState"]["ticks"]
            return [run for tick in ticks for run in tick["runIds"]]

        assert wait_for("a tick that requests the sweep run", requested_runs, TICK_SECONDS, report)
    finally:
        stop(process)
    assert "Traceback" not in log_path.read_text(errors="replace")
