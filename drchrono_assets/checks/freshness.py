"""Freshness checks: each dated asset's check fails in the UI once yesterday's partition is late.

Every ingest asset and ``billing_report`` gets a check that fails (severity ERROR, shown red)
when, at ``deadline_hour`` practice-local, yesterday's partition has no materialization. The
``drchrono_changes`` sweep starts at ``DRCHRONO_SYNC_HOUR`` and ``billing_report`` follows it by
automation, so a morning that cannot finish shows up as a failed check. It never looks like a
silent wait. Once the late partition arrives, the sensor evaluates the check again and it passes.

Why Dagster's time-partition freshness checks and not ``dg.FreshnessPolicy`` (Dagster 1.13.27):

* ``dg.build_time_partition_freshness_checks`` checks exactly what daily operation promises.
  After the last tick of ``deadline_cron`` (in ``timezone``), it looks for a materialization
  of the partition whose day ended before that tick: yesterday's partition at 07:00. The
  result is an ordinary asset check evaluation. The UI shows it in the asset's Checks tab
  and in the Checks row of the asset's node in the lineage graph (a default row). The matching
  ``dg.build_sensor_for_freshness_checks`` requests the check runs. That sensor is handled by
  the sensor daemon, which the deployment already runs for ``drchrono_changes``.
* ``dg.FreshnessPolicy.cron`` is evaluated by the freshness daemon. That daemon is on by
  default (instance setting ``freshness: enabled``). But the policy looks only at the asset's
  latest materialization of *any* partition. A sweep's merge into an older day, or a
  rebuilt old ``billing_report`` partition, would count as fresh while yesterday is missing.
  Also, in open-source Dagster the new freshness state appears only as a tag on each asset's
  own page. The lineage graph's Freshness row and the health summaries do not use it there
  (``assetHealthEnabled()`` is false in the UI, and ``dagster_asset_health_queries_supported()``
  is false in the instance), so nothing would fail "at a glance". The UI itself calls the
  policy "a new feature under active development".

Dagster marks the two builders as superseded by ``FreshnessPolicy``. They are not deprecated,
and the replacement cannot check partitions, so their supersession warnings are silenced here.

Both the check and its sensor read "now" from Dagster's clock (``dagster._time``), not from a
context. Tests fix it with ``dagster._core.test_utils.freeze_time``. Evaluating a check reads
only the instance's event log; it never calls the drchrono API or reads the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from drchrono_assets.practice_names import PracticeNames

# Time after the sync hour for the sweep's runs and the billing report after them; later,
# the morning is late.
GRACE_HOURS = 3
FRESHNESS_SENSOR_NAME = "drchrono_freshness"
# How often the sensor asks whether a check can have gone overdue. The sensor reads only
# the event log, so a failure shows within minutes of the deadline at little cost.
SENSOR_INTERVAL_SECONDS = 300


def deadline_hour(sync_hour: int) -> int:
    """The practice-local hour by which yesterday's partitions are due: 07:00 by default."""
    return min(sync_hour + GRACE_HOURS, 23)


def build_freshness_checks(
    assets: Sequence[dg.AssetsDefinition], sync_hour: int, timezone: str
) -> list[dg.AssetChecksDefinition]:
    """One ``freshness_check`` per asset: the check fails (ERROR) once the deadline after
    ``sync_hour`` has passed and yesterday's partition has not been materialized. The
    deadline and "yesterday" are measured on the same clock as the partitions: ``timezone``."""
    with warnings.catch_warnings():
        # The builder is superseded, not deprecated; see the module docstring for why.
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(
            dg.build_time_partition_freshness_checks(
                assets=assets,
                deadline_cron=f"0 {deadline_hour(sync_hour)} * * *",
                timezone=timezone,
                severity=dg.AssetCheckSeverity.ERROR,
                # A late partition must not stop a run that could still fix it.
                blocking=False,
            )
        )


def build_freshness_sensor(
    checks: Sequence[dg.AssetChecksDefinition], names: PracticeNames
) -> dg.SensorDefinition:
    """The sensor that requests runs of ``checks``.

    It requests a check the first time, again once a passing check could be overdue (at the
    next deadline), and again once a failed check's asset has been materialized since.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=names(FRESHNESS_SENSOR_NAME),
            minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
            # Running from the first deployment on, so no operator has to remember to start
            # it. A stopped freshness sensor would be exactly the silent wait it is there to
            # prevent.
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
