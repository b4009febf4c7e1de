"""A throwaway PostgreSQL server on 127.0.0.1 with its own data folder, for the tests.

The binaries come from the distribution's packages (``make test`` installs them). Missing
binaries fail the tests rather than skip them: CI must exercise the PostgreSQL path.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy

USER = "dagster"


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, str(Path(found).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run `make test`, which "
        "installs the distribution's postgresql package"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """``with PostgresServer() as pg: pg.url("db")`` -> a running server, removed afterwards."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="drchrono-pg-"))
        self._bin = _bin_dir()

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: use the package's postgres user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run(str(self._bin / "initdb"), "-D", str(data), "-U", USER, "-A", "trust")
        self._run(
            str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "log"), "-w",
            "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "start",
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, db_name: str) -> str:
        """The SQLAlchemy URL of database ``db_name``."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{db_name}"

    def create_database(self, db_name: str) -> str:
        """A new empty database; returns its URL."""
        engine = sqlalchemy.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{db_name}"'))
        engine.dispose()
        return self.url(db_name)

    def dagster_env(self, db_name: str) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": db_name,
            "DAGSTER_PG_USERNAME": USER,
            "DAGSTER_PG_PASSWORD": "",
        }
