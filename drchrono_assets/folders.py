"""Folders created with an exact mode, whatever the umask: the token folder and everything
under a data root hold patient data or secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def make_folders(folder: Path, mode: int) -> None:
    """Create ``folder`` and its missing parents with ``mode``; existing folders are left
    as they are."""
    missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    for parent in reversed(missing):
        try:
            parent.mkdir(mode=mode)
        except FileExistsError:
            continue  # another writer made it, with the same mode
        # mkdir's mode is masked by the umask. A set-group-id bit the folder inherited
        # stays, so what is written below stays in its parent's group.
        inherited = parent.stat().st_mode & stat.S_ISGID
        os.chmod(parent, mode | inherited)
