"""Dagster's SQLite event log storage, storing a batch of events in one transaction per file.

A run over a range of days reports a planned and a materialization event per asset and day
(3,660 of each for a year of the ten ingest assets). Dagster hands them over in batches, but
its SQLite storage stores a batch one event at a time: two new database engines, two
commits and a schema lookup per event, about 8 ms each. Here a batch is one insert and one
commit in the run's file and one transaction in the index file: the same rows, written
together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import _check as check
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection

# Dagster stores events in batches only when this is set (it reads it at every event).
BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
# Above any batch a run forms: its planned events (every asset and day), then each asset's
# materializations.
BATCH_SIZE = 100_000


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose ``store_event_batch`` writes a batch at once."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        os.environ.setdefault(BATCH_SIZE_VARIABLE, str(BATCH_SIZE))

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        # The parent's from_config_value builds the parent class by name.
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or not all(
            event.is_dagster_event and event.get_dagster_event().event_type in ASSET_EVENTS
            for event in events
        ):
            # Not a batch Dagster forms (one run's asset events): stored one by one.
            for event in events:
                self.store_event(event)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(run_ids.pop()) as conn:
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

    def _store_latest_asset_entries(
        self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> None:
        """The asset keys' rows as ``_store_asset_event`` leaves them after every event.

        An event sets columns chosen by its type alone, to values of its own, so an event
        followed by one of the same type and asset changes nothing that lasts: only the last
        of each type and asset is applied, in order."""
        last_of_type: dict[tuple[str, str], int] = {}
        for index, event in enumerate(events):
            dagster_event = event.get_dagster_event()
            asset_key = check.not_none(dagster_event.asset_key).to_string()
            last_of_type[(asset_key, dagster_event.event_type_value)] = index
        for index in sorted(last_of_type.values()):
            self._store_asset_event(conn, events[index], event_ids[index])


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
