"""The package's storages (drchrono_assets/instance/) run on Dagster's private methods, so they
load only under the Dagster version they were written against, and otherwise say which of
Dagster's own classes to name in dagster.yaml instead."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from types import ModuleType

import dagster as dg
import pytest

from drchrono_assets import instance
from drchrono_assets.cli.demo import local_dagster_home
from drchrono_assets.instance import (
    dagster_version,
    event_batches,
    postgres_event_log,
    sqlite_event_log,
)
from drchrono_assets.instance.dagster_version import (
    SUPPORTED_DAGSTER_VERSION,
    UnsupportedDagsterVersionError,
    require_supported_dagster,
)
from drchrono_assets.instance.event_batches import BATCH_SIZE_VARIABLE
from drchrono_assets.instance.postgres_event_log import AtomicSlotPostgresEventLogStorage
from drchrono_assets.instance.sqlite_event_log import (
    BatchedSqliteEventLogStorage,
    BatchedSqliteStorage,
)
from drchrono_assets_tests.support.paths import REPO

PYPROJECT = REPO / "pyproject.toml"
UPGRADED = "1.14.0"
# Nothing listens there; the check must refuse before any connection is tried.
UNREACHABLE_POSTGRES = "postgresql+psycopg2://nobody@127.0.0.1:9/nothing"


@pytest.fixture(autouse=True)
def restore_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storages set DAGSTER_EVENT_BATCH_SIZE when built: undone after each test."""
    monkeypatch.delenv(BATCH_SIZE_VARIABLE, raising=False)


@pytest.fixture
def upgraded_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster as the check sees it after a user upgraded it beside the package."""
    monkeypatch.setattr(dagster_version.dagster_version, "__version__", UPGRADED)


def assert_refusal(error: pytest.ExceptionInfo[Exception], stock_module: str, stock: str) -> None:
    message = str(error.value)
    assert UPGRADED in message
    assert SUPPORTED_DAGSTER_VERSION in message
    assert f"module: {stock_module}, class: {stock}" in message


def test_the_supported_version_is_the_pinned_one() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"dagster=={SUPPORTED_DAGSTER_VERSION}" in dependencies
    assert dagster_version.installed_dagster_version() == dg.__version__


@pytest.mark.usefixtures("upgraded_dagster")
def test_the_local_storage_refuses_another_dagster(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDagsterVersionError) as refused:
        BatchedSqliteStorage.from_config_value(None, {"base_dir": str(tmp_path)})
    assert_refusal(refused, "dagster._core.storage.sqlite_storage", "DagsterSqliteStorage")
    assert not list(tmp_path.rglob("*.db"))  # refused before any database was made

    with pytest.raises(UnsupportedDagsterVersionError) as refused:
        BatchedSqliteEventLogStorage(str(tmp_path / "event_logs"))
    assert_refusal(refused, "dagster._core.storage.event_log", "SqliteEventLogStorage")
    assert not list(tmp_path.rglob("*.db"))


@pytest.mark.usefixtures("upgraded_dagster")
def test_the_local_instance_file_fails_to_load_with_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(local_dagster_home(tmp_path)))
    with (
        pytest.raises(UnsupportedDagsterVersionError) as refused,
        dg.DagsterInstance.get() as instance,
    ):
        instance.event_log_storage  # noqa: B018 (loading it is the test)
    assert_refusal(refused, "dagster._core.storage.sqlite_storage", "DagsterSqliteStorage")


@pytest.mark.usefixtures("upgraded_dagster")
def test_the_postgres_event_log_refuses_another_dagster_before_connecting() -> None:
    with pytest.raises(UnsupportedDagsterVersionError) as refused:
        AtomicSlotPostgresEventLogStorage.from_config_value(
            None, {"postgres_url": UNREACHABLE_POSTGRES}
        )
    assert_refusal(refused, "dagster_postgres.event_log", "PostgresEventLogStorage")


def test_the_storages_load_under_the_supported_dagster(tmp_path: Path) -> None:
    storage = BatchedSqliteStorage.from_config_value(None, {"base_dir": str(tmp_path / "home")})
    assert type(storage.event_log_storage) is BatchedSqliteEventLogStorage
    storage.dispose()
    event_log = BatchedSqliteEventLogStorage(str(tmp_path / "event_logs"))
    event_log.dispose()
    # The PostgreSQL storage runs the same check (integration/test_postgres_instance.py builds
    # it on a server).
    require_supported_dagster("AtomicSlotPostgresEventLogStorage", "module", "class")


def test_every_storage_class_says_when_to_remove_it() -> None:
    classes = [
        cls
        for module in (event_batches, postgres_event_log, sqlite_event_log)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
    ]
    assert {cls.__name__ for cls in classes} == {
        "LatestAssetEntries",
        "AtomicSlotPostgresEventLogStorage",
        "BatchedSqliteEventLogStorage",
        "BatchedSqliteStorage",
    }
    for cls in classes:
        assert "Remove w" in (cls.__doc__ or ""), cls.__name__


@pytest.mark.parametrize(
    "module", [instance, dagster_version, event_batches, postgres_event_log, sqlite_event_log]
)
def test_every_module_says_it_patches_dagster_internals(module: ModuleType) -> None:
    """The fence around Dagster's internals: each module says so, names the Dagster release it
    was checked against and the Dagster change that would make it unnecessary."""
    doc = module.__doc__ or ""
    assert "Dagster internals" in doc
    assert f"Dagster {SUPPORTED_DAGSTER_VERSION}" in " ".join(doc.split())
    assert "\nRemove when: " in doc
