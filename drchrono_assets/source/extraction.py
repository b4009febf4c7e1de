"""Fetch one resource with the fewest requests: a window of days as Arrow tables per day, or
what changed since a given time. The partition rules plan the queries; this sends them."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.api import DrchronoClient
from drchrono_assets.catalog import ResourceSpec
from drchrono_assets.catalog.partition_rules import Query, QueryPlan
from drchrono_assets.catalog.records import missing_fields, records_to_table, unknown_fields
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import SchemaChangedError
from drchrono_assets.source.versions import with_version


@dataclass(frozen=True)
class Fetched:
    """The records some queries returned, each once in its latest version."""

    table: pa.Table  # spec.api_schema
    answered_at: dt.datetime | None  # the API's time when the first query's first page left


def resolve_queries(
    plan: QueryPlan, client: DrchronoClient, parents: pa.Table | None = None
) -> list[Query]:
    """The plan's queries, each once per record of its fan-out's path: the ``parents`` given
    (that path's records, already listed), else listed now."""
    if plan.fan_out is None:
        return list(plan.queries)
    parameter, path = plan.fan_out
    ids = (
        parents["id"].to_pylist()
        if parents is not None
        else [parent["id"] for parent in client.list_records(path)]
    )
    return [{**query, parameter: parent} for query in plan.queries for parent in ids]


def fetch(
    spec: ResourceSpec,
    client: DrchronoClient,
    plan: QueryPlan,
    log: logging.Logger,
    parents: pa.Table | None = None,
) -> Fetched:
    """Run the queries of ``plan`` against ``spec``'s endpoint (a fan-out over ``parents``,
    if given); separate queries go side by side."""
    queries = resolve_queries(plan, client, parents)
    # Each query pages sequentially (cursors).
    parallel = client.config.max_parallel_requests
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(queries)))) as pool:
        results = list(pool.map(lambda query: _fetch(spec, client, query), queries))
    ignored = set().union(*(result.unknown for result in results))
    if ignored:
        log.info(f"drchrono {spec.name}: ignoring fields not in the catalog: {sorted(ignored)}")
    tables = [table for result in results for table in result.tables]
    table = pa.concat_tables(tables) if tables else spec.api_schema.empty_table()
    times = [result.answered_at for result in results if result.answered_at is not None]
    return Fetched(_latest_per_key(table, spec), min(times, default=None))


def extract(
    spec: ResourceSpec, client: DrchronoClient, window: DayWindow, log: logging.Logger
) -> dict[str, pa.Table]:
    """One table per day of ``window`` (empty days included), each with ``spec.schema``."""
    taken_at = dt.datetime.now(dt.UTC)
    fetched = fetch(spec, client, spec.rule.queries(window), log)
    return tables_by_day(spec, fetched.table, window, fetched.answered_at or taken_at, taken_at)


def tables_by_day(
    spec: ResourceSpec,
    table: pa.Table,
    window: DayWindow,
    as_of: dt.datetime,
    taken_at: dt.datetime,
) -> dict[str, pa.Table]:
    """``table`` (the API's columns) as one table per day of ``window``, marked as of the
    API's time ``as_of``; a snapshot's rows are stamped ``taken_at``."""
    # Ordered and versioned once: each day's slice keeps both (a snapshot is one table for
    # all days).
    table = with_version(spec.in_key_order(table), as_of)
    return spec.rule.split(table, window, taken_at)


@dataclass
class _QueryResult:
    tables: list[pa.Table] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    answered_at: dt.datetime | None = None


def _fetch(spec: ResourceSpec, client: DrchronoClient, query: Query) -> _QueryResult:
    # Pages become Arrow at once, so a long backfill never holds its JSON in memory.
    result = _QueryResult()
    for page in client.iter_pages(spec.path, query):
        if result.answered_at is None:
            result.answered_at = client.last_answer_time()
        missing = missing_fields(page, spec.api_schema)
        if missing:
            raise SchemaChangedError(
                f"drchrono {spec.name}: records no longer carry the API field(s) "
                f"{', '.join(sorted(missing))}. The API's response format changed; update the "
                "catalog schema. Partitions already written are unchanged."
            )
        result.tables.append(records_to_table(page, spec.api_schema, spec.name))
        result.unknown |= unknown_fields(page, spec.api_schema)
    return result


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
