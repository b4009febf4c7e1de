"""What Dagster instances load from this package: the local one (deploy/local/dagster.yaml)
and the production one (deploy/dagster.yaml). Nothing else in drchrono_assets imports it.

This package patches Dagster internals: its storages subclass Dagster's event log storages
and override or call their private methods. It is checked against Dagster 1.13.27 only:
``dagster_version.py`` refuses any other version when an instance constructs a storage.

Remove when: Dagster's own SQLite and PostgreSQL event log storages store a batch of one
run's asset events in one transaction, and its PostgreSQL event log claims a pool slot in
one statement; dagster.yaml then names Dagster's own classes.
"""
