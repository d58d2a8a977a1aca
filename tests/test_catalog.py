"""The catalog: required entries exist and every number carries a source."""

from __future__ import annotations

import pytest

from sim.catalog import STACKS, builtin_catalog

REQUIRED_ACCELERATORS = {
    "a100-sxm", "h100-sxm", "h200", "b200", "gb200", "mi300x", "mi325x", "tpu-v4", "tpu-v5e", "tpu-v5p",
    "tpu-v6e", "tpu-v7", "mtia-v1", "mtia-v2", "trainium2", "inferentia2", "maia-100", "gaudi3",
    "v100-16gb", "v100-32gb", "p100", "t4", "a10",
}
REQUIRED_MODELS = {"llama3-8b", "llama3-70b", "llama3-405b", "gpt3-175b", "dlrm-dcnv2", "resnet50", "bert-base"}
CATALOG = builtin_catalog()


def test_required_entries_present():
    assert REQUIRED_ACCELERATORS <= set(CATALOG.accelerators)
    assert REQUIRED_MODELS <= set(CATALOG.models)


def _numbers(spec) -> list[str]:
    fields = []
    for name, value in spec.model_dump().items():
        if name == "stacks":
            fields += [f"stacks.{stack}" for stack in value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
            fields.append(name)
    return fields


def _check_source(text: str) -> None:
    if text.startswith("estimate:"):
        assert len(text) > len("estimate: ") + 10, "an estimate says how it was made"
        return
    key = text.split()[0].rstrip(":;,")
    assert key in CATALOG.sources, f"unknown source key {key!r}"


@pytest.mark.parametrize("accel", sorted(CATALOG.accelerators))
def test_every_accelerator_number_has_a_source(accel):
    spec = CATALOG.accelerators[accel]
    for field in _numbers(spec):
        assert field in spec.sources, f"{accel}.{field} has no source"
        _check_source(spec.sources[field])
    assert set(spec.stacks) <= set(STACKS)
    assert "portable" in spec.stacks
    assert all(0 < eff <= 1 for eff in spec.stacks.values())
    assert spec.idle_w < spec.tdp_w


@pytest.mark.parametrize("model", sorted(CATALOG.models))
def test_every_model_number_has_a_source(model):
    spec = CATALOG.models[model]
    for field in _numbers(spec):
        if getattr(spec, field) == 0:
            continue
        assert field in spec.sources, f"{model}.{field} has no source"
        _check_source(spec.sources[field])


def test_site_defaults_have_sources():
    for key, source in CATALOG.site_sources.items():
        _check_source(source)


def test_sources_have_titles():
    for key, entry in CATALOG.sources.items():
        assert entry.get("title"), key
