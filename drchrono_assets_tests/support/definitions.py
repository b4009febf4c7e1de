"""The definitions of a practice with the default settings (as ``definitions.py`` builds
them from an environment with no ``DRCHRONO_*`` variable), by name, for tests."""

from drchrono_assets.practice import PracticeDefinitions
from drchrono_assets.settings import PracticeSettings

PRACTICE = PracticeDefinitions.build(PracticeSettings())
daily_partitions = PRACTICE.partitions
resource_assets = PRACTICE.resource_assets
billing_report = PRACTICE.billing_report
ar_aging = PRACTICE.ar_aging
bi_duckdb = PRACTICE.bi_duckdb
billing_checks = PRACTICE.billing_checks
freshness_checks = PRACTICE.freshness_checks
freshness_sensor = PRACTICE.freshness_sensor
jobs = PRACTICE.jobs  # ingest, sweep, finish
