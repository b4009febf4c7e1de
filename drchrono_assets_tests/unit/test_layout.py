"""The code's layout keeps its promises: who may import what, and one home per concern."""

import ast
import json

import pytest

from drchrono_assets_tests.support.imports import (
    fresh_python,
    importers_of,
    modules_loaded_by,
)
from drchrono_assets_tests.support.paths import PACKAGE, REPO

SANDBOX = REPO / "drchrono_sandbox"


@pytest.mark.parametrize(
    "module", ["drchrono_assets.api", "drchrono_assets.cli.auth", "drchrono_assets.cli.main"]
)
def test_the_api_client_and_the_auth_command_load_without_dagster(module: str) -> None:
    assert "dagster" not in modules_loaded_by(module)


def test_only_the_command_line_imports_the_sandbox() -> None:
    """The assets reach the sandbox over HTTP only, as they reach drchrono."""
    importers = importers_of("drchrono_sandbox", PACKAGE)
    assert importers and all(module.startswith("cli/") for module in importers), importers


def test_the_sandbox_imports_nothing_of_the_package() -> None:
    """A test double built from the package's own catalog would agree with its mistakes."""
    assert importers_of("drchrono_assets", SANDBOX) == set()
    assert "drchrono_assets" not in modules_loaded_by("drchrono_sandbox")


def test_nothing_else_in_the_package_imports_the_dagster_patches() -> None:
    """instance/ patches Dagster internals: only Dagster instances load it, by dagster.yaml."""
    importers = importers_of("drchrono_assets.instance", PACKAGE)
    assert {module for module in importers if not module.startswith("instance/")} == set()


def test_the_day_window_and_the_partition_rules_read_no_setting_at_import() -> None:
    loaded = modules_loaded_by("drchrono_assets.catalog.partition_rules")
    assert "drchrono_assets.day_window" in loaded
    assert "drchrono_assets.settings" not in loaded


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


def test_the_source_layer_sits_below_assets_and_sync() -> None:
    """What drchrono returns and what changed: assets and sync build on it, never the reverse,
    and it uses no Dagster API itself (the catalog's column metadata loads Dagster)."""
    source = PACKAGE / "source"
    for package in ("drchrono_assets.assets", "drchrono_assets.sync", "dagster"):
        assert importers_of(package, source) == set(), package


def test_no_module_is_over_400_lines() -> None:
    """Of the package, and of its tests."""
    long = {
        path.relative_to(REPO).as_posix(): lines
        for root in (PACKAGE, REPO / "drchrono_assets_tests")
        for path in root.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


_RECORD_READS = """
import json, pkgutil, sys, importlib
import drchrono_assets
from drchrono_assets import settings
readers = set()
real = settings.env
def env(name, default=None):
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            module = frame.f_globals.get("__name__", "")
            if module.startswith("drchrono_assets"):
                readers.add(module)
                break
        frame = frame.f_back
    return real(name, default)
settings.env = env
for info in pkgutil.walk_packages(drchrono_assets.__path__, "drchrono_assets."):
    if not info.name.startswith(("drchrono_assets.cli", "drchrono_assets.definitions")):
        importlib.import_module(info.name)
print(json.dumps(sorted(readers)))
"""


def test_settings_are_read_at_import_only_where_the_code_location_is_built() -> None:
    """Importing any module of the package but ``definitions`` (and the commands) reads no
    setting: ``definitions.py`` reads them all and passes them down."""
    assert json.loads(fresh_python(_RECORD_READS)) == []


# Who reads the environment at all: the settings, the client's settings (which the command
# line uses without Dagster), the resource's constructor from them, the code location and
# the practice components that build it, each practice's connection (the commands use it
# too), and the commands. Anything else gets its settings passed in.
ENVIRONMENT_READERS = {
    "settings.py",
    "api/client_settings.py",
    "resources/drchrono_api.py",
    "definitions.py",
    "practice_connections.py",
    "components/drchrono_practice.py",
}
# The calls that read the environment: settings.py's readers, and os.environ / os.getenv.
SETTING_READERS = {
    "env",
    "from_env",
    "start_date",
    "timezone",
    "sync_hour",
    "deletion_check_days",
    "orphan_warning_threshold",
    "unbilled_warning_threshold",
    "data_root",
    "data_group_read",
    "s3_sse",
    "s3_sse_kms_key_id",
    "practice_today",
}


def _reads_environment(source: str) -> bool:
    """Whether ``source`` calls a reader of settings, or uses ``os.environ`` / ``os.getenv``."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not isinstance(node.value, ast.Name):
            continue
        owner, name = node.value.id, node.attr
        if owner == "os" and name in ("environ", "getenv"):
            return True
        settings_class = owner in ("settings", "PracticeSettings", "ClientSettings", "cls")
        if settings_class and name in SETTING_READERS:
            return True
    return False


def test_settings_are_read_only_where_the_code_location_is_built() -> None:
    readers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _reads_environment(path.read_text())
    }
    # instance/ sets Dagster's own batch-size variable; cli/ is the commands.
    others = {reader for reader in readers if not reader.startswith(("cli/", "instance/"))}
    assert others == ENVIRONMENT_READERS
