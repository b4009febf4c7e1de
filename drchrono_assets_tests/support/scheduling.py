"""The order tests start in (a pytest plugin, ``-p`` in setup.cfg): those that declare a
longer timeout first, longest first, so that with ``pytest -n 2`` (``make test``) the long
simulations run side by side from the start and the short tests fill in around them."""

from __future__ import annotations

import pytest


def declared_timeout(item: pytest.Item) -> float:
    """The timeout the test declares with ``@pytest.mark.timeout``; 0 when none."""
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=declared_timeout, reverse=True)  # stable: the rest keep their order
