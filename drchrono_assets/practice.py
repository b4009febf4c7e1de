"""A practice's Dagster definitions, built from its settings: the one place they are used.

Every definition that depends on a setting (the partitions, the freshness deadline, the
sensor's hour, the checks' thresholds, where the data goes) is made by a factory of its
module, called here with the values of ``PracticeSettings``; nothing below reads them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dagster as dg

from drchrono_assets.assets import build_resource_assets
from drchrono_assets.assets.bi import build_bi_duckdb
from drchrono_assets.assets.billing_reports import build_billing_assets
from drchrono_assets.catalog import resources_named
from drchrono_assets.checks import build_billing_checks
from drchrono_assets.checks.freshness import build_freshness_checks, build_freshness_sensor
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.jobs import build_ingest_job
from drchrono_assets.practice_names import PracticeNames
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.settings import PracticeSettings
from drchrono_assets.sync.sensor import build_changes_sensor
from drchrono_assets.sync.sweep import build_sweep_jobs


@dataclasses.dataclass(frozen=True)
class PracticeDefinitions:
    """Every definition of one practice, each by name (tests and tools pick from them)."""

    settings: PracticeSettings
    names: PracticeNames
    partitions: dg.DailyPartitionsDefinition
    resource_assets: list[dg.AssetsDefinition]
    billing_report: dg.AssetsDefinition
    ar_aging: dg.AssetsDefinition
    bi_duckdb: dg.AssetsDefinition
    billing_checks: list[dg.AssetChecksDefinition]
    freshness_checks: list[dg.AssetChecksDefinition]
    freshness_sensor: dg.SensorDefinition
    changes_sensor: dg.SensorDefinition
    jobs: list[Any]  # ingest (an asset job), sweep, finish

    @classmethod
    def build(cls, practice: PracticeSettings) -> PracticeDefinitions:
        """The definitions of ``practice``."""
        names = PracticeNames(practice.name, practice.application)
        partitions = dg.DailyPartitionsDefinition(
            start_date=practice.start_date, timezone=practice.timezone
        )
        resources = resources_named(practice.resources)
        resource_assets = build_resource_assets(partitions, names, resources)
        billing_report, ar_aging = build_billing_assets(partitions, names)
        freshness_checks = build_freshness_checks(
            [*resource_assets, billing_report], practice.sync_hour, practice.timezone
        )
        jobs = [
            build_ingest_job(names),
            *build_sweep_jobs(partitions, names, resources, practice.deletion_check_days),
        ]
        return cls(
            settings=practice,
            names=names,
            partitions=partitions,
            resource_assets=resource_assets,
            billing_report=billing_report,
            ar_aging=ar_aging,
            bi_duckdb=build_bi_duckdb([*resource_assets, billing_report], ar_aging, names),
            billing_checks=build_billing_checks(
                billing_report,
                names,
                practice.orphan_warning_threshold,
                practice.unbilled_warning_threshold,
            ),
            freshness_checks=freshness_checks,
            freshness_sensor=build_freshness_sensor(freshness_checks, names),
            changes_sensor=build_changes_sensor(partitions, practice.sync_hour, names, jobs),
            jobs=jobs,
        )

    def io_manager(self) -> HiveParquetIOManager:
        """The Parquet IO manager of the practice's data root."""
        practice = self.settings
        return HiveParquetIOManager(
            data_root=practice.data_root,
            data_group_read=practice.data_group_read,
            s3_sse=practice.s3_sse,
            s3_sse_kms_key_id=practice.s3_sse_kms_key_id,
            practice=practice.name,
        )

    def definitions(self, drchrono: DrchronoApiResource) -> dg.Definitions:
        """The code location's definitions, with ``drchrono`` as the API resource."""
        # The DuckDB file sits beside the data, so it exists only for a local data root; on
        # object storage BI tools read the Parquet datasets directly.
        bi_assets = [self.bi_duckdb] if self.settings.data_root_is_local else []
        return dg.Definitions(
            assets=[*self.resource_assets, self.billing_report, self.ar_aging, *bi_assets],
            asset_checks=[*self.billing_checks, *self.freshness_checks],
            jobs=self.jobs,
            # One process per run: one API client, token manager and request budget, and
            # memory of one process rather than one per step (a year's backfill: 350 MB
            # against 880 MB).
            executor=dg.in_process_executor,
            sensors=[self.changes_sensor, self.freshness_sensor],
            resources={self.names.api_resource: drchrono, self.names.io_manager: self.io_manager()},
        )
