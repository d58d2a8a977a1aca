"""Decision policies (schedulers, power-cap policies), each a small class in a registry keyed by its YAML name."""

from sim.policies import capping, schedulers  # noqa: F401  (registers the schedulers and admission, throttle, shed)
from sim.policies.registry import register, registry

__all__ = ["register", "registry"]
