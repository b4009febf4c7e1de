"""Parquet in a hive layout BI engines read as one dataset.

Layout: ``<root>/<asset>/date=<day>/part-0.parquet``. Files being written on a local disk
are staged in ``<root>/.staging/`` and renamed into place, so no reader's glob ever meets a
half-written file, even after a crash.

Dagster's stock ``UPathIOManager`` refuses an output that covers several partitions, which is
exactly what a single-run backfill produces, hence this one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import uuid
from collections.abc import Iterator, Mapping

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.catalog.fields import dagster_table_schema
from drchrono_assets.errors import ConfigurationError

PARTITION_COLUMN = "date"
FILE_NAME = "part-0.parquet"  # one file per partition, so a re-run replaces it
STAGING_FOLDER = ".staging"  # beside the datasets, never inside one


class HiveParquetIOManager(dg.ConfigurableIOManager):
    """Writes each partition of an asset as one Parquet file, atomically; reads many as one table.

    ``data_root`` is a local folder or any fsspec URL (``s3://bucket/prefix``).
    """

    data_root: str = "data"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Before the step spends any API request on data it could not store.
        check_writable(UPath(self.data_root))

    def dataset_path(self, asset_key: dg.AssetKey) -> UPath:
        return UPath(self.data_root).joinpath(*asset_key.path)

    def file_path(self, asset_key: dg.AssetKey, partition_key: str | None) -> UPath:
        folder = self.dataset_path(asset_key)
        if partition_key is not None:
            folder = folder / f"{PARTITION_COLUMN}={partition_key}"
        return folder / FILE_NAME

    def handle_output(
        self, context: dg.OutputContext, obj: pa.Table | Mapping[str, pa.Table]
    ) -> None:
        tables = self._tables_by_partition(context, obj)
        if any(PARTITION_COLUMN in table.column_names for table in tables.values()):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: a '{PARTITION_COLUMN}' column would clash "
                "with the hive partition column; drop or rename it"
            )
        schemas = {table.schema for table in tables.values()}
        if len(schemas) != 1:
            raise TypeError(f"{context.asset_key.to_user_string()}: partitions differ in schema")
        staging = UPath(self.data_root) / STAGING_FOLDER
        if settings.is_local(staging):
            remove_abandoned_files(staging)
        written: dict[str | None, tuple[UPath, int]] = {}
        encoded: tuple[pa.Table, pa.Buffer] | None = None
        for key, table in tables.items():
            # A snapshot is one table for every day of the run: encoded once, written to each.
            if encoded is None or encoded[0] is not table:
                encoded = (table, parquet_bytes(table))
            path = self.file_path(context.asset_key, key)
            write_atomically(encoded[1], path, staging)
            written[key] = (path, table.num_rows)
        per_partition = len(written) > 1
        for key, (path, rows) in written.items():
            metadata = {"dagster/row_count": rows, "path": dg.MetadataValue.path(str(path))}
            if per_partition:
                context.step_context.add_asset_metadata(metadata, partition_key=key)
            else:
                context.add_output_metadata(metadata)
        context.add_output_metadata(
            {
                "dagster/uri": str(self.dataset_path(context.asset_key)),
                "dagster/column_schema": dagster_table_schema(schemas.pop()),
                "partitions_written": len(written),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | pa.Table:
        keys: list[str | None] = (
            list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        )
        combined = self.read_partitions(context.asset_key, keys)
        if context.dagster_type.typing_type is pa.Table:
            return combined
        # Arrow-backed columns keep money as exact decimals.
        return combined.to_pandas(types_mapper=pd.ArrowDtype)

    def existing_partitions(self, asset_key: dg.AssetKey) -> list[str]:
        """Partition keys of ``asset_key`` that have a file, in order."""
        folder = self.dataset_path(asset_key)
        # s3fs keeps directory listings for the life of the process (no expiry), so partitions
        # another process wrote since the last look would be missed.
        folder.fs.invalidate_cache(folder.path)
        if not folder.exists():
            return []
        prefix = f"{PARTITION_COLUMN}="
        return sorted(
            child.name.removeprefix(prefix)
            for child in folder.iterdir()
            if child.name.startswith(prefix) and (child / FILE_NAME).exists()
        )

    def scan(
        self, asset_key: dg.AssetKey, columns: list[str], predicate: pc.Expression
    ) -> pa.Table:
        """``columns`` (the partition column among them, if wanted) of the rows of every
        partition that match ``predicate``; Arrow reads the files in parallel, which matters
        on object storage, and keeps only the matches."""
        folder = self.dataset_path(asset_key)
        folder.fs.invalidate_cache(folder.path)
        if not folder.exists():
            return pa.table({name: [] for name in columns})
        dataset = ds.dataset(
            folder.path,
            filesystem=folder.fs,
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive"
            ),
        )
        return dataset.to_table(columns=columns, filter=predicate)

    def read_partitions(
        self, asset_key: dg.AssetKey, keys: list[str | None], columns: list[str] | None = None
    ) -> pa.Table:
        """The files of ``keys`` (``columns`` of them, or all) as one table, with the partition
        column added back."""
        tables = []
        for key in keys:
            path = self.file_path(asset_key, key)
            try:
                with path.open("rb") as handle:
                    table = pq.read_table(handle, columns=columns)
            except FileNotFoundError:
                missing = True
            else:
                missing = False
            if missing:  # raised outside the handler: one clear error, nothing chained
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()}{f' partition {key}' if key else ''} "
                    f"has not been materialized ({path})"
                )
            if key is not None:
                day = dt.date.fromisoformat(key)
                table = table.append_column(
                    PARTITION_COLUMN, pa.array([day] * table.num_rows, pa.date32())
                )
            tables.append(table)
        return pa.concat_tables(tables)

    @staticmethod
    def _tables_by_partition(
        context: dg.OutputContext, obj: pa.Table | Mapping[str, pa.Table]
    ) -> dict[str | None, pa.Table]:
        if not context.has_asset_partitions:
            if not isinstance(obj, pa.Table):
                raise TypeError(f"{context.asset_key.to_user_string()}: expected a pyarrow Table")
            return {None: obj}
        keys = list(context.asset_partition_keys)
        if isinstance(obj, pa.Table) and len(keys) == 1:
            return {keys[0]: obj}
        if not isinstance(obj, Mapping) or set(obj) != set(keys):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected one pyarrow Table per partition "
                f"of the run ({keys[0]}...{keys[-1]})"
            )
        return {key: obj[key] for key in keys}


def check_writable(root: UPath) -> None:
    """Raise a ``ConfigurationError`` naming ``DRCHRONO_DATA_ROOT`` unless files can be
    written under ``root``."""
    probe = root / STAGING_FOLDER / f"probe-{uuid.uuid4().hex}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        with contextlib.suppress(FileNotFoundError):  # another writer's clean-up took it
            probe.unlink()
    except OSError as error:
        problem = type(error).__name__
    else:
        return
    raise ConfigurationError(
        f"the data root {root} is not writable ({problem}): set DRCHRONO_DATA_ROOT to a "
        "folder or bucket this process can write"
    )


@contextlib.contextmanager
def _staged_file(staging: UPath) -> Iterator[str]:
    """A new file in ``staging``, locked while this process writes it (see below)."""
    while True:
        path = os.path.join(staging.path, f"{uuid.uuid4().hex}.parquet.partial")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:  # not removed as abandoned before we locked it
            break
        os.close(fd)
    try:
        yield path
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def remove_abandoned_files(staging: UPath) -> None:
    """Remove staged files no live process holds: a crash left them behind."""
    if not staging.exists():
        return
    for child in staging.iterdir():
        try:
            fd = os.open(child.path, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # being written right now
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(child.path)
        finally:
            os.close(fd)


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    """``table`` encoded as a Parquet file."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_atomically(data: pa.Buffer, path: UPath, staging: UPath) -> None:
    """Write a Parquet file's bytes so no reader ever sees half a file, and a re-run
    replaces the partition's file."""
    if settings.is_local(path):
        staging.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _staged_file(staging) as partial:
            with open(partial, "wb") as handle:
                handle.write(data)
            os.replace(partial, path.path)  # same file system: atomic
    else:
        # An object store PUT (single or multipart) becomes visible whole or not at all.
        with path.open("wb") as handle:
            handle.write(data)
