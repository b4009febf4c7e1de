"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.assets.bi import bi_duckdb
from drchrono_assets.assets.billing_reports import ar_aging, billing_report
from drchrono_assets.assets.ingest import resource_assets
from drchrono_assets.checks import billing_checks
from drchrono_assets.checks.freshness import freshness_checks, freshness_sensor
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.jobs import ingest_job
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sync.sensor import drchrono_changes
from drchrono_assets.sync.sweep import finish_job, sweep_job

# Every setting is read now, so a bad one stops the load (and `dagster definitions validate`)
# with its variable named, rather than failing the check or step that reads it later.
settings.check_all()

# The DuckDB file sits beside the data, so it exists only for a local data root; on object
# storage BI tools read the Parquet datasets directly.
bi_assets = [bi_duckdb] if settings.data_root_is_local() else []

defs = dg.Definitions(
    assets=[*resource_assets, billing_report, ar_aging, *bi_assets],
    asset_checks=[*billing_checks, *freshness_checks],
    jobs=[ingest_job, sweep_job, finish_job],
    # One process per run: one API client, token manager and request budget, and memory of
    # one process rather than one per step (a year's backfill: 350 MB against 880 MB).
    executor=dg.in_process_executor,
    sensors=[drchrono_changes, freshness_sensor],
    resources={
        "drchrono": DrchronoApiResource.from_env(),
        "parquet_io_manager": HiveParquetIOManager(
            data_root=settings.data_root(),
            data_group_read=settings.data_group_read(),
            s3_sse=settings.s3_sse(),
            s3_sse_kms_key_id=settings.s3_sse_kms_key_id(),
        ),
    },
)
