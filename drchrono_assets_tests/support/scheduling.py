"""The order tests start in (a pytest plugin, ``-p`` in setup.cfg): those that declare a
longer timeout first, longest first. With ``pytest -n 2 --maxschedchunk 1`` (``make test``)
each worker starts with two of them, so the long simulations run side by side from the
start and the short tests fill in around them (xdist's default first hands a worker a
quarter of its share at once: every long test on one worker)."""

from __future__ import annotations

import pytest


def declared_timeout(item: pytest.Item) -> float:
    """The timeout the test declares with ``@pytest.mark.timeout``; 0 when none."""
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=declared_timeout, reverse=True)  # stable: the rest keep their order
