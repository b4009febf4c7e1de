"""The one Dagster version the storages in this package were written against, and the check
each of them runs when an instance constructs it.

They override and call private methods of Dagster's event log storages
(``_store_asset_event``, ``_event_to_row``, ``_claim_concurrency_slot``...), which any
Dagster release may change without notice. The package pins that version, but a user can
still upgrade Dagster beside it; then the storages refuse to load, naming Dagster's own
class to put in dagster.yaml instead, rather than misbehave (lost or doubled events, a pool
slot given to two steps). The check runs at construction, not at import, so the modules stay
importable (tests, docs) under any version.

This module patches no Dagster internals itself: it fences the ones that do, checked against
Dagster 1.13.27 (``SUPPORTED_DAGSTER_VERSION``).

Remove when: the last storage of this package is removed (see their "Remove when" lines).
"""

from __future__ import annotations

from dagster import version as dagster_version

from drchrono_assets.errors import ConfigurationError

#: The Dagster release whose private storage methods this package's storages were checked
#: against. Moving it means re-reading those methods in the new release (see each class's
#: "Remove when" note) and re-running unit/test_local_instance.py and
#: integration/test_postgres_instance.py.
SUPPORTED_DAGSTER_VERSION = "1.13.27"


class UnsupportedDagsterVersionError(ConfigurationError):
    """The installed Dagster is not the one the package's storages were written against."""


def installed_dagster_version() -> str:
    """Dagster's version as installed now (read at each call, so tests can patch it)."""
    return dagster_version.__version__


def require_supported_dagster(storage: str, stock_module: str, stock_class: str) -> None:
    """Raise ``UnsupportedDagsterVersionError`` unless the installed Dagster is the supported
    one; the message names both versions and Dagster's own class to use instead."""
    installed = installed_dagster_version()
    if installed == SUPPORTED_DAGSTER_VERSION:
        return
    raise UnsupportedDagsterVersionError(
        f"{storage} (drchrono_assets) supports Dagster {SUPPORTED_DAGSTER_VERSION} only, "
        f"but Dagster {installed} is installed: it relies on private Dagster methods that may "
        f"have changed. In dagster.yaml use Dagster's own storage instead (module: "
        f"{stock_module}, class: {stock_class}), or install dagster=="
        f"{SUPPORTED_DAGSTER_VERSION}."
    )
