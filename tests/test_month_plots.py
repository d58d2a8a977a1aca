"""Capacity and SLO over calendar time: ``capacity.png`` stacks the online chips of the time series by
accelerator type (rented hatched, pool dates marked), fluid services get monthly SLO attainment and goodput
that add up to their summary figures, ``slo.png`` draws them, and both plots are left out of short runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sim
from sim.results.output_folder import DCSIM_FILES
from sim.results.plots import PLOT_NAMES, figures
from tests.conftest import SCENARIOS
from tests.test_plots import stairs

DAY = 86400.0


@pytest.fixture(scope="module")
def tpu():
    """Two years of tpu-adoption with few training jobs: a rented pool that comes and goes, an owned pool
    delivered in 2027, a fluid LLM service and a fluid ranking service with SLOs."""
    scenario = sim.load(SCENARIOS / "tpu-adoption.yaml").with_overrides({"workloads.training.generator.jobs": 2000})
    return sim.run(scenario)


@pytest.fixture(scope="module")
def fluid_quarter():
    """llm-fleet-year-fluid shortened to 90 days (January to March 2026), six fluid LLM services."""
    return sim.run(sim.load(SCENARIOS / "llm-fleet-year-fluid.yaml").with_overrides({"duration": "90d"}))


def _online_by_pool_dates(scenario, edges_s: np.ndarray, owner: str | None = None) -> dict[str, np.ndarray]:
    """Mean online chips per bin and accelerator type, straight from the scenario's pool dates."""
    out: dict[str, np.ndarray] = {}
    for pool in scenario.fleet:
        if owner is not None and pool.owner != owner:
            continue
        lo = (pool.online_from - scenario.start).days * DAY if pool.online_from else 0.0
        hi = (pool.online_until - scenario.start).days * DAY if pool.online_until else np.inf
        deliveries = list(pool.deliveries or ())
        steps = [(lo, pool.count - sum(d.chips for d in deliveries))]  # the starting chips, then each delivery
        steps += [((d.date - scenario.start).days * DAY, d.chips) for d in deliveries]
        for begin, chips in steps:
            inside = np.clip(np.minimum(edges_s[1:], hi) - np.maximum(edges_s[:-1], begin), 0.0, None)
            out[pool.accelerator_id] = out.get(pool.accelerator_id, 0.0) + chips * inside / np.diff(edges_s)
    return out


def test_time_series_online_chips_follow_the_pool_dates(tpu):
    ts = tpu.timeseries
    edges = np.append(ts["time_s"].to_numpy(), tpu.summary["horizon_s"])
    for accel, online in _online_by_pool_dates(tpu.scenario, edges).items():
        assert ts[f"online_chips.{accel}"].to_numpy() == pytest.approx(online, abs=1e-9)
    rented = _online_by_pool_dates(tpu.scenario, edges, owner="rented")
    assert [c for c in ts.columns if c.startswith("rented_chips.")] == ["rented_chips.tpu-v6e"]
    assert ts["rented_chips.tpu-v6e"].to_numpy() == pytest.approx(rented["tpu-v6e"], abs=1e-9)
    assert ts["rented_chips.tpu-v6e"].max() == 512 and ts["rented_chips.tpu-v6e"].iloc[-1] == 0


def test_capacity_plot_stacks_equal_the_online_chips_with_rented_hatched_and_pool_dates(tpu, tmp_path):
    out = tpu.save(tmp_path / "out")
    assert (out / "capacity.png").stat().st_size > 10_000
    fig = figures(tpu)["capacity.png"]
    try:
        ax = fig.axes[0]
        patches = {p.get_label(): p for p in stairs(ax)}
        assert sorted(patches) == ["h100-sxm", "mtia-v2", "tpu-v6e (rented)", "tpu-v7"]  # no owned TPU v6e
        days = np.arange(0.0, tpu.summary["horizon_s"] + 1.0, DAY)  # drawn as daily means
        expected = _online_by_pool_dates(tpu.scenario, days)
        bottom = np.zeros(len(days) - 1)
        for label in ("h100-sxm", "mtia-v2", "tpu-v6e (rented)", "tpu-v7"):
            data = patches[label].get_data()
            assert data.baseline == pytest.approx(bottom, abs=1e-9)
            accel = label.split(" ")[0]
            assert data.values - data.baseline == pytest.approx(expected[accel], abs=1e-6)
            bottom = data.values
        assert patches["tpu-v6e (rented)"].get_hatch() == "//"
        assert bottom.max() == 1024 + 768 + 512 + 512  # May and June 2027: rented TPUs and two TPU v7 deliveries
        marks = sorted(t.get_text().strip() for t in ax.texts)
        assert marks == ["+256 tpu-own", "+256 tpu-own", "+tpu-cloud", "+tpu-own",
                         "\u2212tpu-cloud, +256 tpu-own"]  # none for the first pools; one day apart: one line
    finally:
        plt.close("all")


def _offered_by_month(results, name: str) -> np.ndarray:
    """Requests offered per calendar month, summed from the fluid bins that start in it (bins divide a day)."""
    edges, offered, _ = results.fluid_load[name]
    month_edges = np.concatenate(([0.0], np.cumsum(results.monthly["days"].to_numpy() * DAY)))
    month = np.searchsorted(month_edges, edges[:-1], side="right") - 1
    return np.bincount(month, offered, minlength=len(results.monthly))


@pytest.mark.parametrize("which", ["fluid_quarter", "tpu"])
def test_monthly_fluid_slo_weighted_by_offered_requests_is_the_summary_attainment(which, request):
    results = request.getfixturevalue(which)
    monthly, horizon = results.monthly, results.summary["horizon_s"]
    seconds = monthly["days"].to_numpy() * DAY
    checked = 0
    for service in results.scenario.workloads.inference:
        summary = results.summary["inference"][service.name]
        if service.slo is None:
            assert f"slo_attainment.{service.name}" not in monthly.columns
            continue
        offered = _offered_by_month(results, service.name)
        attainment = monthly[f"slo_attainment.{service.name}"].to_numpy()
        assert ((attainment > 0) & (attainment <= 1 + 1e-12)).all()  # sums of floats
        assert (attainment * offered).sum() / offered.sum() == pytest.approx(summary["slo_attainment"], rel=1e-9)
        goodput = monthly[f"goodput_rps.{service.name}"].to_numpy()
        assert (goodput * seconds).sum() / horizon == pytest.approx(summary["goodput_rps"], rel=1e-9)
        assert attainment * offered == pytest.approx(goodput * seconds, rel=1e-9)
        checked += 1
    assert checked == (5 if which == "fluid_quarter" else 2)  # batch-summaries has no SLO


def test_slo_plot_draws_each_service_per_month_and_the_same_bytes_twice(fluid_quarter, tmp_path):
    first, second = fluid_quarter.save(tmp_path / "a"), fluid_quarter.save(tmp_path / "b")
    for name in ("slo.png", "capacity.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    fig = figures(fluid_quarter)["slo.png"]
    try:
        ax = fig.axes[0]
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["assistant", "chat-eu", "chat-us", "code", "search-answers"]
        for name, line in lines.items():
            assert line.get_ydata() == pytest.approx(100 * fluid_quarter.monthly[f"slo_attainment.{name}"])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-01", "2026-02", "2026-03"]
    finally:
        plt.close("all")


def test_short_runs_have_no_capacity_or_slo_plot_and_old_ones_are_removed(fluid_quarter, tmp_path):
    out = fluid_quarter.save(tmp_path / "out")
    assert (out / "slo.png").exists() and (out / "capacity.png").exists()
    short = sim.run(sim.load(SCENARIOS / "llm-fleet-year-fluid.yaml").with_overrides({"duration": "40d"}))
    assert len(short.monthly) == 2 and "slo_attainment.chat-us" in short.monthly.columns  # two months, < 60 days
    short.save(tmp_path / "out")
    assert not (out / "slo.png").exists() and not (out / "capacity.png").exists()
    assert {"slo.png", "capacity.png"} <= set(PLOT_NAMES) & set(DCSIM_FILES)
