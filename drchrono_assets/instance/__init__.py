"""What the production Dagster instance loads from this package (named in deploy/dagster.yaml)."""
