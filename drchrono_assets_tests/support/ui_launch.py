"""What the UI sends to the webserver to materialize assets: its own GraphQL operations, and
the Materialize button's launch logic, for one partition or a range launched as one run."""

from __future__ import annotations

from typing import Any

from drchrono_assets_tests.support.deployment import Deployment
from drchrono_assets_tests.support.processes import wait_for

RUN_SECONDS = 300

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
RUN_QUERY = """
query RunQuery($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status pipelineName tags { key value } }
    ... on PythonError { message }
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


def materialize_like_the_ui(
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


def finished_run(deployment: Deployment, run_id: str) -> dict[str, Any]:
    """The run once it has finished successfully (its log and the servers' on failure)."""

    def run_log() -> str:
        events = deployment.graphql(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
        lines = [f"{e.get('stepKey')}: {e.get('message')}" for e in events.get("events", [])]
        return "\n".join(lines[-60:]) + "\n" + deployment.log_tails()

    def finished() -> dict[str, Any] | None:
        run = deployment.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    run = wait_for(f"run {run_id} to finish", finished, RUN_SECONDS, run_log)
    assert run["status"] == "SUCCESS", run_log()
    assert {"key": "dagster/from_ui", "value": "true"} in run["tags"]
    return run
