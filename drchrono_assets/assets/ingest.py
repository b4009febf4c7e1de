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
from drchrono_assets.source.changes import day_ranges, merge_changes, newest_versions
from drchrono_assets.source.extraction import extract, tables_by_day
from drchrono_assets.source.versions import version_of
from drchrono_assets.sync.staged import StagedChanges, SweepPlan

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
        if sweep:
            # Daily operation: the sweep fetched what changed (or listed a snapshot); merge
            # it into the stored days.
            output = _sweep_output(spec, sweep, window, client, storage, context.log)
            done = "merged into"
        else:
            output = extract(spec, client, window, context.log)
            done = f"{sum(t.num_rows for t in output.values())} rows for"
        requests = client.requests_used - before
        context.add_asset_metadata({"drchrono/requests": requests})
        context.log.info(f"{spec.name}: {done} {len(window.days)} day(s), {requests} API requests")
        return output

    return resource_asset


def _sweep_output(
    spec: ResourceSpec,
    sweep: str,
    window: DayWindow,
    client: DrchronoClient,
    io_manager: HiveParquetIOManager,
    log: dg.DagsterLogManager,
) -> TablesByDay | PartitionUpdate:
    """What the sweep staged, brought into the days of ``window``.

    Dated records are merged into the stored days by primary key (read, merged and written
    under the asset's writer lock). A day with no file that the changes alone cannot fill (a
    day listed by date, or one before the sweeps' unbroken chain) is fetched instead: never
    merged into nothing. A snapshot is the sweep's listing, or for one kept by ``since``, the
    latest stored with the sweep's changes merged in (none stored: listed whole now).
    """
    staged = StagedChanges.of(io_manager)
    plan = staged.plan(sweep)
    records = staged.read(sweep, spec.name)
    as_of = dt.datetime.fromisoformat(plan.as_of)
    dataset = io_manager.dataset(dg.AssetKey(spec.name))
    stored = dataset.partition_keys()
    if spec.rule.whole:
        if spec.rule.captures_changes:
            earlier = [day for day in stored if day <= window.last.isoformat()]
            if not earlier:
                return extract(spec, client, window, log)
            latest = dataset.read_files(earlier[-1:])[earlier[-1]]
            listed_later = (version_of(latest) or as_of) > as_of  # listed whole since
            kept = latest.select(spec.api_schema.names)
            records = kept if listed_later else newest_versions(spec, kept, records)
        return tables_by_day(spec, records, window, as_of, as_of)
    missing = [
        day for day in window.partition_keys if day not in stored and _listed(spec, plan, day)
    ]
    fetched: TablesByDay = {}
    for days in day_ranges(missing):
        fetched.update(extract(spec, client, days, log))
    return PartitionUpdate(
        lambda tables: merge_changes(spec, records, tables, window, as_of, fetched)
    )


def _listed(spec: ResourceSpec, plan: SweepPlan, day: str) -> bool:
    """Whether a day with no file is listed by date, not assembled from the change sets:
    before the sweeps' unbroken chain, or, for records booked ahead, a day whose bookings
    the sweeps do not all know."""
    if day < plan.covered_from:
        return True
    return spec.rule.books_ahead and (plan.assembled_from is None or day < plan.assembled_from)


def build_resource_assets(
    partitions: dg.DailyPartitionsDefinition,
    names: PracticeNames,
    resources: tuple[ResourceSpec, ...],
) -> list[dg.AssetsDefinition]:
    """The asset of each of ``resources`` (of the catalog), partitioned by
    ``partitions``."""
    return [build_resource_asset(spec, partitions, names) for spec in resources]
