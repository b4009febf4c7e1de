"""The asset factory: one daily-partitioned asset per drchrono resource in the catalog."""

import datetime as dt

import dagster as dg
import pyarrow as pa
from pydantic import Field

from drchrono_assets.api import DrchronoClient
from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.catalog.fields import COLUMN_SCHEMA, dagster_table_schema
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager, PartitionUpdate
from drchrono_assets.practice_names import PracticeNames
from drchrono_assets.source.changes import day_ranges, merge_changes
from drchrono_assets.source.extraction import extract
from drchrono_assets.sync.staged import StagedChanges

# Partition key -> that day's table; the Parquet IO manager writes one file per key.
TablesByDay = dict[str, pa.Table]
GROUP = "drchrono"


class IngestConfig(dg.Config):
    """How a run brings its days in; unset (the UI, a backfill), it fetches them."""

    merge_sweep: str | None = Field(
        default=None,
        description="Daily operation, set by the drchrono_changes sensor: merge the changes "
        "this sweep staged into the stored days instead of fetching them.",
    )


def _description(spec: ResourceSpec) -> str:
    filters = ", ".join(f"`{name}`" for name in spec.rule.filters) or "none"
    return (
        f"{spec.description}\n\n"
        f"Source: `GET {spec.path}` (filters used: {filters}).\n\n"
        f"Partitioning: {spec.rule.summary}.\n\n"
        f"Primary key: {', '.join(spec.primary_key)}."
    )


def build_resource_asset(
    spec: ResourceSpec, partitions: dg.DailyPartitionsDefinition, names: PracticeNames
) -> dg.AssetsDefinition:
    """An asset partitioned by ``partitions`` that fetches ``spec`` for all partitions of a
    run at once."""

    @dg.asset(
        key=names.key(spec.name),
        description=_description(spec),
        group_name=names(GROUP),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key=names.io_manager,
        required_resource_keys=names.resource_keys,
        dagster_type=dg.Any,  # tables by day, or a PartitionUpdate of the stored ones
        # Every API-calling step claims a slot; the instance limits the pool across runs.
        pool=names.pool,
        kinds={"drchrono", "parquet"},
        metadata={
            COLUMN_SCHEMA: dagster_table_schema(spec.schema),
            "api_path": spec.path,
            "primary_key": list(spec.primary_key),
            "partition_rule": spec.rule.summary,
        },
    )
    def resource_asset(
        context: dg.AssetExecutionContext, config: IngestConfig
    ) -> TablesByDay | PartitionUpdate:
        window = DayWindow.from_partition_keys(list(context.partition_keys))
        client = names.api(context).client
        storage = names.storage(context)
        before = client.requests_used
        sweep = config.merge_sweep
        if sweep and spec.rule.captures_changes:
            # Daily operation: the sweep fetched what changed; merge it into the stored days
            # (read, merged and written under the asset's writer lock).
            output = _merge_output(spec, sweep, window, client, storage, context.log)
            done = "merged into"
        else:
            output = extract(spec, client, window, context.log)
            done = f"{sum(t.num_rows for t in output.values())} rows for"
        requests = client.requests_used - before
        context.add_asset_metadata({"drchrono/requests": requests})
        context.log.info(f"{spec.name}: {done} {len(window.days)} day(s), {requests} API requests")
        return output

    return resource_asset


def _merge_output(
    spec: ResourceSpec,
    sweep: str,
    window: DayWindow,
    client: DrchronoClient,
    io_manager: HiveParquetIOManager,
    log: dg.DagsterLogManager,
) -> PartitionUpdate:
    """The staged changes merged into the stored days. A day with no file that the changes
    alone cannot fill (a day listed by date, or one before the sweeps' unbroken chain) is
    fetched instead: never merged into nothing."""
    staged = StagedChanges.of(io_manager)
    plan = staged.plan(sweep)
    changes = staged.read(sweep, spec.name)
    stored = set(io_manager.dataset(dg.AssetKey(spec.name)).partition_keys())
    missing = [
        day
        for day in window.partition_keys
        if day not in stored and (spec.rule.lists_new_days or day < plan.covered_from)
    ]
    fetched: TablesByDay = {}
    for days in day_ranges(missing):
        fetched.update(extract(spec, client, days, log))
    as_of = dt.datetime.fromisoformat(plan.as_of)
    return PartitionUpdate(
        lambda tables: merge_changes(spec, changes, tables, window, as_of, fetched)
    )


def build_resource_assets(
    partitions: dg.DailyPartitionsDefinition,
    names: PracticeNames,
    resources: tuple[ResourceSpec, ...],
) -> list[dg.AssetsDefinition]:
    """The asset of each of ``resources`` (of the catalog), partitioned by
    ``partitions``."""
    return [build_resource_asset(spec, partitions, names) for spec in resources]
