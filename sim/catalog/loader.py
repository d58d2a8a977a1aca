"""Load the built-in catalog (accelerators, models, facility defaults, sources) from package data."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from sim.catalog.specs import AcceleratorSpec, ModelSpec


@dataclass(frozen=True)
class Catalog:
    """Accelerators and models by id, facility defaults, and the bibliography of sources."""

    accelerators: dict[str, AcceleratorSpec]
    models: dict[str, ModelSpec]
    site_defaults: dict[str, float]
    site_sources: dict[str, str]
    sources: dict[str, dict] = field(default_factory=dict)
    failure_profiles: dict[str, dict] = field(default_factory=dict)  # failures.yaml: profile name -> its data

    def with_additions(self, accelerators=(), models=()) -> "Catalog":
        """A new catalog with a scenario's own accelerators and models added (they may shadow built-ins)."""
        return Catalog(
            accelerators={**self.accelerators, **{a.id: a for a in accelerators}},
            models={**self.models, **{m.id: m for m in models}},
            site_defaults=self.site_defaults,
            site_sources=self.site_sources,
            sources=self.sources,
            failure_profiles=self.failure_profiles,
        )


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 5× faster start-up


def _read(name: str):
    text = resources.files("sim.catalog").joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=_FAST_LOADER)


@lru_cache(maxsize=1)
def builtin_catalog() -> Catalog:
    """The catalog shipped with the package (read once per process; it is immutable)."""
    accelerators = {entry["id"]: AcceleratorSpec(**entry) for entry in _read("accelerators")}
    models = {entry["id"]: ModelSpec(**entry) for entry in _read("models")}
    site = _read("site")
    return Catalog(
        accelerators=accelerators,
        models=models,
        site_defaults={key: float(item["value"]) for key, item in site.items()},
        site_sources={key: str(item["source"]) for key, item in site.items()},
        sources=_read("sources") or {},
        failure_profiles=_read("failures") or {},
    )
