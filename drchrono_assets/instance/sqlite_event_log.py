"""Dagster's SQLite storage (the local instance), storing a batch of events in one
transaction per file.

Dagster's own stores a batch one event at a time: two new database engines, two commits and
a schema lookup per event, about 8 ms each, so a year of ten assets' events took minutes.
Here a batch is one insert and one commit in the run's file and one transaction in the index
file: the same rows, written together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

from drchrono_assets.instance.event_batches import (
    LatestAssetEntries,
    enable_event_batches,
    run_of_asset_events,
)


class BatchedSqliteEventLogStorage(LatestAssetEntries, SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose ``store_event_batch`` writes a batch at once."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        enable_event_batches()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        # The parent's from_config_value builds the parent class by name.
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_id = run_of_asset_events(events)
        if run_id is None:
            # Not one run's asset events (asset check events, say): stored one by one.
            for event in events:
                self.store_event(event)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The index file mirrors asset events, with their tags and the assets' latest state.
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            event_ids = [row.id for row in inserted]
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_latest_asset_entries(conn, events, event_ids)


class BatchedSqliteStorage(DagsterSqliteStorage):
    """Dagster's default local storage (the same files), with batched event writes.

    ``storage: {custom: {module: drchrono_assets.instance.sqlite_event_log,
    class: BatchedSqliteStorage, config: {base_dir: {env: DAGSTER_HOME}}}}``
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
