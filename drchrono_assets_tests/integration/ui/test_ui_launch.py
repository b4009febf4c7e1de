"""Launching runs as the UI does, through the webserver's GraphQL API: the same queries and
mutation the Materialize button sends, for one partition and for a range launched as one run;
the daemon dequeues each run, and the run's history is read back from PostgreSQL."""

from __future__ import annotations

import dagster as dg
import pytest

from drchrono_assets_tests.support.assets import partition_file
from drchrono_assets_tests.support.definitions import resource_assets
from drchrono_assets_tests.support.deployment import ALL_ASSETS, Deployment, production_instance
from drchrono_assets_tests.support.ui_launch import finished_run, materialize_like_the_ui

pytestmark = [pytest.mark.postgres, pytest.mark.processes]

PARTITION = "2024-03-05"
RANGE = ("2024-03-06", "2024-03-07")  # launched as one run, as the demo's week is
LOCATION = "drchrono_assets.definitions"  # workspace.yaml gives none: the module name

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


def _checks_evaluated(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, str]]:
    """(asset, check, day or "") of each check result the run stored."""
    evaluations = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    results = [entry.dagster_event.event_specific_data for entry in evaluations]
    return sorted((r.asset_key.to_user_string(), r.check_name, r.partition or "") for r in results)


def test_materialize_a_partition_through_the_webserver(deployment: Deployment) -> None:
    run_id = materialize_like_the_ui(deployment, LAUNCHED, PARTITION)
    run = finished_run(deployment, run_id)
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]

    for name in LAUNCHED:
        path = partition_file(deployment.data_root, name, PARTITION)
        assert path.is_file() and path.stat().st_size > 0, path

    # The run's history, read straight from PostgreSQL through the production instance config.
    with production_instance(deployment) as instance:
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
    run_id = materialize_like_the_ui(deployment, LAUNCHED, RANGE[0], RANGE[-1])
    run = finished_run(deployment, run_id)
    assert {"key": "dagster/asset_partition_range_start", "value": RANGE[0]} in run["tags"]
    assert not any(t["key"] == "dagster/partition" for t in run["tags"])
    with production_instance(deployment) as instance:
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
