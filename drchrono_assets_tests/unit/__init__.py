"""Unit tests: each runs inside the pytest process in seconds, with no service.

No child process (a fresh interpreter that only imports and prints, through
``support.fresh_python``, excepted: what an import loads or reads shows only there), no
PostgreSQL, S3, browser, ``dagster-webserver`` or ``dagster-daemon``, no simulated mornings. A
sandbox API or a stub HTTP server on a thread of the test process, on 127.0.0.1, is fine.
``unit/test_tiers.py`` checks it. ``make check`` runs them."""
