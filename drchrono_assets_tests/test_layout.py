"""The code's layout keeps its promises: who may import what, and one home per concern."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "drchrono_assets"


def modules_loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module``."""
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys, {module}; print(json.dumps(list(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", ["drchrono_assets.api", "drchrono_assets.auth"])
def test_the_api_client_and_the_auth_cli_load_without_dagster(module: str) -> None:
    assert "dagster" not in modules_loaded_by(module)


def test_the_day_window_and_the_partition_rules_read_no_setting_at_import() -> None:
    loaded = modules_loaded_by("drchrono_assets.catalog.partition_rules")
    assert "drchrono_assets.day_window" in loaded
    assert not loaded & {"drchrono_assets.settings", "drchrono_assets.partitions"}


def test_the_catalog_sends_no_request() -> None:
    loaded = modules_loaded_by("drchrono_assets.catalog")
    assert not {name for name in loaded if name.startswith(("drchrono_assets.api", "requests"))}


def test_module_names_are_unique() -> None:
    names = [path.name for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"]
    assert sorted(names) == sorted(set(names))


def test_only_the_dataset_class_knows_the_file_layout() -> None:
    knows = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "part-0.parquet" in path.read_text() or "PARTITION_COLUMN" in path.read_text()
    }
    assert knows == {"io_managers/hive_dataset.py"}
