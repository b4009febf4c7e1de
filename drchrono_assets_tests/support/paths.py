"""Where the repository's files are, for tests that read or run them."""

from pathlib import Path

#: The repository's root: ``workspace.yaml``, ``deploy/``, ``README.md``, ``pyproject.toml``.
REPO = Path(__file__).resolve().parents[2]
#: The package's source folder.
PACKAGE = REPO / "drchrono_assets"
