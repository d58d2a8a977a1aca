"""Decision policies (schedulers today), each a small class in a registry keyed by its YAML name."""

from sim.policies import schedulers  # noqa: F401  (registers fifo, fifo-backfill, hetero-aware)
from sim.policies.registry import register, registry

__all__ = ["register", "registry"]
