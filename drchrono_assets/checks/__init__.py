"""Asset checks: the billing report's, and every dated asset's freshness."""

from drchrono_assets.checks.billing_checks import build_billing_checks

__all__ = ["build_billing_checks"]
