"""The deployed stack: ``dagster-webserver`` and ``dagster-daemon`` on PostgreSQL, started
once for the package's modules (``conftest.py``), driven as the UI drives them."""
