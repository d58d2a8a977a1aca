"""Registries of policy classes keyed by the name used in YAML (``kind: hetero-aware``).

A policy module registers its classes with ``@register("scheduler", "fifo")``. The scenario checks
read the keys from here to list accepted values; the engine instantiates the class. Importing this
module loads the built-in policies and nothing else (no SimPy).
"""

from __future__ import annotations

from typing import Callable

_REGISTRIES: dict[str, dict[str, type]] = {"scheduler": {}}


def register(family: str, name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        _REGISTRIES.setdefault(family, {})[name] = cls
        cls.kind = name
        return cls

    return decorate


def registry(family: str) -> dict[str, type]:
    """The classes registered under ``family`` (``'scheduler'``), by YAML name."""
    _load_builtins()
    return _REGISTRIES[family]


def _load_builtins() -> None:
    import sim.policies.schedulers  # noqa: F401  (registers fifo, fifo-backfill, hetero-aware)
