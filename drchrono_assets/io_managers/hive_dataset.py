"""One asset's Parquet files in a hive layout BI engines read as one dataset.

Layout: ``<root>/<asset>/date=<day>/part-0.parquet``, or ``<root>/<asset>/part-0.parquet`` for
an unpartitioned asset. Files being written on a local disk are staged in ``<root>/.staging/``
and renamed into place, so no reader's glob ever meets a half-written file, even after a crash.
Every file and folder is created with the modes of an ``AtRest`` (owner-only by default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import ClassVar

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.io_managers.at_rest import PRIVATE, AtRest
from drchrono_assets.io_managers.writer_lock import writer_lock
from drchrono_assets.source.versions import version_of

PARTITION_COLUMN = "date"
FILE_NAME = "part-0.parquet"  # one file per partition, so a re-run replaces it
STAGING_FOLDER = ".staging"  # beside the datasets, never inside one
# Partition key (None: unpartitioned) -> its table.
Tables = Mapping[str | None, pa.Table]


class HiveDataset:
    """The Parquet files of one asset under ``root``: where they go, which partitions exist,
    reading them as one table and writing them atomically.

    ``root`` is a local folder or any fsspec location (``s3://bucket/prefix``, with the storage
    options of ``at_rest.root``); ``key`` an asset key or, for a top-level asset, its name;
    ``at_rest`` the modes of what is written on a local disk.
    """

    # Hive key of every partition folder; readers see it as a DATE column.
    partition_column: ClassVar[str] = PARTITION_COLUMN

    def __init__(self, root: UPath, key: dg.AssetKey | str, at_rest: AtRest = PRIVATE) -> None:
        self.root = root
        self.at_rest = at_rest
        self.asset_key = key if isinstance(key, dg.AssetKey) else dg.AssetKey(key)
        self.folder = root.joinpath(*self.asset_key.path)

    @property
    def glob(self) -> UPath:
        """Every partition's file, as a pattern for ``read_parquet(..., hive_partitioning)``."""
        return self.folder / f"{PARTITION_COLUMN}=*" / FILE_NAME

    def file(self, partition_key: str | None = None) -> UPath:
        """The file of partition ``partition_key``, or of an unpartitioned asset."""
        folder = self.folder
        if partition_key is not None:
            folder = folder / f"{PARTITION_COLUMN}={partition_key}"
        return folder / FILE_NAME

    def partition_keys(self) -> list[str]:
        """Keys of the partitions that have a file, in order."""
        self._forget_listings()
        if not self.folder.exists():
            return []
        prefix = f"{PARTITION_COLUMN}="
        return sorted(
            child.name.removeprefix(prefix)
            for child in self.folder.iterdir()
            if child.name.startswith(prefix) and (child / FILE_NAME).exists()
        )

    def read(
        self, partition_keys: Iterable[str | None], columns: list[str] | None = None
    ) -> pa.Table:
        """The files of ``partition_keys`` (``columns`` of them, or all) as one table, with the
        partition column added back."""
        tables = []
        for key in partition_keys:
            path = self.file(key)
            try:
                with path.open("rb") as handle:
                    table = pq.read_table(handle, columns=columns)
            except FileNotFoundError:
                missing = True
            else:
                missing = False
            if missing:  # raised outside the handler: one clear error, nothing chained
                raise FileNotFoundError(
                    f"{self.asset_key.to_user_string()}{f' partition {key}' if key else ''} "
                    f"has not been materialized ({path})"
                )
            if key is not None:
                day = dt.date.fromisoformat(key)
                table = table.append_column(
                    PARTITION_COLUMN, pa.array([day] * table.num_rows, pa.date32())
                )
            tables.append(table)
        return pa.concat_tables(tables)

    def row_count(self, partition_keys: Iterable[str]) -> int:
        """How many rows the files of ``partition_keys`` hold, from their footers alone.
        (Reading no column instead, pyarrow 26 sometimes aborts the process at exit.)"""
        rows = 0
        for key in partition_keys:
            with self.file(key).open("rb") as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        return rows

    def empty_table(self, file_schema: pa.Schema) -> pa.Table:
        """What ``read`` returns for files of ``file_schema`` when no partition is read."""
        return file_schema.append(pa.field(PARTITION_COLUMN, pa.date32())).empty_table()

    def scan(self, columns: list[str], predicate: pc.Expression) -> pa.Table:
        """``columns`` (the partition column among them, if wanted) of the rows of every
        partition that match ``predicate``; Arrow reads the files in parallel, which matters
        on object storage, and keeps only the matches."""
        import pyarrow.dataset as ds  # on first use: half a second of start-up

        self._forget_listings()
        if not self.folder.exists():
            return pa.table({name: [] for name in columns})
        dataset = ds.dataset(
            self.folder.path,
            filesystem=self.folder.fs,
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive"
            ),
        )
        if not dataset.files:  # partition folders whose files were removed
            return pa.table({name: [] for name in columns})
        return dataset.to_table(columns=columns, filter=predicate)

    def read_files(self, partition_keys: Iterable[str]) -> dict[str, pa.Table]:
        """The stored table of each of ``partition_keys`` that has a file, as written (no
        partition column; its version metadata kept)."""
        existing = set(self.partition_keys())
        tables = {}
        for key in partition_keys:
            if key in existing:
                with self.file(key).open("rb") as handle:
                    tables[key] = pq.read_table(handle)
        return tables

    def write(self, tables: Tables) -> set[str | None]:
        """Write each table as the file of its partition key (``None``: unpartitioned), each
        atomically, while no other writer of this asset writes; a re-run replaces the files.
        A stored file newer than its table (``VERSION_KEY``) is kept: returns those keys."""
        with writer_lock(self.root, self._lock_name, self.at_rest):
            return self._write_newer(tables)

    def update(
        self, partition_keys: Sequence[str], change: Callable[[dict[str, pa.Table]], Tables]
    ) -> tuple[Tables, set[str | None]]:
        """Read, change and write back partitions as one step no other writer interleaves
        with: ``change`` gets the stored tables of ``partition_keys`` that exist and returns
        the tables to write. Returns them, and the keys whose stored file was newer (kept)."""
        with writer_lock(self.root, self._lock_name, self.at_rest):
            tables = change(self.read_files(partition_keys))
            return tables, self._write_newer(tables)

    @property
    def _lock_name(self) -> str:
        return "__".join(self.asset_key.path)

    def _write_newer(self, tables: Tables) -> set[str | None]:
        name = self.asset_key.to_user_string()
        if any(PARTITION_COLUMN in table.column_names for table in tables.values()):
            raise TypeError(
                f"{name}: a '{PARTITION_COLUMN}' column would clash with the hive partition "
                "column; drop or rename it"
            )
        if len({table.schema.remove_metadata() for table in tables.values()}) != 1:
            raise TypeError(f"{name}: partitions differ in schema")
        kept = self._stored_newer(tables)
        tables = {key: table for key, table in tables.items() if key not in kept}
        staging = self.root / STAGING_FOLDER
        if settings.is_local(staging):
            remove_abandoned_files(staging)
        # A snapshot is one table for every day of the run: encoded once, stored once, and on
        # a local disk each day's file is a hard link to it.
        days_by_table: dict[int, tuple[pa.Table, list[str | None]]] = {}
        for key, table in tables.items():
            days_by_table.setdefault(id(table), (table, []))[1].append(key)
        for table, keys in days_by_table.values():
            paths = [self.file(key) for key in keys]
            write_atomically(parquet_bytes(table), paths, staging, self.at_rest)
        return kept

    def _stored_newer(self, tables: Tables) -> set[str | None]:
        """Keys whose stored file is as of a later time than the table that would replace it
        (only files that exist are opened, and only their footers read)."""
        versions = {key: version_of(table) for key, table in tables.items()}
        if not any(versions.values()):
            return set()
        existing = set(self.partition_keys()) if None not in tables else {None}
        newer = set()
        for key, version in versions.items():
            if version is None or key not in existing:
                continue
            try:
                with self.file(key).open("rb") as handle:
                    stored = version_of(pq.read_schema(handle).empty_table())
            except FileNotFoundError:
                continue
            if stored is not None and stored > version:
                newer.add(key)
        return newer

    def _forget_listings(self) -> None:
        # s3fs keeps directory listings for the life of the process (no expiry), so partitions
        # another process wrote since the last look would be missed.
        self.folder.fs.invalidate_cache(self.folder.path)


def check_writable(root: UPath, at_rest: AtRest = PRIVATE) -> None:
    """Raise a ``ConfigurationError`` naming ``DRCHRONO_DATA_ROOT`` unless files can be
    written under ``root`` (creating it, and its staging folder, with ``at_rest``'s mode)."""
    probe = root / STAGING_FOLDER / f"probe-{uuid.uuid4().hex}"
    try:
        if settings.is_local(root):
            at_rest.make_folders(probe.parent)
            os.close(at_rest.create_file(probe.path, at_rest.file_mode))
        else:  # an object carrying the root's encryption, like every other write
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
def _staged_file(staging: UPath, at_rest: AtRest) -> Iterator[tuple[str, int]]:
    """A new owner-only file in ``staging``, locked while this process writes it (see
    below): its path and a descriptor open for writing."""
    while True:
        path = os.path.join(staging.path, f"{uuid.uuid4().hex}.parquet.partial")
        fd = at_rest.create_file(path, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:  # not removed as abandoned before we locked it
            break
        os.close(fd)
    try:
        yield path, fd
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


def write_atomically(
    data: bytes | pa.Buffer, paths: Sequence[UPath], staging: UPath, at_rest: AtRest = PRIVATE
) -> None:
    """Write a file's bytes to each of ``paths`` so no reader ever sees half a file, and a
    re-run replaces a partition's file. On a local disk the file is read-only (see
    ``AtRest``); on object storage each object carries the paths' encryption options."""
    if settings.is_local(paths[0]):
        at_rest.make_folders(staging)
        with _staged_file(staging, at_rest) as (partial, fd):
            # Through the descriptor: once read-only, the file cannot be opened to write.
            with open(fd, "wb", closefd=False) as handle:
                handle.write(data)
            # Every path links to this inode, so a write in place to one would change them
            # all. A re-run still replaces a path: renaming needs only the folder writable.
            os.fchmod(fd, at_rest.stored_file_mode)
            for path in paths:
                at_rest.make_folders(path.parent)
                # A link shares the staged file's inode, so its lock keeps the clean-up off it.
                link = f"{partial}.{uuid.uuid4().hex}"
                os.link(partial, link)
                os.replace(link, path.path)  # same file system: atomic
    else:
        # An object store PUT (single or multipart) becomes visible whole or not at all.
        for path in paths:
            with path.open("wb") as handle:
                handle.write(data)
