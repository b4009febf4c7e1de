"""Asset checks."""

from drchrono_assets.checks.billing_checks import billing_checks

__all__ = ["billing_checks"]
