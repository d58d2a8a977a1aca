"""Built-in accelerator, model and facility data, every number with its source."""

from sim.catalog.loader import Catalog, builtin_catalog
from sim.catalog.specs import STACKS, AcceleratorSpec, ModelSpec

__all__ = ["Catalog", "builtin_catalog", "AcceleratorSpec", "ModelSpec", "STACKS"]
