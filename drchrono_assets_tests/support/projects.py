"""Throwaway ``dg`` projects: a package whose ``defs/`` folder holds one ``defs.yaml`` per
practice, as a deployment of many practices lays itself out."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

_NUMBERS = itertools.count()
PRACTICE_TYPE = "drchrono_assets.components.DrchronoPractice"
ENVIRONMENT_TYPE = "drchrono_assets.components.DrchronoPracticeFromEnvironment"


def write_project(root: Path, practices: dict[str, dict[str, Any] | None]) -> tuple[Path, str]:
    """A project under ``root`` with a component per entry of ``practices``: attributes of a
    ``DrchronoPractice``, or None for the practice of the ``DRCHRONO_*`` variables. Returns
    the project's folder and its package's name (unique in this process: modules are cached,
    so put the folder on ``sys.path`` before loading)."""
    package = f"practices_{next(_NUMBERS)}"
    project = root / package
    (project / package / "defs").mkdir(parents=True)
    (project / package / "__init__.py").write_text("")
    (project / package / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{package}"\nversion = "0"\n\n'
        f'[tool.dg]\ndirectory_type = "project"\n\n'
        f'[tool.dg.project]\nroot_module = "{package}"\n'
    )
    for folder, attributes in practices.items():
        (project / package / "defs" / folder).mkdir()
        body: dict[str, Any] = {"type": ENVIRONMENT_TYPE if attributes is None else PRACTICE_TYPE}
        if attributes is not None:
            body["attributes"] = attributes
        (project / package / "defs" / folder / "defs.yaml").write_text(yaml.safe_dump(body))
    return project, package
