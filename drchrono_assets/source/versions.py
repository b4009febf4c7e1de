"""The API time a table's records are as of, carried in its Arrow schema metadata (and so in
each Parquet file's): a file is never replaced by one as of an earlier time, so a late
writer cannot put older records back."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

VERSION_KEY = b"drchrono.as_of"  # UTC, ISO


def with_version(table: pa.Table, as_of: dt.datetime) -> pa.Table:
    """``table`` marked as holding the records as of ``as_of``."""
    metadata = {**(table.schema.metadata or {}), VERSION_KEY: as_of.isoformat().encode()}
    return table.replace_schema_metadata(metadata)


def version_of(table: pa.Table) -> dt.datetime | None:
    """The time ``table``'s records are as of, if it says."""
    stamp = (table.schema.metadata or {}).get(VERSION_KEY)
    return dt.datetime.fromisoformat(stamp.decode()) if stamp else None
