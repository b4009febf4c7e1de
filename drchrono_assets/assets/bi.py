"""One DuckDB file of views over every dataset, for BI tools and notebooks."""

import os
import shutil
import tempfile
from collections.abc import Sequence

import dagster as dg
import duckdb
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.assets.bi_questions import bi_questions_markdown
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.practice_names import PracticeNames

DATABASE_NAME = "drchrono.duckdb"


def build_bi_duckdb(
    partitioned: Sequence[dg.AssetsDefinition], ar_aging: dg.AssetsDefinition, names: PracticeNames
) -> dg.AssetsDefinition:
    """The DuckDB file with a view of each of the ``partitioned`` datasets and ``ar_aging``."""

    @dg.asset(
        key=names.key("bi_duckdb"),
        group_name=names("bi"),
        required_resource_keys={names.io_manager},
        deps=[*partitioned, ar_aging],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"duckdb"},
        automation_condition=dg.AutomationCondition.eager(),
        # On the asset's page: the questions to ask the file (its path: each materialization's).
        metadata={"bi_questions": dg.MetadataValue.md(bi_questions_markdown())},
    )
    def bi_duckdb(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """A DuckDB database beside the data with one view per dataset (``appointments``, ...).

        Metabase, Superset, Evidence or a notebook open this one file and see every dataset as a
        table over the live Parquet files, with the ``date`` partition column. The file's path is
        each materialization's metadata entry ``path``; ready-made questions with their SQL
        (collections per doctor, unbilled visits, denial rates) are the entry ``bi_questions``.
        """
        storage = names.storage(context)
        root = UPath(storage.data_root)
        if not settings.is_local(root):
            raise ConfigurationError(
                f"bi_duckdb writes a DuckDB file beside the data and needs a local "
                f"DRCHRONO_DATA_ROOT, not {root.protocol}://"
            )
        # Absolute paths in the views: a BI tool opens the file from its own working folder.
        root = UPath(os.path.abspath(root.path))
        views = {}
        for node in partitioned:
            dataset = storage.dataset(node.key)
            if dataset.partition_keys():
                views[node.key.path[-1]] = (
                    f"read_parquet({_absolute(dataset.glob.path)}, hive_partitioning = true, "
                    f"hive_types = {{'{dataset.partition_column}': DATE}})"
                )
        aging = storage.dataset(ar_aging.key).file()
        if aging.exists():
            views[ar_aging.key.path[-1]] = f"read_parquet({_absolute(aging.path)})"

        database = root / DATABASE_NAME
        at_rest = storage.at_rest
        at_rest.make_folders(root)
        # Built aside and renamed: a BI tool holding the old file keeps reading it undisturbed.
        # Aside is a folder only the owner can enter (mkdtemp: 0700): DuckDB creates its files
        # (the database, its write-ahead log) with the umask's modes, unreachable there.
        building = tempfile.mkdtemp(prefix=f".{DATABASE_NAME}.", suffix=".partial", dir=root.path)
        try:
            partial = os.path.join(building, DATABASE_NAME)
            with duckdb.connect(partial) as db:
                for name, source in views.items():
                    db.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
            # Writable by its owner, unlike the datasets: nothing else shares its inode, and
            # DuckDB opens a file it may not write only when told ``read_only``.
            os.chmod(partial, at_rest.file_mode)
            os.replace(partial, database.path)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return dg.MaterializeResult(
            metadata={"path": dg.MetadataValue.path(database.path), "views": sorted(views)}
        )

    return bi_duckdb


def _absolute(path: str) -> str:
    """``path`` made absolute, as a SQL string literal."""
    return _sql_string(os.path.abspath(path))


def _sql_string(text: str) -> str:
    """A SQL string literal (view definitions take no parameters): quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
