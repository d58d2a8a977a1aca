"""Registries of policy classes keyed by the name used in YAML (``kind: hetero-aware``).

A policy module registers its classes with ``@register("scheduler", "fifo")``. The scenario checks
read the keys from here to list accepted values; the engine instantiates the class. The package's
``__init__`` imports the built-in policies, so they are registered whenever ``sim.policies`` is used.
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
    return _REGISTRIES[family]
