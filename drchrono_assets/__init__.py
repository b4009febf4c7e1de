"""drchrono EHR data as date-partitioned Dagster assets on Parquet."""

import warnings

# Two Dagster features this package uses on purpose, with Dagster pinned (README, "Dagster
# features in beta"): single-run backfills and checks partitioned like their asset. Their
# notices would otherwise be printed by every process that loads the definitions.
warnings.filterwarnings("ignore", r"Parameter `backfill_policy` of function `asset`", Warning)
warnings.filterwarnings("ignore", r"Specifying a partitions_def on an AssetCheckSpec", Warning)
