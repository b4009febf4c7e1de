"""PostgreSQL event log storage whose pool slots are taken atomically, and whose event
batches are stored at once.

Dagster 1.13.27 claims a pool slot with ``SELECT ... FOR UPDATE SKIP LOCKED`` and then an
``UPDATE``, on an autocommit connection: the row lock ends between the two statements, so
two steps claiming at once can both take the one slot of ``drchrono_api``. Here the claim
is one ``UPDATE`` that only takes a free slot, so exactly one of them gets it.

Dagster's PostgreSQL storage stores a run's planned events (one per asset and day) one at a
time, and a batch of materializations in two commits: the events, then their tags and the
assets' rows. When the second fails, Dagster stores every event of the batch again, one by
one, so the events are then there twice. Here either batch is one insert and one
transaction: a failure leaves nothing of the batch, and Dagster's fallback stores each once.

Patches Dagster internals: subclasses ``PostgresEventLogStorage``, overrides its private
``_claim_concurrency_slot`` and calls private methods (``_store_asset_event_tags``...).
Checked against Dagster 1.13.27 (``dagster_version.py`` does the check at construction).

Remove when: Dagster's own ``PostgresEventLogStorage`` claims a pool slot atomically (one
statement, or the lock held until the claim) and stores a batch of one run's planned events
or materializations in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable, SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster._utils.concurrency import ConcurrencySlotStatus
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from drchrono_assets.instance.dagster_version import require_supported_dagster
from drchrono_assets.instance.event_batches import (
    LatestAssetEntries,
    enable_event_batches,
    run_of_asset_events,
)

# A batch of one run's events of one of these types is stored in one transaction. Anything
# else is Dagster's: mixed batches one event at a time, failed materializations dropped.
ONE_TRANSACTION_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
    }
)


def stored_in_one_transaction(events: Sequence[EventLogEntry]) -> bool:
    if run_of_asset_events(events) is None:
        return False
    event_types = {event.get_dagster_event().event_type for event in events}
    return len(event_types) == 1 and event_types <= ONE_TRANSACTION_TYPES


class AtomicSlotPostgresEventLogStorage(LatestAssetEntries, PostgresEventLogStorage):
    """`PostgresEventLogStorage`, but a pool slot goes to one step only, and a batch of a
    run's planned events or materializations is stored in one transaction.

    Remove when Dagster's own ``PostgresEventLogStorage`` claims a slot in one statement and
    stores either batch in one transaction (neither holds in 1.13.27)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before connecting: the methods below override and call Dagster's private ones.
        require_supported_dagster(
            type(self).__name__, "dagster_postgres.event_log", "PostgresEventLogStorage"
        )
        super().__init__(*args, **kwargs)
        enable_event_batches()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> AtomicSlotPostgresEventLogStorage:
        # The parent's from_config_value builds the parent class by name.
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def _claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str
    ) -> ConcurrencySlotStatus:
        slots = ConcurrencySlotsTable.c
        free_slot = (
            sa.select(slots.id)
            .where(slots.concurrency_key == concurrency_key)
            .where(slots.step_key.is_(None))
            .where(slots.deleted.is_(False))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            ConcurrencySlotsTable.update()
            .where(slots.id == free_slot)
            # Re-checked on the row's latest version, should another claim commit first.
            .where(slots.step_key.is_(None))
            .values(run_id=run_id, step_key=step_key)
        )
        with self.index_connection() as connection:
            taken = connection.execute(claim).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not stored_in_one_transaction(events):
            super().store_event_batch(events)
            return
        insert = self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
        with self.index_transaction() as conn:
            event_ids = [row.id for row in conn.execute(insert)]
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_latest_asset_entries(conn, events, event_ids)
