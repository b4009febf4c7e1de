"""A ``dg`` project of practices: a package whose ``defs/`` folder holds one ``defs.yaml``
per practice, as a deployment of many practices lays itself out. The demo of several
practices writes one; so do the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from drchrono_assets.practice_connections import ENVIRONMENT_TYPE, PRACTICE_TYPE


def write_practices_project(
    project: Path, package: str, practices: dict[str, dict[str, Any] | None]
) -> Path:
    """The project ``project`` of package ``package``, with a component per entry of
    ``practices`` (folder name -> a ``DrchronoPractice``'s attributes, or None for the
    practice of the ``DRCHRONO_*`` variables); returns its ``defs`` folder. Its definitions
    are ``<project>/<package>/definitions.py``, with ``project`` on the Python path."""
    defs = project / package / "defs"
    defs.mkdir(parents=True)
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
        (defs / folder).mkdir()
        body: dict[str, Any] = {"type": ENVIRONMENT_TYPE if attributes is None else PRACTICE_TYPE}
        if attributes is not None:
            body["attributes"] = attributes
        (defs / folder / "defs.yaml").write_text(yaml.safe_dump(body))
    return defs
