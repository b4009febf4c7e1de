"""What both event log storages of the package do with a batch of one run's asset events.

A run over a range of days reports a planned and a materialization event per asset and day
(3,660 of each for a year of the ten ingest assets). Dagster hands them to the storage in
batches only when ``DAGSTER_EVENT_BATCH_SIZE`` is set, and its own storages then still
store most batches one event at a time; the package's store them in one transaction.

Patches Dagster internals: ``LatestAssetEntries`` calls ``SqlEventLogStorage``'s private
``_store_asset_event``. Checked against Dagster 1.13.27 (``dagster_version.py`` does the
check, in the storages that use it).

Remove when: Dagster's own SQLite and PostgreSQL event log storages store a batch of one
run's asset events in one transaction (with sqlite_event_log.py and postgres_event_log.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster import _check as check
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from sqlalchemy.engine import Connection

# Dagster stores events in batches only when this is set (it reads it at every event).
BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
# Above any batch a run forms: its planned events (every asset and day), then each asset's
# materializations.
BATCH_SIZE = 100_000


def enable_event_batches() -> None:
    """Have Dagster hand events to the storage in batches (unless set otherwise)."""
    os.environ.setdefault(BATCH_SIZE_VARIABLE, str(BATCH_SIZE))


def run_of_asset_events(events: Sequence[EventLogEntry]) -> str | None:
    """The run of a batch of one run's asset events; ``None`` for any other batch."""
    run_ids = {event.run_id for event in events}
    if len(run_ids) != 1 or not all(
        event.is_dagster_event and event.get_dagster_event().event_type in ASSET_EVENTS
        for event in events
    ):
        return None
    return run_ids.pop()


class LatestAssetEntries(SqlEventLogStorage):
    """Updates the asset keys' rows once per batch instead of once per event.

    A mixin, never constructed alone: its subclasses check the Dagster version. Remove with
    the last of them (sqlite_event_log.py, postgres_event_log.py)."""

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
