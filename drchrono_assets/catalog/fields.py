"""Builders for Arrow fields that carry what the catalog knows about each column.

Field metadata (kept in every Parquet file, so all files of a resource share one schema):
``description`` for the UI, ``api_name`` when the column is stored under another name,
``id_of`` on an integer column derived from a reference path, and ``phi`` for patient data.
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

MONEY = pa.decimal128(12, 2)
QUANTITY = pa.decimal128(10, 3)
TIMESTAMP = pa.timestamp("us")  # naive: the API's timestamps are the practice's local time
SNAPSHOT_AT = pa.timestamp("us", tz="UTC")

API_NAME = b"api_name"
ID_OF = b"id_of"
PHI = b"phi"
DESCRIPTION = b"description"


def column(
    name: str,
    type_: pa.DataType,
    description: str = "",
    *,
    api_name: str | None = None,
    phi: bool = False,
) -> pa.Field:
    """A column filled from the API field of the same name (or ``api_name``)."""
    metadata = {DESCRIPTION: description.encode()}
    if api_name:
        metadata[API_NAME] = api_name.encode()
    if phi:
        metadata[PHI] = b"true"
    return pa.field(name, type_, metadata=metadata)


def reference(
    name: str, target: str, description: str = "", *, phi: bool = False
) -> list[pa.Field]:
    """A reference path such as ``"/api/doctors/12"``, kept, plus its integer id column."""
    return [
        column(name, pa.string(), description or f"Path of the {target} record", phi=phi),
        pa.field(
            f"{name}_id",
            pa.int64(),
            metadata={
                DESCRIPTION: f"Integer id parsed from `{name}`".encode(),
                ID_OF: name.encode(),
            },
        ),
    ]


def list_of(type_: pa.DataType) -> pa.DataType:
    """A list type as Parquet stores it (child named ``element``), so schemas round-trip exactly."""
    return pa.list_(pa.field("element", type_))


def struct_list(**children: pa.DataType) -> pa.DataType:
    """A list of objects, e.g. an appointment's reminders."""
    return list_of(pa.struct([pa.field(name, type_) for name, type_ in children.items()]))


def api_name(field: pa.Field) -> str:
    """The API field a column is read from."""
    return (field.metadata or {}).get(API_NAME, field.name.encode()).decode()


def derived_from(field: pa.Field) -> str | None:
    """For an ``<x>_id`` column, the reference-path column it is parsed from."""
    source = (field.metadata or {}).get(ID_OF)
    return source.decode() if source else None


def description(field: pa.Field) -> str:
    return (field.metadata or {}).get(DESCRIPTION, b"").decode()


def is_phi(field: pa.Field) -> bool:
    return (field.metadata or {}).get(PHI) == b"true"


COLUMN_SCHEMA = "dagster/column_schema"  # the metadata key the UI lists columns from


def dagster_table_schema(schema: pa.Schema) -> dg.TableSchema:
    """The column list the Dagster UI shows for a dataset; PHI columns say so."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=("PHI. " if is_phi(field) else "") + description(field),
            )
            for field in schema
        ]
    )
