"""What a sweep leaves beside the datasets for the runs after it, under ``<data root>/.changes/``:

- ``<sweep>/<resource>.parquet``: the records that changed, staged for the merge runs;
- ``<sweep>/plan.json``: the sweep's ``SweepPlan`` (its window of time and the runs it needs);
- ``waiting/<resource>.parquet``: changed records dated after a sweep's last partition, kept
  for the sweep that can place them;
- ``state.json``: the ``SyncState`` of the last finished sweep, where the next one starts.

The state lives with the data it describes, not only in the sensor's cursor: clearing the
cursor (or losing the Dagster instance) then forgets a pending sweep but never the point up
to which the data is known to be current.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.io_managers.at_rest import PRIVATE, AtRest
from drchrono_assets.io_managers.hive_dataset import (
    STAGING_FOLDER,
    parquet_bytes,
    write_atomically,
)

CHANGES_FOLDER = ".changes"  # beside the datasets, never inside one
WAITING = "waiting"
STATE_FILE = "state.json"
PLAN_FILE = "plan.json"
# A sweep's id is the practice-local time it started, to the second, and a random part:
# unique per sweep (so are its run keys), ordered by time, and safe in a path (it also
# arrives in a run tag, which anyone can set).
SWEEP_ID = re.compile(r"\d{4}-\d{2}-\d{2}T\d{6}-[0-9a-f]{6}")
RunMode = Literal["merge", "fetch"]


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run a sweep needs: ``assets`` over the days ``first``..``last``, merging the staged
    changes (days without a stored file are fetched) or fetching every day."""

    assets: tuple[str, ...]
    mode: RunMode
    first: str
    last: str

    @property
    def key(self) -> str:
        return f"{'+'.join(self.assets)}:{self.mode}:{self.first}:{self.last}"


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """What one sweep fetched and the runs that bring it in."""

    sweep: str
    since: str  # practice-local time the change queries started from
    until: str  # practice-local time the next sweep starts from, once this one is merged
    as_of: str  # the API's time (UTC ISO) the staged records are as of
    yesterday: str  # the last partition this sweep fills
    covered_from: str  # from this day on, every change reached a sweep (see SyncState)
    runs: tuple[PlannedRun, ...]
    known_ahead: tuple[str, str] | None = None  # see SyncState
    # Days of resources booked ahead from here on are assembled from change sets; a day
    # before it with no file is listed by date.
    assembled_from: str | None = None
    deletions_checked: str | None = None  # see SyncState

    @classmethod
    def from_json(cls, text: str) -> SweepPlan:
        values = json.loads(text)
        runs = tuple(PlannedRun(tuple(run.pop("assets")), **run) for run in values.pop("runs"))
        return cls(runs=runs, **values)

    def run(self, key: str) -> PlannedRun:
        return next(run for run in self.runs if run.key == key)


@dataclasses.dataclass(frozen=True)
class SyncState:
    """Where daily operation stands: written when a sweep's runs have all succeeded."""

    since: str  # practice-local time the next sweep asks changes since
    last_day: str  # the last partition a finished sweep filled
    # The first day of the unbroken chain of sweeps: a dated record of this day or later
    # reached a change set, so a day with no file from here on has no such records. Days
    # before it are fetched, never merged into nothing.
    covered_from: str
    finished: str  # the id of the sweep that wrote this state
    # First and last day whose records booked ahead are all known to the sweeps: listed by
    # date once, then followed in the change sets. None: none yet (the next sweep lists).
    known_ahead: tuple[str, str] | None = None
    # The last day a sweep checked the snapshots kept by ``since`` for deleted records.
    deletions_checked: str | None = None


class StagedChanges:
    """The ``.changes`` folder of one data root. Its files hold patient records, so they are
    written with the data root's protection: pass ``at_rest`` as the IO manager has it
    (``io_manager.at_rest``); the default is owner-only files and no S3 encryption."""

    def __init__(self, data_root: str, at_rest: AtRest = PRIVATE) -> None:
        self.at_rest = at_rest
        self.folder = at_rest.root(data_root) / CHANGES_FOLDER

    @classmethod
    def of(cls, io_manager: HiveParquetIOManager) -> StagedChanges:
        """The ``.changes`` folder beside ``io_manager``'s datasets, written as they are."""
        return cls(io_manager.data_root, io_manager.at_rest)

    def path(self, sweep: str, name: str) -> UPath:
        if sweep != WAITING and not SWEEP_ID.fullmatch(sweep):
            raise ValueError(f"{sweep!r} is not a sweep id (YYYY-MM-DDTHHMMSS-xxxxxx)")
        return self.folder / sweep / name

    def write(self, sweep: str, resource: str, table: pa.Table) -> None:
        self._put(self.path(sweep, f"{resource}.parquet"), parquet_bytes(table))

    def read(self, sweep: str, resource: str) -> pa.Table:
        with self.path(sweep, f"{resource}.parquet").open("rb") as handle:
            return pq.read_table(handle)

    def waiting(self, resource: str) -> pa.Table | None:
        """The records an earlier sweep left for a later one, if any."""
        path = self.path(WAITING, f"{resource}.parquet")
        return self.read(WAITING, resource) if path.exists() else None

    def leave_waiting(self, resource: str, table: pa.Table) -> None:
        self.write(WAITING, resource, table)

    def write_plan(self, plan: SweepPlan) -> None:
        self._put(self.path(plan.sweep, PLAN_FILE), _json_bytes(dataclasses.asdict(plan)))

    def has_plan(self, sweep: str) -> bool:
        return self.path(sweep, PLAN_FILE).exists()

    def plan(self, sweep: str) -> SweepPlan:
        return SweepPlan.from_json(self.path(sweep, PLAN_FILE).read_text())

    def state(self) -> SyncState | None:
        path = self.folder / STATE_FILE
        return SyncState(**json.loads(path.read_text())) if path.exists() else None

    def save_state(self, state: SyncState) -> None:
        self._put(self.folder / STATE_FILE, _json_bytes(dataclasses.asdict(state)))

    @staticmethod
    def new_sweep_id(started: dt.datetime) -> str:
        """The id of a sweep started at ``started`` (practice-local)."""
        return f"{started:%Y-%m-%dT%H%M%S}-{secrets.token_hex(3)}"

    def remove_through(self, sweep: str) -> None:
        """Remove the staged changes of ``sweep`` and of every sweep started before it (one
        abandoned when its cursor was cleared)."""
        if not self.folder.exists():
            return
        for child in self.folder.iterdir():
            if SWEEP_ID.fullmatch(child.name) and child.name <= sweep:
                child.fs.rm(child.path, recursive=True)

    def _put(self, path: UPath, data: bytes | pa.Buffer) -> None:
        write_atomically(data, [path], self.folder.parent / STAGING_FOLDER, self.at_rest)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()
