"""How each practice of a deployment reaches drchrono, read from its ``defs/`` folder without
Dagster: the command line connects a practice (``auth login NAME``) and lists them all
(``auth status``) from this, and the practice component takes its variables' names here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from drchrono_assets.api.client_settings import SECRET_VARIABLES, ClientSettings
from drchrono_assets.errors import ConfigurationError

#: The package's practices: the defs folder of its ``dg`` project.
DEFS_FOLDER = Path(__file__).parent / "defs"
PRACTICE_TYPE = "drchrono_assets.components.DrchronoPractice"
ENVIRONMENT_TYPE = "drchrono_assets.components.DrchronoPracticeFromEnvironment"


@dataclasses.dataclass(frozen=True)
class PracticeConnection:
    """A practice's way to the API: its name (None: the practice of the ``DRCHRONO_*``
    variables), the API's origin, and the names of the variables holding its application's
    client id and secret and its token store. Its tokens are its own."""

    name: str | None = None
    base_url: str | None = None  # None: DRCHRONO_BASE_URL, else drchrono.com
    client_id_env: str = SECRET_VARIABLES["client_id"]
    client_secret_env: str = SECRET_VARIABLES["client_secret"]
    token_store_env: str = SECRET_VARIABLES["token_store"]

    @property
    def secret_variables(self) -> dict[str, str]:
        """Field -> the variable holding it. A named practice's refresh tokens come from
        ``auth login NAME`` alone, never from ``DRCHRONO_REFRESH_TOKEN``."""
        named = {
            "client_id": self.client_id_env,
            "client_secret": self.client_secret_env,
            "token_store": self.token_store_env,
        }
        return named if self.name else dict(SECRET_VARIABLES)

    @property
    def login_command(self) -> str:
        """The command that connects it."""
        return f"drchrono-assets auth login{f' {self.name}' if self.name else ''}"

    def client_settings(self) -> ClientSettings:
        """Its client's settings, the secrets read from their variables now."""
        return ClientSettings.from_env(self.secret_variables, self.base_url, self.name)


def _connection(document: dict[str, Any], path: Path) -> PracticeConnection | None:
    kind = document.get("type")
    if kind == ENVIRONMENT_TYPE:
        return PracticeConnection()
    if kind != PRACTICE_TYPE:
        return None
    attributes = document.get("attributes") or {}
    fields = {field.name for field in dataclasses.fields(PracticeConnection)}
    if "name" not in attributes:
        raise ConfigurationError(f"{path}: a DrchronoPractice needs a name: add `name:`")
    return PracticeConnection(**{k: v for k, v in attributes.items() if k in fields})


def configured_practices(defs_folder: Path = DEFS_FOLDER) -> list[PracticeConnection]:
    """The practices of ``defs_folder``'s ``defs.yaml`` files, in the order of their paths."""
    found = []
    for path in sorted(defs_folder.rglob("defs.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            connection = _connection(document or {}, path)
            if connection is not None:
                found.append(connection)
    return found


def practice_named(name: str | None, defs_folder: Path = DEFS_FOLDER) -> PracticeConnection:
    """The practice called ``name`` (None: the practice of the ``DRCHRONO_*`` variables)."""
    if name is None:
        return PracticeConnection()
    practices = configured_practices(defs_folder)
    for practice in practices:
        if practice.name == name:
            return practice
    known = ", ".join(p.name for p in practices if p.name) or "none"
    raise ConfigurationError(
        f"no practice is called {name!r} in {defs_folder} (named practices: {known}): add its "
        "defs.yaml (README, Many practices) or check the name"
    )
