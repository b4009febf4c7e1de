"""How the files under a data root are protected at rest.

On a local disk: permissions set explicitly, never left to the umask. Everything is the
owner's alone (files 0600, folders 0700) unless ``group_read`` lets the group of the data
root read it too (0640, 0750). A stored file (a dataset's Parquet file, a staged change set,
a plan) is also read-only: the days of a snapshot share one inode, so a write in place to
one day's file would change every day. On S3: server-side encryption asked for on every
write.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from upath import UPath

from drchrono_assets import settings
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.folders import make_folders

# A reader who could open a lock file could also hold its flock, and keep every writer of
# the asset waiting: lock files stay the owner's, whatever ``group_read`` says.
LOCK_FILE_MODE = 0o600
S3_PROTOCOLS = ("s3", "s3a")


@dataclasses.dataclass(frozen=True)
class AtRest:
    """The protection of the files a process writes under one data root.

    ``s3_sse`` is ``AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS, with ``s3_sse_kms_key_id``
    or the account's default key); it applies only to an ``s3://`` data root.
    """

    group_read: bool = False
    s3_sse: str | None = None
    s3_sse_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        settings.check_s3_sse(self.s3_sse, self.s3_sse_kms_key_id)

    @property
    def stored_file_mode(self) -> int:
        """Files replaced only by renaming a new one over them: read-only."""
        return 0o440 if self.group_read else 0o400

    @property
    def file_mode(self) -> int:
        """Files their owner may still open for writing (the DuckDB file for BI tools)."""
        return 0o640 if self.group_read else 0o600

    @property
    def folder_mode(self) -> int:
        return 0o750 if self.group_read else 0o700

    def storage_options(self, data_root: str) -> dict[str, Any]:
        """fsspec options for ``data_root``: on S3, the encryption s3fs adds to every
        ``PutObject`` and ``CreateMultipartUpload`` (and leaves out of reads)."""
        if self.s3_sse is None:
            return {}
        protocol = UPath(data_root).protocol
        if protocol not in S3_PROTOCOLS:
            # Silently unencrypted data is worse than a run that does not start.
            raise ConfigurationError(
                f"DRCHRONO_S3_SSE={self.s3_sse} applies only to an s3:// data root, not "
                f"{data_root}: unset it, or point DRCHRONO_DATA_ROOT at a bucket"
            )
        arguments = {"ServerSideEncryption": self.s3_sse}
        if self.s3_sse_kms_key_id is not None:
            arguments["SSEKMSKeyId"] = self.s3_sse_kms_key_id
        return {"s3_additional_kwargs": arguments}

    def root(self, data_root: str) -> UPath:
        """``data_root`` as a path whose writes carry this protection (every path joined
        to it keeps the storage options)."""
        return UPath(data_root, **self.storage_options(data_root))

    def make_folders(self, folder: UPath | str) -> None:
        """Create the local ``folder`` and its missing parents with ``folder_mode``,
        whatever the umask. Existing folders are left as they are."""
        make_folders(Path(folder.path if isinstance(folder, UPath) else folder), self.folder_mode)

    def create_file(self, path: str, mode: int) -> int:
        """A new local file at ``path`` (which must not exist) with exactly ``mode``, open
        for writing. Created owner-only, so it is never more open than ``mode`` meanwhile."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away
        except BaseException:
            os.close(fd)
            raise
        return fd


PRIVATE = AtRest()  # the default: owner-only, no S3 encryption asked for
