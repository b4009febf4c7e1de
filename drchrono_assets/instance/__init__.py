"""What Dagster instances load from this package: the local one (deploy/local/dagster.yaml)
and the production one (deploy/dagster.yaml)."""
