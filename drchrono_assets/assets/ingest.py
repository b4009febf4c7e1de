"""The asset factory: one daily-partitioned asset per drchrono resource in the catalog."""

import dagster as dg
import pyarrow as pa

from drchrono_assets.assets.extraction import extract
from drchrono_assets.catalog import RESOURCES, ResourceSpec
from drchrono_assets.catalog.fields import COLUMN_SCHEMA, dagster_table_schema
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.partitions import daily_partitions
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sync.changes import (
    MERGE_TAG,
    StagedChanges,
    merge_changes,
    stored_partitions,
)

# Partition key -> that day's table; the Parquet IO manager writes one file per key.
TablesByDay = dict[str, pa.Table]
GROUP = "drchrono"
# Every API-calling step claims a slot; deploy/dagster.yaml limits the pool across runs.
API_POOL = "drchrono_api"


def _description(spec: ResourceSpec) -> str:
    filters = ", ".join(f"`{name}`" for name in spec.rule.filters) or "none"
    return (
        f"{spec.description}\n\n"
        f"Source: `GET {spec.path}` (filters used: {filters}).\n\n"
        f"Partitioning: {spec.rule.summary}.\n\n"
        f"Primary key: {', '.join(spec.primary_key)}."
    )


def build_resource_asset(spec: ResourceSpec) -> dg.AssetsDefinition:
    """A daily-partitioned asset that fetches ``spec`` for all partitions of a run at once."""

    @dg.asset(
        name=spec.name,
        description=_description(spec),
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        pool=API_POOL,
        kinds={"drchrono", "parquet"},
        metadata={
            COLUMN_SCHEMA: dagster_table_schema(spec.schema),
            "api_path": spec.path,
            "primary_key": list(spec.primary_key),
            "partition_rule": spec.rule.summary,
        },
    )
    def resource_asset(
        context: dg.AssetExecutionContext,
        drchrono: DrchronoApiResource,
        parquet_io_manager: dg.ResourceParam[HiveParquetIOManager],
    ) -> TablesByDay:
        window = DayWindow.from_partition_keys(list(context.partition_keys))
        client = drchrono.client
        before = client.requests_used
        sweep = context.run.tags.get(MERGE_TAG)
        if sweep and spec.rule.captures_changes:
            # Daily operation: the sweep fetched what changed; merge it, fetch nothing.
            changes = StagedChanges(parquet_io_manager.data_root).read(sweep, spec.name)
            stored = stored_partitions(parquet_io_manager, spec, window)
            tables = merge_changes(spec, changes, stored, window)
        else:
            tables = extract(spec, client, window, context.log)
        requests = client.requests_used - before
        context.add_asset_metadata({"drchrono/requests": requests})
        context.log.info(
            f"{spec.name}: {sum(t.num_rows for t in tables.values())} rows for "
            f"{len(tables)} day(s) in {requests} API requests"
        )
        return tables

    return resource_asset


resource_assets = [build_resource_asset(spec) for spec in RESOURCES]
