"""Every figure the README quotes from a ready scenario comes from a run, and this test fails when the
README and the run disagree.

A quoted figure carries an invisible marker right after it, naming the run and the summary field:
``23.4<!--fig recsys-on-asics inference.feed.latency_s.p99 ms--> ms``. The run is a ready scenario's
golden summary (``tests/golden/<name>.json``, itself checked against a fresh run by
``test_scenarios.py``) or a named variant below (a ready scenario with overrides, run here). The scale
turns the field into the quoted unit: ``ms`` (×1000), ``%`` (×100), ``k`` (÷1000), ``M`` (÷10⁶), ``h``
(seconds to hours), or none.
The quoted number must equal the field rounded to the decimals shown.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import pytest

import sim
from tests.conftest import REPO, SCENARIOS

README = REPO / "README.md"
MARKER = re.compile(r"(?P<value>[-+]?\d[\d,]*(?:\.\d+)?)"
                    r"<!--fig (?P<run>[\w@.-]+) (?P<path>[\w.-]+)(?: (?P<scale>\S+))?-->")
SCALES = {None: 1.0, "ms": 1e3, "%": 100.0, "k": 1e-3, "M": 1e-6, "h": 1 / 3600}
# variants of ready scenarios that the README quotes (name@variant -> overrides)
VARIANTS = {
    "classroom-hetero@1MW": {"site.power_cap_mw": 1.0},
    "llm-serving-azure@least-work": {"workloads.inference.0.router.kind": "least-work"},
    "llm-serving-azure@fluid": {"workloads.inference.0.fidelity": "fluid"},
    "recsys-on-asics@max-batch-2": {"workloads.inference.0.replicas.0.max_batch": 2},
    "gpu-supply-shock@no-shock": {"supply.shocks.0.delivery_factor": 1.0, "supply.shocks.0.extra_delay": 0},
    "port-or-stay@stay": {"porting": [{"from_stack": "xla", "accelerator": "h100-sxm", "efficiency_frac": 0.6}]},
    "reliability-at-scale@port": {"workloads.training.generator.stacks": {"cuda": 1.0}, "porting": [
        {"from_stack": "cuda", "accelerator": "mi300x", "to_stack": "rocm", "start": "2026-01-01", "engineer_weeks": 52,
         "cost_usd": 100000, "ramp": {"initial_frac": 0.6, "final_frac": 1.0, "months": 3}}]},
    "reliability-at-scale@stay": {"workloads.training.generator.stacks": {"cuda": 1.0}},
    "air-vs-liquid@liquid": {"fleet.h100.cooling": "liquid"},
    "air-vs-liquid@hot": {"site.climate": "miami"},
    "air-vs-liquid@hot-liquid": {"site.climate": "miami", "fleet.h100.cooling": "liquid"},
    "power-capped-site@admission": {"policy.power_cap.kind": "admission"},
    "power-capped-site@0.18MW": {"site.power_cap_mw": 0.18},
    "power-capped-site@0.18MW-admission": {"site.power_cap_mw": 0.18, "policy.power_cap.kind": "admission"},
    "power-capped-site@0.14MW": {"site.power_cap_mw": 0.14},
    "power-capped-site@0.14MW-admission": {"site.power_cap_mw": 0.14, "policy.power_cap.kind": "admission"},
    "power-capped-site@low-priority-chat": {"workloads.inference.0.priority": -1},
    "carbon-shifting@no-shift": {"workloads.training.deferrable": False},
    "power-capped-site@rows-1.3x": {"fleet.h100.racks_per_row": 4, "fleet.h100.row_budget_kw": 97.5},
    "power-capped-site@rows-1.3x-admission": {"fleet.h100.racks_per_row": 4, "fleet.h100.row_budget_kw": 97.5,
                                              "policy.power_cap.kind": "admission"},
}


def markers(text: str) -> list[re.Match]:
    return list(MARKER.finditer(text))


@lru_cache(maxsize=None)
def summary_of(run: str) -> dict:
    if run in VARIANTS:
        name = run.split("@")[0]
        return sim.run(sim.load(SCENARIOS / f"{name}.yaml").with_overrides(VARIANTS[run])).summary
    return json.loads((REPO / "tests" / "golden" / f"{run}.json").read_text())


def field(summary: dict, path: str):
    value = summary
    for key in path.split("."):
        value = value[key]
    return value


def disagreement(match: re.Match, lookup=None) -> str | None:
    """Why a quoted figure differs from its run (``None`` when it agrees); ``lookup(run)`` gives a summary."""
    shown = match["value"].replace(",", "")
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    try:
        value = field((lookup or summary_of)(match["run"]), match["path"])
    except (KeyError, TypeError):
        return f"{match['run']} has no field {match['path']}"
    if match["scale"] not in SCALES:
        return f"unknown scale {match['scale']!r}; known: {sorted(k for k in SCALES if k)}"
    expected = round(float(value) * SCALES[match["scale"]], decimals)
    if abs(float(shown) - expected) > 0.51 * 10 ** -decimals:
        return f"README says {match['value']}, the run gives {expected:,.{decimals}f} ({match['run']} {match['path']})"
    return None


def test_the_marker_reads_a_quoted_figure():
    found = markers("p99 23.4<!--fig recsys-on-asics inference.feed.latency_s.p99 ms--> ms and "
                    "1,590,640<!--fig a b.c--> queries")
    assert [(m["value"], m["run"], m["path"], m["scale"]) for m in found] == [
        ("23.4", "recsys-on-asics", "inference.feed.latency_s.p99", "ms"), ("1,590,640", "a", "b.c", None)]


def test_a_wrong_figure_is_caught():
    def lookup(run):
        return {"x": {"y": 0.0234}}

    ok, wrong, missing = markers("23.4<!--fig r x.y ms--> 23.9<!--fig r x.y ms--> 1<!--fig r x.z-->")
    assert disagreement(ok, lookup) is None
    assert "README says 23.9, the run gives 23.4" in disagreement(wrong, lookup)
    assert "has no field x.z" in disagreement(missing, lookup)


def test_every_ready_scenario_figure_is_marked():
    """The sections that quote ready scenarios carry markers (a figure without one is not checked)."""
    assert len(markers(README.read_text())) >= 20


@pytest.mark.parametrize("run", sorted({m["run"] for m in markers(README.read_text())}))
def test_readme_figures_agree_with_the_runs(run):
    problems = [p for m in markers(README.read_text()) if m["run"] == run and (p := disagreement(m))]
    assert not problems, "\n".join(problems)
