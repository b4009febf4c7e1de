"""Range runs of two partitioned assets and what an event log storage keeps of them, to
compare the package's event log storages with Dagster's own."""

from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from sqlalchemy.engine import Connection

from drchrono_assets.day_window import DayWindow

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")
WEEKS = (("2024-01-01", "2024-01-07"), ("2024-01-05", "2024-01-20"))  # overlapping runs


class Outage(Exception):
    """The step's failure in a failing run."""


def day_assets(fail: bool = False) -> list[dg.AssetsDefinition]:
    """Two range-run assets like the ingest ones: per-day metadata, tags, a check."""

    def build(name: str) -> dg.AssetsDefinition:
        @dg.asset(
            name=name,
            partitions_def=DAYS,
            backfill_policy=dg.BackfillPolicy.single_run(),
            io_manager_key="memory",
        )
        def day_asset(context: dg.AssetExecutionContext) -> dict[str, int]:
            if fail:
                raise Outage("the API is down")
            for number, key in enumerate(context.partition_keys):
                context.add_asset_metadata({"rows": number}, partition_key=key)
            return dict.fromkeys(context.partition_keys, 1)

        return day_asset

    return [build("visits"), build("payments")]


def run_range(instance: dg.DagsterInstance, first: str, last: str, fail: bool = False) -> None:
    """One range run of both assets over ``first..last`` (failing if ``fail``)."""
    dg.materialize(
        day_assets(fail),
        instance=instance,
        resources={"memory": dg.InMemoryIOManager()},
        tags=DayWindow.from_partition_keys([first, last]).run_tags,
        raise_on_error=False,
    )


def run_first_week(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The one run on ``instance``: a range run of ``WEEKS[0]``, which succeeded."""
    run_range(instance, *WEEKS[0])
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    return run


def stored_state(instance: dg.DagsterInstance) -> dict[str, Any]:
    """What the storage holds, without the ids, times and run ids that differ run to run."""
    runs = {run.run_id: number for number, run in enumerate(reversed(instance.get_runs()))}
    with instance.event_log_storage.index_connection() as index:
        events = index.execute(
            sa.text("SELECT run_id, dagster_event_type, asset_key, partition FROM event_logs")
        ).all()
        # Values are data versions, hashes of each run's own id.
        tags = index.execute(sa.text("SELECT asset_key, key FROM asset_event_tags")).all()
    state: dict[str, Any] = {
        "events": sorted(((runs.get(run_id), *rest) for run_id, *rest in events), key=str),
        "tags": sorted(tuple(tag) for tag in tags),
    }
    for key in (dg.AssetKey("visits"), dg.AssetKey("payments")):
        (record,) = instance.get_asset_records([key])
        entry = record.asset_entry
        last = entry.last_materialization_record
        status = get_and_update_asset_status_cache_value(instance, key, DAYS)
        assert status is not None
        state[key.to_user_string()] = {
            "last_run": runs[entry.last_run_id] if entry.last_run_id else None,
            "last_materialized": last.partition_key if last else None,
            "last_metadata": dict(last.asset_materialization.metadata) if last else None,
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "failed": sorted(
                status.deserialize_failed_partition_subsets(DAYS).get_partition_keys()
            ),
        }
    return state


def operate(instance: dg.DagsterInstance) -> dict[str, Any]:
    """Two overlapping range runs and a failing one, then what the storage holds."""
    for first, last in WEEKS:
        run_range(instance, first, last)
    run_range(instance, "2024-02-01", "2024-02-03", fail=True)
    return stored_state(instance)


def assert_stored_alike(expected: dict[str, Any], got: dict[str, Any]) -> None:
    """``got`` (the package's storage) holds what ``expected`` (Dagster's) does, and the
    comparison covered what the UI shows: days done, days failed, per-day metadata."""
    assert got == expected
    assert got["visits"]["materialized"] == [f"2024-01-{day:02d}" for day in range(1, 21)]
    assert got["visits"]["failed"] == ["2024-02-01", "2024-02-02", "2024-02-03"]
    assert got["visits"]["last_metadata"] == {"rows": dg.IntMetadataValue(15)}


def batch_sizes(monkeypatch: pytest.MonkeyPatch, storage_class: type) -> list[int]:
    """The sizes of the batches ``storage_class`` stores from now on, in order."""
    sizes: list[int] = []
    store_batch = storage_class.store_event_batch

    def counted(self: Any, events: list[Any]) -> None:
        sizes.append(len(events))
        store_batch(self, events)

    monkeypatch.setattr(storage_class, "store_event_batch", counted)
    return sizes


# Each asset event of a run of WEEKS[0] (two assets, seven days), stored once.
STORED_ONCE = {"ASSET_MATERIALIZATION": [1] * 14, "ASSET_MATERIALIZATION_PLANNED": [1] * 14}


def times_stored(conn: Connection) -> dict[str, list[int]]:
    """How often each asset event of an event log table is stored, by type (an event's row
    holds its run id and timestamp, so equal rows are one event stored twice)."""
    rows = conn.execute(
        sa.text(
            "SELECT dagster_event_type, count(*) FROM event_logs"
            " WHERE asset_key IS NOT NULL GROUP BY dagster_event_type, event"
        )
    ).all()
    counts: dict[str, list[int]] = {}
    for event_type, count in rows:
        counts.setdefault(event_type, []).append(count)
    return counts


def assert_stored_once(conn: Connection) -> None:
    """Each asset event of a run of ``WEEKS[0]`` is stored once in ``conn``'s event log."""
    counts = times_stored(conn)
    assert counts == STORED_ONCE, counts
