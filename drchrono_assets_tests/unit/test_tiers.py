"""The tests' own layout: unit modules stay in the test process and need no service;
integration modules name what they need in ``pytestmark``; helpers live in ``support/``."""

from __future__ import annotations

import ast
from pathlib import Path

from drchrono_assets_tests.support.imports import modules_imported_by
from drchrono_assets_tests.support.paths import REPO

TESTS = REPO / "drchrono_assets_tests"
SUPPORT = "drchrono_assets_tests.support"
#: What a module imports, or a fixture it asks for, and the marker that says it needs it.
NEEDS = {
    "postgres": {f"{SUPPORT}.postgres_server", f"{SUPPORT}.deployment", "postgres"},
    "browser": {"selenium"},
    "s3": {"moto"},
    "simulation": {
        f"{SUPPORT}.simulation.Morning",
        f"{SUPPORT}.practices_simulation",
        "after_first_morning",
    },
    "processes": {"subprocess", "multiprocessing", f"{SUPPORT}.processes", "os.fork"},
}
#: A unit module may import, call or ask for none of these: they start processes or services.
NOT_IN_UNIT = set().union(*NEEDS.values()) | {f"{SUPPORT}.simulation", f"{SUPPORT}.ui_launch"}


def modules_of(tier: str) -> list[Path]:
    """The test modules of ``tier`` (``unit`` or ``integration``), in subfolders too."""
    return sorted((TESTS / tier).rglob("test_*.py"))


def uses(path: Path) -> set[str]:
    """What the module at ``path`` imports, the ``os.fork`` it calls, the fixtures it asks for."""
    tree = ast.parse(path.read_text())
    used = set(modules_imported_by(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "fork":
            used.add("os.fork")
        if isinstance(node, ast.FunctionDef):
            used.update(argument.arg for argument in node.args.args)
    return used


def any_of(signs: set[str], used: set[str]) -> set[str]:
    """The names in ``used`` that are one of ``signs``, or a module or name inside one."""
    return {name for name in used if any(name == s or name.startswith(f"{s}.") for s in signs)}


def markers(path: Path) -> set[str]:
    """The markers the module's ``pytestmark`` gives all its tests."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            return {
                mark.attr for mark in ast.walk(node.value) if isinstance(mark, ast.Attribute)
            } - {"mark"}
    return set()


def test_unit_modules_start_no_process_and_need_no_service() -> None:
    """Nor are they marked: a marker says what a test needs, and they need nothing."""
    found = {
        path.name: wrong
        for path in modules_of("unit")
        if (wrong := any_of(NOT_IN_UNIT, uses(path)) | markers(path))
    }
    assert found == {}


def test_integration_modules_are_marked_with_what_they_need() -> None:
    """And each needs something: otherwise it belongs in unit/."""
    wrong = {}
    for path in modules_of("integration"):
        used = uses(path)
        needed = {marker for marker, signs in NEEDS.items() if any_of(signs, used)}
        if not needed or not needed <= markers(path):
            wrong[path.name] = (sorted(needed), sorted(markers(path)))
    assert wrong == {}


def test_tests_import_helpers_from_support_never_from_a_test_module_or_a_conftest() -> None:
    """The benchmarks too."""
    imported = {
        (path.relative_to(REPO).as_posix(), name)
        for path in [*TESTS.rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
        for name in modules_imported_by(path)
        if name.startswith("drchrono_assets_tests.")
        and not (name == SUPPORT or name.startswith(f"{SUPPORT}."))
    }
    assert imported == set()


def test_conftest_files_hold_fixtures_only() -> None:
    """Helpers are plain functions in support/, imported where they are used."""
    for path in TESTS.rglob("conftest.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                assert any("fixture" in ast.unparse(d) for d in node.decorator_list), node.name
            else:
                assert isinstance(node, ast.Expr | ast.Import | ast.ImportFrom), path
