"""The IO manager that stores every asset as a ``HiveDataset`` under one data root.

Dagster's stock ``UPathIOManager`` refuses an output that covers several partitions, which is
exactly what a single-run backfill produces, hence this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow as pa
from upath import UPath

from drchrono_assets.catalog.fields import COLUMN_SCHEMA, dagster_table_schema
from drchrono_assets.io_managers.at_rest import AtRest
from drchrono_assets.io_managers.hive_dataset import HiveDataset, check_writable

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PartitionUpdate:
    """An output that changes stored partitions rather than replacing them: ``change`` gets
    the stored tables of the run's partitions that have a file and returns one table per
    partition. Reading, changing and writing hold the asset's writer lock throughout."""

    change: Callable[[dict[str, pa.Table]], Mapping[str, pa.Table]]


class HiveParquetIOManager(dg.ConfigurableIOManager):
    """Writes each partition of an asset as one Parquet file, atomically; reads many as one table.

    ``data_root`` is a local folder or any fsspec URL (``s3://bucket/prefix``). What is written
    there is protected as ``at_rest`` says (see ``AtRest``).
    """

    data_root: str = "data"
    data_group_read: bool = False  # DRCHRONO_DATA_GROUP_READ
    s3_sse: str | None = None  # DRCHRONO_S3_SSE
    s3_sse_kms_key_id: str | None = None  # DRCHRONO_S3_SSE_KMS_KEY_ID
    # The practice whose data root this is: its assets' keys start with its name, which
    # the folders under the root leave out (the root is the practice's own).
    practice: str | None = None

    @property
    def at_rest(self) -> AtRest:
        """The protection of every file written under the data root; pass it to anything
        else that writes there (``StagedChanges``)."""
        return AtRest(self.data_group_read, self.s3_sse, self.s3_sse_kms_key_id)

    @property
    def root(self) -> UPath:
        """The data root, with the storage options (encryption) every write must carry."""
        return self.at_rest.root(self.data_root)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Before a run's step spends any API request on data it could not store. A sensor's
        # tick (no run) only reads: probing would write, even in `dagster sensor preview`.
        root = self.root  # refuses encryption a data root of this kind cannot carry
        if context.run is not None:
            check_writable(root, self.at_rest)

    def dataset(self, asset_key: dg.AssetKey) -> HiveDataset:
        """Where ``asset_key`` is stored, for assets that read or list storage themselves:
        ``clinic_a/appointments`` and ``appointments`` alike in clinic_a's root."""
        path = asset_key.path
        if self.practice is not None and len(path) > 1 and path[0] == self.practice:
            path = path[1:]
        return HiveDataset(self.root, dg.AssetKey(path), self.at_rest)

    def handle_output(
        self,
        context: dg.OutputContext,
        obj: pa.Table | Mapping[str, pa.Table] | PartitionUpdate,
    ) -> None:
        dataset = self.dataset(context.asset_key)
        if isinstance(obj, PartitionUpdate):
            keys = list(context.asset_partition_keys)

            def change(stored: dict[str, pa.Table]) -> dict[str | None, pa.Table]:
                return self._tables_by_partition(context, obj.change(stored))

            tables, kept = dataset.update(keys, change)
        else:
            tables = self._tables_by_partition(context, obj)
            kept = dataset.write(tables)
        per_partition = len(tables) > 1
        for key, table in tables.items():
            metadata = {
                "path": dg.MetadataValue.path(str(dataset.file(key))),
                # A newer version was stored meanwhile (by another run): it stays.
                **({"drchrono/kept_newer": True} if key in kept else {}),
                **({} if key in kept else {"dagster/row_count": table.num_rows}),
            }
            if per_partition:
                context.step_context.add_asset_metadata(metadata, partition_key=key)
            else:
                context.add_output_metadata(metadata)
        dataset_metadata = {"dagster/uri": str(dataset.folder), "partitions_written": len(tables)}
        # Output metadata is copied into each day's event, so a schema the asset declares is
        # not repeated 365 times in a year's backfill.
        if COLUMN_SCHEMA not in context.definition_metadata:
            # ``write`` checked that every partition has this schema.
            schema = next(iter(tables.values())).schema
            dataset_metadata[COLUMN_SCHEMA] = dagster_table_schema(schema)
        context.add_output_metadata(dataset_metadata)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | pa.Table:
        keys: list[str | None] = (
            list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        )
        combined = self.dataset(context.asset_key).read(keys)
        if context.dagster_type.typing_type is pa.Table:
            return combined
        import pandas as pd  # on first use: half a second of start-up no run of ours needs

        # Arrow-backed columns keep money as exact decimals.
        return combined.to_pandas(types_mapper=pd.ArrowDtype)

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
