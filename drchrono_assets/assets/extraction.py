"""Fetch a window of days of one resource with the fewest requests, as Arrow tables per day."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.catalog.partition_rules import Query
from drchrono_assets.catalog.records import missing_fields, records_to_table, unknown_fields
from drchrono_assets.errors import SchemaChangedError
from drchrono_assets.partitions import DayWindow
from drchrono_assets.resources import DrchronoApiResource


def extract(
    spec: ResourceSpec, api: DrchronoApiResource, window: DayWindow, log: logging.Logger
) -> dict[str, pa.Table]:
    """One table per day of ``window`` (empty days included), each with ``spec.schema``."""
    taken_at = dt.datetime.now(dt.UTC)
    queries = spec.rule.queries(window, api)
    # Each query pages sequentially (cursors); separate queries run side by side.
    with ThreadPoolExecutor(
        max_workers=max(1, min(api.max_parallel_requests, len(queries)))
    ) as pool:
        results = list(pool.map(lambda query: _fetch(spec, api, query), queries))
    tables = [table for fetched, _ in results for table in fetched]
    ignored = set().union(*(unknown for _, unknown in results))
    if ignored:
        log.info(f"drchrono {spec.name}: ignoring fields not in the catalog: {sorted(ignored)}")
    table = pa.concat_tables(tables) if tables else spec.api_schema.empty_table()
    table = _latest_per_key(table, spec)
    by_day = spec.rule.split(table, window, taken_at)
    order = [(key, "ascending") for key in spec.primary_key]
    return {key: by_day[key].sort_by(order) for key in window.partition_keys}


def _fetch(
    spec: ResourceSpec, api: DrchronoApiResource, query: Query
) -> tuple[list[pa.Table], set[str]]:
    # Pages become Arrow at once, so a long backfill never holds its JSON in memory.
    tables, unknown = [], set()
    for page in api.iter_pages(spec.path, query):
        missing = missing_fields(page, spec.api_schema)
        if missing:
            raise SchemaChangedError(
                f"drchrono {spec.name}: records no longer carry the API field(s) "
                f"{', '.join(sorted(missing))}. The API's response format changed; update the "
                "catalog schema. Partitions already written are unchanged."
            )
        tables.append(records_to_table(page, spec.api_schema, spec.name))
        unknown |= unknown_fields(page, spec.api_schema)
    return tables, unknown


def _latest_per_key(table: pa.Table, spec: ResourceSpec) -> pa.Table:
    """Drop repeats of a primary key (a record updated mid-pagination), keeping the last seen."""
    keys = list(spec.primary_key)
    if any(table[key].null_count for key in keys):
        raise SchemaChangedError(
            f"drchrono {spec.name}: records without a primary key ({', '.join(keys)})"
        )
    numbered = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    last = numbered.group_by(keys, use_threads=False).aggregate([("__row", "max")])["__row_max"]
    if len(last) == table.num_rows:
        return table
    return table.take(pc.sort_indices(last))
