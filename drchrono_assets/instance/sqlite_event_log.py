"""Dagster's SQLite storage (the local instance), storing a batch of events in one
transaction per file.

Dagster's own stores a batch one event at a time: two new database engines, two commits and
a schema lookup per event, about 8 ms each, so a year of ten assets' events took minutes.
Here a batch is one transaction in the index file and one insert and commit in the run's
file: the same rows, written together.

Two files cannot share a transaction, and when ``store_event_batch`` raises, Dagster stores
every event of the batch again with ``store_event``. So the index (shared by all runs, the
file most likely to be busy) is written first: if it fails, neither file holds the batch and
Dagster's fallback stores each event once. If the run's file fails after it, the batch's
events are marked as indexed, and ``store_event`` writes only the run file for those.

Patches Dagster internals: subclasses ``SqliteEventLogStorage`` and ``DagsterSqliteStorage``
and calls their private methods (``_event_to_row``, ``_store_asset_event_tags``...).
Checked against Dagster 1.13.27 (``dagster_version.py`` does the check at construction).

Remove when: Dagster's own ``SqliteEventLogStorage.store_event_batch`` stores a batch of one
run's asset events in one transaction per file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

from drchrono_assets.instance.dagster_version import require_supported_dagster
from drchrono_assets.instance.event_batches import (
    LatestAssetEntries,
    enable_event_batches,
    run_of_asset_events,
)


class BatchedSqliteEventLogStorage(LatestAssetEntries, SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose ``store_event_batch`` writes a batch at once.

    Remove when Dagster's own ``SqliteEventLogStorage.store_event_batch`` writes a batch in
    one transaction per file (it stores one event at a time in 1.13.27)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # Before anything touches the files: the methods below are Dagster's private ones.
        require_supported_dagster(
            type(self).__name__, "dagster._core.storage.event_log", "SqliteEventLogStorage"
        )
        super().__init__(base_dir, inst_data)
        # Events the index holds but their run's file not, by id(event), each to the batch it
        # came in (which keeps the event alive, so no other object can take its id).
        self._indexed_only: dict[int, Sequence[EventLogEntry]] = {}
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
        # The index mirrors asset events, with their tags and the assets' latest state. One
        # transaction: if it fails, nothing of the batch is stored anywhere yet.
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
        try:
            self._insert_in_run_file(run_id, rows)
        except Exception:
            # Dagster now hands each event to store_event, which must not index it again.
            self._indexed_only.update((id(event), events) for event in events)
            raise

    def store_event(self, event: EventLogEntry) -> None:
        batch = self._indexed_only.pop(id(event), None)
        if batch is None:
            super().store_event(event)
            return
        try:
            self._insert_in_run_file(event.run_id, [self._event_to_row(event)])
        except Exception:
            # Dagster's fallback stops at this error: the batch's other events will not come.
            for other in batch:
                self._indexed_only.pop(id(other), None)
            raise

    def _insert_in_run_file(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)


class BatchedSqliteStorage(DagsterSqliteStorage):
    """Dagster's default local storage (the same files), with batched event writes.

    ``storage: {custom: {module: drchrono_assets.instance.sqlite_event_log,
    class: BatchedSqliteStorage, config: {base_dir: {env: DAGSTER_HOME}}}}``

    Remove with ``BatchedSqliteEventLogStorage`` (deploy/local/dagster.yaml then names
    Dagster's ``DagsterSqliteStorage``, or ``storage: {sqlite: ...}``).
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # Checked here too, so that the error names the class dagster.yaml names.
        require_supported_dagster(
            type(self).__name__, "dagster._core.storage.sqlite_storage", "DagsterSqliteStorage"
        )
        super().__init__(base_dir, inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
