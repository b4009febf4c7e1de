"""The Dagster resource and the client's settings agree field for field, and the client's
settings, not the client, decide where the token store is."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from drchrono_assets.api import ClientSettings, DrchronoClient
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.paths import PACKAGE
from drchrono_assets_tests.support.resources import api_for

API = PACKAGE / "api"
SECRETS = {"client_secret", "refresh_token", "token_store"}


# -- the resource declares ClientSettings' fields ------------------------------------------


def test_the_resource_declares_every_setting_in_order_with_its_type_and_default() -> None:
    """Declared twice (so type checkers and Dagster's config schema see them): kept equal."""
    settings = dataclasses.fields(ClientSettings)
    resource = DrchronoApiResource.model_fields
    assert list(resource) == [field.name for field in settings]
    types = typing.get_type_hints(ClientSettings)
    for field in settings:
        declared = resource[field.name]
        assert declared.annotation == types[field.name], field.name
        assert declared.default == field.default, field.name


def test_secrets_are_kept_out_of_repr_in_both() -> None:
    shown = {field.name for field in dataclasses.fields(ClientSettings) if field.repr}
    assert {name for name, field in DrchronoApiResource.model_fields.items() if field.repr} == shown
    assert not SECRETS & shown
    values = {"client_secret": "SECRET-1", "refresh_token": "SECRET-2", "token_store": "SECRET-3"}
    for text in (
        repr(DrchronoApiResource(client_id="id", **values)),
        str(DrchronoApiResource(client_id="id", **values)),
        repr(ClientSettings(client_id="id", **values)),
    ):
        assert "SECRET" not in text


# -- where the token store is --------------------------------------------------------------


def test_without_a_token_store_the_settings_pick_a_file_per_application_at_home(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = ClientSettings(client_id="one").resolve_token_store()
    other = ClientSettings(client_id="two").resolve_token_store()
    folder = tmp_path / ".drchrono_assets"
    assert config.token_store == str(folder / f"tokens-{config.application_key()}.json")
    assert other.token_store != config.token_store  # one per (API host, client id)
    assert config.resolve_token_store() == config
    given = ClientSettings(token_store="postgresql+psycopg2://u:pw@h/db")
    assert given.resolve_token_store() == given


def test_the_environment_and_the_resource_decide_the_location(monkeypatch, tmp_path) -> None:
    store = str(tmp_path / "secrets" / "tokens.json")
    monkeypatch.setenv("DRCHRONO_TOKEN_STORE", store)
    assert ClientSettings.from_env().token_store == store
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DRCHRONO_TOKEN_STORE")
    assert ClientSettings.from_env().token_store.startswith(str(tmp_path / ".drchrono_assets"))
    resolved = DrchronoApiResource(client_id="id").client_settings().token_store
    assert resolved.startswith(str(tmp_path / ".drchrono_assets"))


def test_token_store_inside_the_data_root_is_refused(sandbox_env, monkeypatch, tmp_path) -> None:
    inside = str(tmp_path / "secrets" / "tokens.json")
    api = api_for(sandbox_env, token_store=str(tmp_path / "tokens.json"), data_root=str(tmp_path))
    with pytest.raises(ConfigurationError, match="inside the data root"):
        api.client.current_user()
    with pytest.raises(ConfigurationError, match="inside the data root"):
        ClientSettings(token_store=inside, data_root=str(tmp_path)).resolve_token_store()
    # From the environment, as the command line and the code location read it.
    monkeypatch.setenv("DRCHRONO_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("DRCHRONO_TOKEN_STORE", inside)
    with pytest.raises(ConfigurationError, match="inside the data root"):
        ClientSettings.from_env()
    with pytest.raises(ConfigurationError, match="inside the data root"):
        DrchronoApiResource.from_env(data_root=str(tmp_path)).client_settings()


def test_the_client_takes_the_location_from_its_settings_and_never_guesses(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("DRCHRONO_TOKEN_STORE", str(tmp_path / "ignored.json"))
    client = DrchronoClient(ClientSettings(client_id="id", client_secret="secret"))
    with pytest.raises(ConfigurationError, match="no token store in the client's settings"):
        client.current_user()
    with pytest.raises(ConfigurationError, match="no token store in the client's settings"):
        client.open_token_store()
    assert not (tmp_path / "ignored.json").exists()


def test_only_the_settings_read_the_environment() -> None:
    """The client's modules get what they need from ``ClientSettings`` (or their caller)."""
    readers = {
        path.name
        for path in API.glob("*.py")
        if any(
            needle in path.read_text()
            for needle in ("os.environ", "os.getenv", "from drchrono_assets import settings")
        )
    }
    assert readers == {"client_settings.py"}
