"""Decision policies (schedulers today), each a small class in a registry keyed by its YAML name."""

from sim.policies.registry import register, registry

__all__ = ["register", "registry"]
