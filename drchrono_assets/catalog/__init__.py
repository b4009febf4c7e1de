"""The drchrono resources as data, and the conversion of their records to Arrow."""

from drchrono_assets.catalog.endpoints import RESOURCES, ResourceSpec

__all__ = ["RESOURCES", "ResourceSpec"]
