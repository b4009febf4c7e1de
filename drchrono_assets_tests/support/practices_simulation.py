"""Simulated mornings of several practices of one sandbox application in one code location:
each practice's definitions built from its settings, with its own API grant and data root,
merged as ``defs/`` would merge them, and driven as the daemons would (``Morning``). The
sensors' clock must follow the sandbox's: set ``drchrono_assets.sync.sensor.clock``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from drchrono_assets.api.fair_share import used_by_practice
from drchrono_assets.day_window import DayWindow
from drchrono_assets.practice import PracticeDefinitions
from drchrono_assets.settings import PracticeSettings
from drchrono_assets.sync.staged import CHANGES_FOLDER, StagedChanges, SyncState
from drchrono_assets.sync.sweep import FINISH_JOB
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token
from drchrono_assets_tests.support.simulation import (
    START,
    TIMEZONE,
    Morning,
    assert_every_partition_exact,
)
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.generate.offset import ID_STEP, INTEGER_REFERENCES

#: The string columns that hold a record's id (an appointment's: ``8123_20240105`` too).
STRING_IDS = ("id", "appointment_id")


@dataclasses.dataclass(frozen=True)
class ConnectedPractice:
    """One practice of the code location: the sandbox's practice ``index``, its definitions
    and where its data goes."""

    index: int
    definitions: PracticeDefinitions
    data_root: Path

    @property
    def name(self) -> str:
        """The practice's name, the prefix of its keys and definitions."""
        return self.definitions.names.practice or ""

    @property
    def ingest_keys(self) -> list[dg.AssetKey]:
        """The keys of its drchrono resources' assets."""
        return [asset.key for asset in self.definitions.resource_assets]


class PracticesMorning(Morning):
    """Simulated mornings of the practices connected so far (``connect``), one code location
    of them all: every sensor of every practice ticked, the runs they request made from the
    merged definitions (each practice's bound to its own resources), then automation."""

    def __init__(
        self, sandbox: SandboxServer, root: Path, connected: int = 0, **tuning: Any
    ) -> None:
        """Mornings against ``sandbox`` with data and tokens under ``root``; its first
        ``connected`` practices connected; ``tuning`` overrides the API resources' test
        tuning (the request budget's limits)."""
        super().__init__(sandbox, root)  # its resources and data root give way to each practice's
        self.root = root
        # The application's token store: each practice's tokens beside it, and one ledger.
        self.token_store = root / "secrets" / "tokens.json"
        self.env = {**sandbox.env(), "DRCHRONO_TOKEN_STORE": str(self.token_store)}
        self.tuning = tuning
        self.practices: dict[str, ConnectedPractice] = {}
        # Per practice, when each of its sweeps finished (the sandbox clock's instants).
        self.sweeps_finished: dict[str, list[dt.datetime]] = {}
        self.location: list[dg.Definitions] = []
        self.resources = {}
        self.defs = self.runs_from = dg.Definitions()
        for index in range(connected):
            self.connect(index)

    def connect(self, index: int, start: dt.date = START) -> ConnectedPractice:
        """Add the sandbox's practice ``index`` as ``clinic_<index>``, its partitions from
        ``start``: its definitions, with an API grant of its own (a login), join the code
        location; its sensors tick from the next ``run`` or ``tick``."""
        name = f"clinic_{index}"
        settings = PracticeSettings(
            name=name,
            start_date=start.isoformat(),
            timezone=TIMEZONE,
            data_root=str(self.root / name),
        )
        practice = ConnectedPractice(index, PracticeDefinitions.build(settings), self.root / name)
        api = api_for(
            self.env,
            practice=name,
            refresh_token=fresh_refresh_token(self.sandbox, practice=index),
            token_store=str(self.token_store),
            **self.tuning,
        )
        self.practices[name] = practice
        self.sweeps_finished[name] = []
        self.location.append(practice.definitions.definitions(api))
        self.defs = self.runs_from = dg.Definitions.merge(*self.location)
        self.resources = dict(self.defs.resources)
        return practice

    def launch(self, request: dg.RunRequest) -> bool:
        """Run what a sensor requested (``Morning.launch``); a finished sweep is recorded in
        ``sweeps_finished`` at the sandbox clock's instant."""
        succeeded = super().launch(request)
        practice, _, job = (request.job_name or "").partition("__")
        if succeeded and job == FINISH_JOB:
            self.sweeps_finished[practice].append(self.sandbox.state.clock.now())
        return succeeded

    def backfill(self, name: str, first: dt.date, last: dt.date) -> bool:
        """An operator's backfill of practice ``name``: every ingest asset over ``first`` to
        ``last`` as one run, untagged by any sensor; whether it succeeded."""
        keys = self.practices[name].ingest_keys
        return self.execute(keys, DayWindow(first, last).run_tags)

    def assert_exact(self, name: str, days: list[str]) -> int:
        """Every dated partition and billing report of ``days`` of practice ``name`` as its
        sandbox data says; how many recurring visits were billed."""
        practice = self.practices[name]
        return assert_every_partition_exact(self, days, practice.index, practice.data_root)

    def sync_state(self, name: str) -> SyncState | None:
        """What practice ``name``'s ``.changes/state.json`` says (None: no such file)."""
        return StagedChanges(str(self.practices[name].data_root)).state()


def record_ids(table: pa.Table, resource: str) -> list[int]:
    """The numbers of every record id ``table`` holds: its own and those it refers to (an
    appointment id's series number), nulls left out."""
    numbers: list[int] = []
    for field in table.schema:
        integer = pa.types.is_integer(field.type)
        referring = field.name.endswith("_id") or field.name in INTEGER_REFERENCES.get(resource, ())
        if (integer and (referring or field.name == "id")) or field.name in STRING_IDS:
            values = table[field.name].to_pylist()
            numbers += [int(str(value).partition("_")[0]) for value in values if value is not None]
    return numbers


def assert_only_own_ids(practice: ConnectedPractice) -> int:
    """Every Parquet file under the practice's data root (its datasets, and the changes a
    sweep left waiting) holds only ids of its own sandbox practice (moved up by ``index *
    ID_STEP``); how many ids were checked."""
    own = range(practice.index * ID_STEP, (practice.index + 1) * ID_STEP)
    checked = 0
    for path in practice.data_root.rglob("*.parquet"):
        folder = path.relative_to(practice.data_root).parts[0]
        resource = path.stem if folder == CHANGES_FOLDER else folder
        numbers = record_ids(pq.read_table(path), resource)
        strangers = sorted({number for number in numbers if number not in own})
        assert not strangers, (practice.name, str(path), strangers[:5])
        checked += len(numbers)
    return checked


def requests_claimed(token_store: Path) -> dict[str | None, int]:
    """The requests each practice claimed from the application's one request ledger, the
    file beside ``token_store`` (in its window, an hour)."""
    ledger = json.loads(token_store.with_suffix(".requests.json").read_text())
    return used_by_practice(ledger["sent"])
