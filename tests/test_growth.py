"""Demand growth (``growth:``): offered load grows as specified at both fidelities, for generated and traced
requests and for training arrivals; schedules are checked with located errors; same seed, same arrivals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import sim
from sim.scenario.growth import Growth
from sim.scenario.inference_schema import InferenceService, RequestGenerator
from sim.serving.fluid.traffic import fluid_edges, offered_load
from sim.serving.traffic import poisson_arrivals
from sim.workload.generator import generate_jobs
from sim.workload.growth import GrowthCurve
from sim.workload.requests import scale_requests
from tests.conftest import load_text

START = dt.date(2026, 1, 1)
DAY, YEAR = 86400.0, 365 * 86400.0


def _gen(**fields):
    return RequestGenerator(**{"rate_per_s": 0.002, "prompt_tokens": {"fixed": 100}, "output_tokens": {"fixed": 10},
                               **fields})


def _service(gen) -> InferenceService:
    return InferenceService(name="s", model="llama3-8b", replicas=[{"pool": "gpu", "count": 1}],
                            traffic={"generator": gen.model_dump(exclude_none=True)}, fidelity="fluid")


def _request_counts(gen, edges, seed=3):
    arrival = poisson_arrivals(gen, float(edges[-1]), np.random.default_rng(seed), START)
    return np.histogram(arrival, edges)[0].astype(float)


def _fluid_counts(gen, edges):
    return offered_load(_service(gen), edges, None, np.random.default_rng(0), START).arrivals


def test_compound_growth_quadruples_the_last_month_over_two_years_at_both_fidelities():
    gen = _gen(growth={"per_year": 1.0})
    edges = np.array([0.0, 30 * DAY, 2 * YEAR - 30 * DAY, 2 * YEAR])
    fluid = _fluid_counts(gen, edges)
    # exact: ∫ rate·2^(t/year) over each month
    exact = gen.rate_per_s * YEAR / np.log(2) * np.diff(2.0 ** (edges / YEAR))
    assert fluid == pytest.approx(exact, rel=1e-9)
    assert fluid[2] / fluid[0] == pytest.approx(4.0, rel=0.06)  # 2^(700/365) ≈ 3.78, nearly 4×
    request = _request_counts(gen, edges)
    assert np.all(np.abs(request - fluid) < 4.5 * np.sqrt(fluid))  # Poisson noise
    assert request[2] / request[0] == pytest.approx(fluid[2] / fluid[0], rel=0.08)
    steady = _request_counts(_gen(), edges)
    assert steady[2] / steady[0] == pytest.approx(1.0, rel=0.08)  # without growth: flat


def test_points_are_reproduced_per_bin_and_fluid_and_request_level_agree():
    gen = _gen(rate_per_s=0.5, growth={"points": {"2026-01-03": 1.0, "2026-01-08": 3.0, "2026-01-10": 0.5}})
    edges = fluid_edges(14 * DAY, DAY)
    fluid = _fluid_counts(gen, edges)
    days = np.arange(14)
    # multiplier: 1 until day 2, rising to 3 on day 7, down to 0.5 on day 9, flat after; linear inside each day
    knots_day, knots_m = [2, 7, 9], [1.0, 3.0, 0.5]
    mid = np.interp(days + 0.5, knots_day, knots_m)
    assert fluid == pytest.approx(0.5 * DAY * mid, rel=1e-9)
    request = _request_counts(gen, edges)
    assert np.all(np.abs(request - fluid) < 4.5 * np.sqrt(fluid))


@pytest.mark.parametrize("growth", [{"per_year": 3.0}, {"points": {"2026-01-01": 1.0, "2026-01-02": 2.5}}])
def test_diurnal_times_growth_is_integrated_exactly_per_bin(growth):
    gen = _gen(rate_per_s=2.0, diurnal={"amplitude_frac": 0.8, "peak_hour": 15}, growth=growth)
    edges = fluid_edges(3 * DAY, 3600.0)
    fluid = _fluid_counts(gen, edges)
    curve = GrowthCurve(Growth(**growth), START)
    fine = np.linspace(0.0, 3 * DAY, 3 * 24 * 600 + 1)  # 6 s steps: the trapezoid rule is near exact
    rate = 2.0 * curve.multiplier(fine) * (1 + 0.8 * np.cos(2 * np.pi * ((fine / 3600.0) % 24 - 15) / 24))
    cumulative = np.concatenate(([0.0], np.cumsum(np.diff(fine) * (rate[1:] + rate[:-1]) / 2)))
    assert fluid == pytest.approx(np.diff(np.interp(edges, fine, cumulative)), rel=1e-5)
    request = _request_counts(gen, edges)
    assert abs(request.sum() - fluid.sum()) < 4 * np.sqrt(fluid.sum())
    assert np.argmax(request[:24]) in range(13, 18)  # the diurnal peak survives the growth


def test_bursty_traffic_grows_at_both_fidelities():
    bursty = {"burst_factor": 4, "mean_burst_s": 60, "mean_calm_s": 600}
    gen = _gen(rate_per_s=1.0, bursty=bursty, growth={"per_year": 50.0})
    edges = np.array([0.0, 10 * DAY, 20 * DAY])
    growth = 51.0 ** (np.diff(edges)[0] / YEAR)  # ×1.24 from one 10-day bin to the next
    fluid = _fluid_counts(gen, edges)
    request = _request_counts(gen, edges)
    for counts in (fluid, request):
        assert counts[1] / counts[0] == pytest.approx(growth, rel=0.05)


def test_same_seed_same_arrivals_and_no_growth_leaves_draws_unchanged():
    gen = _gen(rate_per_s=0.1, growth={"per_year": 0.8})
    a = poisson_arrivals(gen, 30 * DAY, np.random.default_rng(5), START)
    b = poisson_arrivals(gen, 30 * DAY, np.random.default_rng(5), START)
    assert np.array_equal(a, b) and len(a) > 1000
    assert not np.array_equal(a, poisson_arrivals(gen, 30 * DAY, np.random.default_rng(6), START))


def test_training_arrivals_grow_by_inverting_the_cumulative_rate():
    base = dict(jobs=30_000, arrival_rate_per_hour=1.0, chips={1: 1.0}, models={"resnet50": 1.0},
                duration_s={"fixed": 3600})
    from sim.scenario.schema import JobGenerator

    steady = generate_jobs(JobGenerator(**base), seed=4)["arrival_s"].to_numpy()
    grown_spec = JobGenerator(**base, growth={"per_year": 1.0})
    grown = generate_jobs(grown_spec, seed=4)["arrival_s"].to_numpy()
    assert np.array_equal(grown, generate_jobs(grown_spec, seed=4)["arrival_s"].to_numpy())
    assert grown[0] == 0.0 and np.all(np.diff(grown) >= 0)
    # rate 1/h × 2^(t/year): E[jobs in the first year] = 8760 / ln 2, in the next half year × (2^1.5 − 2)
    first = 8760.0 / np.log(2)
    assert abs(np.sum(grown < YEAR) - first) < 4 * np.sqrt(first)
    second = first * (2 ** 1.5 - 2)
    assert abs(np.sum((grown >= YEAR) & (grown < 1.5 * YEAR)) - second) < 4 * np.sqrt(second)
    assert abs(np.sum(steady < YEAR) - 8760) < 4 * np.sqrt(8760)
    # points: the multiplier doubles the rate from the second day on
    doubled = generate_jobs(JobGenerator(**base, growth={"points": {"2026-01-02": 2.0}}), seed=4, start=START)
    assert abs(np.sum(doubled["arrival_s"].to_numpy() < 100 * DAY) - 2 * 2400) < 4 * np.sqrt(4800)


def test_traced_requests_grow_by_a_time_varying_scale():
    rng = np.random.default_rng(0)
    n = 20_000
    trace = pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 10 * DAY, n)), "prompt_tokens": np.full(n, 100),
                          "output_tokens": np.full(n, 10), "source_row": np.arange(1, n + 1)})
    curve = GrowthCurve(Growth(points={"2026-01-02": 1.0, "2026-01-11": 3.0}), START)
    grown = scale_requests(trace, 1.5, np.random.default_rng(2), curve, offset_s=DAY)
    again = scale_requests(trace, 1.5, np.random.default_rng(2), curve, offset_s=DAY)
    assert grown.equals(again) and grown["arrival_s"].is_monotonic_increasing
    per_day = np.bincount((grown["arrival_s"] // DAY).astype(int), minlength=10)
    expected = 1.5 * n / 10 * np.interp(np.arange(10) + 0.5, [0, 9], [1.0, 3.0])
    assert np.all(np.abs(per_day - expected) < 5 * np.sqrt(expected))
    assert set(grown["copy"]) == {0, 1, 2, 3, 4}  # ceil(1.5 × 3) copies superposed


GROWN = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 30d
fleet:
  - {name: gpu, accelerator: h100-sxm, count: 8}
workloads:
  inference:
    - name: chat
      model: llama3-8b
      fidelity: fluid
      replicas: [{pool: gpu, count: 1}]
      traffic:
        generator:
          rate_per_s: 0.5
          prompt_tokens: {fixed: 200}
          output_tokens: {fixed: 50}
          growth: GROWTH
"""


def test_a_grown_scenario_runs_at_both_fidelities_and_agrees(tmp_path):
    text = GROWN.replace("GROWTH", "{points: {2026-01-01: 1.0, 2026-01-04: 3.0}}").replace(
        "duration: 30d", "duration: 3d").replace("rate_per_s: 0.5", "rate_per_s: 0.05")
    fluid = sim.run(load_text(tmp_path, text)).summary["inference"]["chat"]
    request = sim.run(load_text(tmp_path, text.replace("fidelity: fluid", "fidelity: request"))
                      ).summary["inference"]["chat"]
    expected = 0.05 * 3 * DAY * 2.0  # mean multiplier 2 over the three days
    assert fluid["requests"]["offered"] == pytest.approx(expected, rel=1e-6)
    assert abs(request["requests"]["offered"] - expected) < 4 * np.sqrt(expected)


@pytest.mark.parametrize("growth, message", [
    ("{per_year: -1.5}", "inference[0].traffic.generator.growth.per_year: found -1.5"),
    ("{points: {2026-01-01: 1.0, 2026-02-01: 0}}", "multipliers above 0"),
    ("{points: {2026-02-01: 1.0, 2026-01-01: 2.0}}", "date 2026-01-01 comes before 2026-02-01"),
    ("{points: {2026-02-01: 1.0, '2026-02-01': 2.0}}", "points.2026-02-01: duplicate key"),
    ("{per_year: 0.5, points: {2026-02-01: 1.0}}", "give exactly one of per_year, points"),
    ("{points: {}}", "at least one"),
])
def test_bad_growth_schedules_give_located_errors(tmp_path, growth, message):
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, GROWN.replace("GROWTH", growth))
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 1 and ":18 workloads.inference[0].traffic.generator.growth" in problems[0], problems
    assert message in problems[0], problems


def test_growth_counts_in_the_request_level_size_check(tmp_path):
    text = GROWN.replace("GROWTH", "{per_year: 100}").replace("fidelity: fluid", "fidelity: request").replace(
        "duration: 30d", "duration: 5y").replace("rate_per_s: 0.5", "rate_per_s: 0.001")
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    assert "growth × " in str(info.value.problems[0])


def test_a_trace_grown_past_the_copies_that_fit_is_refused_before_running():
    from tests.conftest import SCENARIOS

    scenario = sim.load(SCENARIOS / "llm-serving-azure.yaml")  # scale 4
    with pytest.raises(sim.ScenarioError, match=r"traffic.trace.growth: found a peak multiplier of 5e\+03 over the "
                                                 r"trace: 4 × 5e\+03 = 2e\+04 superposed copies"):
        scenario.with_overrides({"workloads.inference.0.traffic.trace.growth": {"points": {"2020-01-01": 5000}}})
    grown = scenario.with_overrides({"workloads.inference.0.traffic.trace.growth": {"points": {"2020-01-01": 2}}})
    assert grown.workloads.inference[0].traffic.trace.growth.points == {dt.date(2020, 1, 1): 2.0}
