"""Asset checks."""

from drchrono_assets.checks.billing import billing_checks

__all__ = ["billing_checks"]
