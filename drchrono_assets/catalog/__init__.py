"""The drchrono resources as data, and the conversion of their records to Arrow."""

from drchrono_assets.catalog.endpoints import (
    BILLING_INPUTS,
    RESOURCES,
    ResourceSpec,
    resources_named,
)

__all__ = ["BILLING_INPUTS", "RESOURCES", "ResourceSpec", "resources_named"]
