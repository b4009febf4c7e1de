"""Throwaway ``dg`` projects of practices (``write_practices_project``), one package name
per project in this process."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from drchrono_assets.cli.practices_project import write_practices_project

_NUMBERS = itertools.count()


def write_project(root: Path, practices: dict[str, dict[str, Any] | None]) -> tuple[Path, str]:
    """A project under ``root`` with a component per entry of ``practices``: attributes of a
    ``DrchronoPractice``, or None for the practice of the ``DRCHRONO_*`` variables. Returns
    the project's folder and its package's name (unique in this process: modules are cached,
    so put the folder on ``sys.path`` before loading)."""
    package = f"practices_{next(_NUMBERS)}"
    write_practices_project(root / package, package, practices)
    return root / package, package
