"""IO managers: Parquet datasets in a hive layout."""

from drchrono_assets.io_managers.at_rest import AtRest
from drchrono_assets.io_managers.hive_dataset import HiveDataset
from drchrono_assets.io_managers.hive_parquet import HiveParquetIOManager, PartitionUpdate

__all__ = ["AtRest", "HiveDataset", "HiveParquetIOManager", "PartitionUpdate"]
