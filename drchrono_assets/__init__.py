"""drchrono EHR data as date-partitioned Dagster assets on Parquet."""

import warnings

# A Dagster feature this package uses on purpose, with Dagster pinned (README, "The first
# hour"): single-run backfills. Its notice would otherwise be printed by every process that
# loads the definitions.
warnings.filterwarnings("ignore", r"Parameter `backfill_policy` of function `asset`", Warning)
