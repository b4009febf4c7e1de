"""What the sandbox served, computed independently of the asset code, and Parquet readers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from drchrono_assets.catalog import RESOURCES, ResourceSpec
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveDataset
from drchrono_assets.source.versions import VERSION_KEY
from drchrono_assets_tests.support.definitions import resource_assets
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.resource_table import DAY_FIELDS

SPECS = {spec.name: spec for spec in RESOURCES}


def served(
    sandbox: SandboxServer, resource: str, day: str, practice: int = 0
) -> list[dict[str, Any]]:
    """The records partition ``day`` of ``resource`` of the sandbox's ``practice`` (its index)
    should hold."""
    records = getattr(sandbox.state.practices[practice], resource)
    field = DAY_FIELDS.get(resource)
    if field is None:
        return list(records)  # snapshot: the whole resource
    return [record for record in records if record[field][:10] == day]


def partition_file(data_root: str | Path, resource: str, day: str) -> Path:
    """The local file of partition ``day`` of ``resource``."""
    return Path(HiveDataset(UPath(data_root), resource).file(day).path)


def unversioned(schema: pa.Schema) -> pa.Schema:
    """A stored file's schema less the version an ingest asset's file records: the time its
    records are as of (``VERSION_KEY``); the column schema and its metadata are the rest."""
    metadata = {key: value for key, value in (schema.metadata or {}).items() if key != VERSION_KEY}
    return schema.with_metadata(metadata) if metadata else schema.remove_metadata()


def read_partition(data_root: str | Path, resource: str, day: str) -> pa.Table:
    """The stored table of partition ``day`` of ``resource``."""
    return pq.read_table(partition_file(data_root, resource, day))


def materialize(
    resources: dict[str, Any],
    first: str,
    last: str | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    assets: list[Any] | None = None,
    selection: dg.AssetSelection | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` (default: every ingest asset) for one day or ``first..last``."""
    tags = {} if last is None else DayWindow.from_partition_keys([first, last]).run_tags
    return dg.materialize(
        assets or resource_assets,
        partition_key=None if last is not None else first,
        resources=resources,
        tags=tags,
        instance=instance,
        raise_on_error=raise_on_error,
        selection=selection,
    )


def run_billing(
    resources: dict[str, Any], first: str, last: str | None = None
) -> dg.ExecuteInProcessResult:
    """Materialize ingest, billing_report and its checks for one day or ``first..last``."""
    from drchrono_assets_tests.support.definitions import billing_checks, billing_report

    return materialize(
        resources, first, last, assets=[*resource_assets, billing_report, *billing_checks]
    )


def every_asset() -> list[Any]:
    """All assets and checks of the code location."""
    from drchrono_assets_tests.support.definitions import (
        ar_aging,
        bi_duckdb,
        billing_checks,
        billing_report,
    )

    return [*resource_assets, billing_report, ar_aging, bi_duckdb, *billing_checks]


def assert_partition_matches(
    table: pa.Table, spec: ResourceSpec, expected: list[dict[str, Any]]
) -> None:
    """Row by row: ids, count, money to the cent, reference ids."""
    rows = {row["id"]: row for row in table.to_pylist()}
    assert len(rows) == table.num_rows == len(expected), spec.name
    assert set(rows) == {record["id"] for record in expected}, spec.name
    for record in expected:
        row = rows[record["id"]]
        for field in spec.api_schema:
            name = field.name
            if pa.types.is_decimal(field.type) and record.get(name) is not None:
                assert row[name] == Decimal(str(record[name])), (spec.name, name)
            elif name.endswith("_id") and name[:-3] in record:
                path = record[name[:-3]]
                assert row[name] == (int(path.rsplit("/", 1)[1]) if path else None)
            elif pa.types.is_string(field.type) and name in record:
                assert row[name] == record[name], (spec.name, name)
            elif pa.types.is_integer(field.type) or pa.types.is_boolean(field.type):
                assert row[name] == record.get(name), (spec.name, name)
