"""What code imports: read from its source, or seen in a fresh interpreter. The fresh
interpreter (``fresh_python``) is the one child process the unit tests may start: what an
import loads, or reads from the environment, shows only in a process that has not imported
it yet."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path


def fresh_python(code: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints, run with warnings off by a new interpreter of this Python.
    ``env`` is the child's whole environment (default: this process's); ``PYTHONPATH`` is
    passed on either way, so that the child imports the code this process does."""
    if env is not None and "PYTHONPATH" in os.environ:
        env = {**env, "PYTHONPATH": os.environ["PYTHONPATH"]}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def modules_loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module``."""
    loaded = fresh_python(f"import json, sys, {module}; print(json.dumps(list(sys.modules)))")
    return set(json.loads(loaded))


def modules_imported_by(path: Path) -> set[str]:
    """The modules the file at ``path`` imports, at its top or in a function (the code has
    no relative imports); ``from a import b`` counts as ``a`` and ``a.b``, module or not."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def importers_of(package: str, root: Path) -> set[str]:
    """The files under ``root`` (relative to it) that import ``package`` or a module of it."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if any(
            name == package or name.startswith(f"{package}.") for name in modules_imported_by(path)
        )
    }
