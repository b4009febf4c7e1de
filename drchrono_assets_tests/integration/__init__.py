"""Integration tests: child processes (the command line, Dagster's CLI, clients sharing
tokens), PostgreSQL, S3 (moto), the webserver and daemon with a browser, and the long
simulations of daily operation. Each module's ``pytestmark`` names what it needs, one of the
markers declared in setup.cfg, so ``pytest -m "not browser"`` and the like leave it out."""
