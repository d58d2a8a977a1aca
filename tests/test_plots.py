"""Plots a planner can put on a slide: only plots with data, units by magnitude, cap wording only with a cap,
calendar time axes, daily means with a band for long runs, day-dividing bins, the shared-pool plot, same bytes."""

from __future__ import annotations

import datetime as dt

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sim
from sim.results.plot_data import (
    DAY_S,
    drawn_bin_s,
    merge,
    plot_bin_s,
    power_by_type,
    power_unit,
    request_rates,
    stacked,
)
from sim.results.plots import figures, write_plots
from sim.results.results import Results
from tests.conftest import SCENARIOS, scenario_from
from tests.test_inference import with_service


def synthetic(days: float, interval_s: float = 3600.0, power_kw: float = 80.0, cap_kw: float | None = None,
              start: str = "2026-01-05", jobs: int = 10) -> Results:
    """A Results with made-up series: utilization and power follow the time of day."""
    horizon = days * DAY_S
    t = np.arange(0.0, horizon, interval_s)
    hour = (t % DAY_S) / 3600.0
    daily = 0.5 + 0.4 * np.sin(2 * np.pi * hour / 24)
    begin = dt.datetime.fromisoformat(start)
    timeseries = pd.DataFrame({
        "time_s": t, "datetime": [(begin + dt.timedelta(seconds=float(s))).isoformat() for s in t],
        "busy_chips.h100-sxm": 16 * daily, "utilization.h100-sxm": daily,
        "busy_chips.tpu-v6e": 8 * daily, "utilization.tpu-v6e": daily / 2,
        "queue_length": np.zeros(len(t)),
        "it_power_kw": power_kw * daily, "facility_power_kw": 1.2 * power_kw * daily})
    summary = {"horizon_s": horizon, "jobs": {"submitted": jobs, "completed": 0},
               "peak_facility_power_kw": 1.2 * power_kw * 0.9, "power_cap_kw": cap_kw, "pue": 1.2}
    return Results(summary=summary, jobs=pd.DataFrame(), timeseries=timeseries, manifest={"scenario": "synthetic"})


def texts(fig) -> str:
    """Every title, axis label and legend entry of a figure, in one string."""
    parts = []
    for ax in fig.axes:
        parts += [ax.get_title("left"), ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        parts += [t.get_text() for t in legend.get_texts()] if legend else []
    return "\n".join(parts)


def stairs(ax):
    from matplotlib.patches import StepPatch

    return [p for p in ax.patches if isinstance(p, StepPatch)]


@pytest.fixture(scope="module")
def inference_only(tmp_path_factory):
    data = with_service(duration="20min")
    data["workloads"].pop("training")
    return sim.run(scenario_from(data, tmp_path_factory.mktemp("inference")))


def test_inference_only_run_has_no_jct_or_queue_plot_and_old_ones_are_removed(inference_only, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "jct.png").write_bytes(b"left by an earlier run")
    inference_only.save(out)
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["latency.png", "power.png", "power_by_type.png", "served.png", "utilization.png"]  # H100 and v6e


def test_same_run_gives_the_same_png_bytes_with_no_version_inside(inference_only, tmp_path):
    first = write_plots(inference_only, _dir(tmp_path / "a"))
    second = write_plots(inference_only, _dir(tmp_path / "b"))
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second):
        data = a.read_bytes()
        assert data == b.read_bytes(), a.name
        assert b"Matplotlib" not in data and b"matplotlib" not in data, a.name


def _dir(path):
    path.mkdir()
    return path


def test_slide_size_and_fonts():
    fig = figures(synthetic(2))["utilization.png"]
    try:
        assert tuple(fig.get_size_inches()) == (10.0, 5.6) and fig.dpi == 150
        ax = fig.axes[0]
        assert ax.title.get_fontsize() >= 13 and ax.yaxis.label.get_fontsize() >= 12
        assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1  # beside the axes, not on data
    finally:
        plt.close("all")


@pytest.mark.parametrize("peak_kw, unit", [(0.5, "kW"), (999.0, "kW"), (1000.0, "MW"), (250_000.0, "MW")])
def test_power_unit_follows_the_peak(peak_kw, unit):
    assert power_unit(peak_kw)[0] == unit


def test_power_plot_in_mw_for_a_big_site_and_kw_for_a_small_one():
    big, small = figures(synthetic(2, power_kw=50_000.0)), figures(synthetic(2, power_kw=80.0))
    try:
        ax = big["power.png"].axes[0]
        assert ax.get_ylabel() == "power [MW]"
        assert max(p.get_data().values.max() for p in stairs(ax)) == pytest.approx(1.2 * 50 * 0.9, rel=0.01)
        assert small["power.png"].axes[0].get_ylabel() == "power [kW]"
    finally:
        plt.close("all")


def test_cap_wording_only_with_a_cap():
    without, with_cap = figures(synthetic(2)), figures(synthetic(2, cap_kw=100.0))
    try:
        assert "cap" not in texts(without["power.png"]).lower()
        assert not without["power.png"].axes[0].lines  # no cap line
        assert "100 kW site cap" in with_cap["power.png"].axes[0].get_title("left")
        assert "site cap" in texts(with_cap["power.png"])
    finally:
        plt.close("all")


def test_queue_axis_starts_at_zero_even_when_nothing_waits():
    fig = figures(synthetic(2))["queue.png"]
    try:
        low, high = fig.axes[0].get_ylim()
        assert low == 0 and high >= 1
    finally:
        plt.close("all")


@pytest.mark.parametrize("days, expected", [
    (1, ["Jan 05", "02:00", "04:00"]),  # hours for a day, the date at midnight
    (7, ["Jan 05", "Jan 06", "Jan 07"]),  # days for a week
    (365, ["2026", "Feb", "Mar"]),  # months for a year
])
def test_time_axis_shows_calendar_dates_suited_to_the_span(days, expected):
    fig = figures(synthetic(days, start="2026-01-05" if days < 365 else "2026-01-01"))["utilization.png"]
    try:
        ax = fig.axes[0]
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels[:3] == expected
        start = mdates.date2num(dt.datetime(2026, 1, 5 if days < 365 else 1))
        assert ax.get_xlim() == pytest.approx((start, start + days))
    finally:
        plt.close("all")


def test_long_runs_are_drawn_as_daily_means_with_a_min_max_band():
    results = synthetic(90)
    fig = figures(results)["utilization.png"]
    try:
        ax = fig.axes[0]
        h100 = stairs(ax)[0].get_data()
        assert len(h100.values) == 90  # one value a day, not 2,160 hourly ones
        hourly = results.timeseries["utilization.h100-sxm"].to_numpy().reshape(90, 24)
        assert h100.values == pytest.approx(hourly.mean(axis=1))
        assert len(ax.collections) == 2  # a band per accelerator type
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        assert band.min() == pytest.approx(hourly.min()) and band.max() == pytest.approx(hourly.max())
        assert "daily means" in ax.get_title("left") and "min to max of the\n1 h bins in each day" in texts(fig)
    finally:
        plt.close("all")


def test_short_runs_are_drawn_bin_by_bin():
    fig = figures(synthetic(7))["utilization.png"]
    try:
        assert len(stairs(fig.axes[0])[0].get_data().values) == 7 * 24 and not fig.axes[0].collections
    finally:
        plt.close("all")


def test_merge_is_the_exact_time_weighted_mean_with_the_overlapped_min_and_max():
    edges = np.array([0.0, 10.0, 25.0, 30.0, 40.0])
    values = np.array([1.0, 4.0, 2.0, 8.0])
    merged = merge(edges, values, np.array([0.0, 20.0, 40.0]))
    assert merged.mean == pytest.approx([(10 * 1 + 10 * 4) / 20, (5 * 4 + 5 * 2 + 10 * 8) / 20])
    assert list(merged.low) == [1.0, 2.0] and list(merged.high) == [4.0, 8.0]  # bin 10–25 straddles both


@pytest.mark.parametrize("span_s", [120.0, 1200.0, 6 * 3600.0, DAY_S, 7 * DAY_S, 30 * DAY_S, 60 * DAY_S,
                                    365 * DAY_S, 3 * 365 * DAY_S])
@pytest.mark.parametrize("finest_s", [0.0, 60.0, 300.0, 420.0])
def test_plot_bins_divide_a_day(span_s, finest_s):
    for max_bins in (300, 2000, 10_000):
        width = plot_bin_s(span_s, finest_s, max_bins)
        assert DAY_S % width == 0 and width >= min(finest_s, DAY_S)
        assert span_s / width <= max_bins or width == DAY_S
    for native in (60.0, 3600.0):
        drawn = drawn_bin_s(span_s, native)
        assert drawn is None or (DAY_S % drawn == 0 and drawn > native)


def test_served_rates_do_not_alias_the_daily_cycle():
    """A fluid service with a pure daily cycle: every day offers the same, so daily means are flat (bins that
    do not divide a day, like the 200 equal bins drawn before, beat against the cycle)."""
    days = 60
    edges = np.arange(0.0, days * DAY_S + 1, 60.0)
    rate = 100 + 80 * np.sin(2 * np.pi * edges[:-1] / DAY_S)
    offered, served = request_rates(None, {"chat": (edges, rate * 60, rate * 60)}, days * DAY_S)
    assert len(offered.mean) == days and offered.mean == pytest.approx(np.full(days, 100.0), rel=1e-6)
    assert offered.low.min() == pytest.approx(20.0, abs=1.0) and offered.high.max() == pytest.approx(180.0, abs=1.0)
    assert served.mean == pytest.approx(offered.mean)
    short, _ = request_rates(None, {"chat": (edges[:1441], rate[:1440] * 60, rate[:1440] * 60)}, DAY_S)
    assert DAY_S % short.bin_s == 0 and len(short.mean) <= 300 and not short.merged


def test_shared_pool_plot_stacks_inference_and_training_under_the_pool_size(tmp_path):
    scenario = sim.load(SCENARIOS / "shared-pool-day.yaml").with_overrides({"duration": "12h"})
    results = sim.run(scenario)
    ts = results.timeseries
    held, training = ts["inference_chips.gpu-h100"], ts["training_busy_chips.gpu-h100"]
    assert (held + training <= 64 + 1e-9).all() and training.max() > 0 and held.max() > 0
    out = results.save(tmp_path / "out")
    assert (out / "shared_pool.png").stat().st_size > 0
    fig = figures(results)["shared_pool.png"]
    try:
        ax = fig.axes[0]
        inference_area, together = stairs(ax)[:2]
        assert inference_area.get_data().values == pytest.approx(held.to_numpy())
        assert together.get_data().values == pytest.approx((held + training).to_numpy())
        assert "pool size\n(64 h100-sxm)" in texts(fig) and "chips of all\nreplicas (32)" in texts(fig)
    finally:
        plt.close("all")


def test_runs_without_a_shared_pool_have_no_shared_pool_plot(inference_only):
    assert "shared_pool.png" not in figures(inference_only)
    plt.close("all")


def with_pools(results: Results, throttled: bool = False) -> Results:
    """``synthetic`` with two pools of two types (IT power split 3:1) and, if asked, throttled chips under a cap."""
    ts = results.timeseries.copy()
    ts["it_power_kw.gpu"] = 0.75 * ts["it_power_kw"]
    ts["it_power_kw.tpu"] = ts["it_power_kw"] - ts["it_power_kw.gpu"]
    ts["it_power_kw.by_type.h100-sxm"] = ts["it_power_kw.gpu"]  # as runs write them: not counted again
    ts["it_power_kw.by_type.tpu-v6e"] = ts["it_power_kw.tpu"]
    summary = dict(results.summary)
    if throttled:
        ts["power_cap_kw"] = 90.0
        ts["throttled_chips.h100-sxm"] = np.where(ts["it_power_kw"] > 60, 4.0, 0.0)
        ts["throttled_chips.tpu-v6e"] = 0.0
        summary["power_capping"] = {"throttled_chip_hours": 12.0}
    return Results(summary=summary, jobs=results.jobs, timeseries=ts, manifest=results.manifest)


def test_power_by_type_sums_pools_of_a_type_and_adds_up_to_it_power():
    ts = with_pools(synthetic(days=2)).timeseries
    one = power_by_type(ts, {"gpu": "h100-sxm", "tpu": "h100-sxm"})
    assert list(one) == ["h100-sxm"] and one["h100-sxm"] == pytest.approx(ts["it_power_kw"].to_numpy())
    two = power_by_type(ts, {"gpu": "h100-sxm"})  # a pool without a type counts under its own name
    assert list(two) == ["h100-sxm", "tpu"]
    layers = stacked(two)
    assert layers["tpu"][1] == pytest.approx(ts["it_power_kw"].to_numpy())
    assert layers["tpu"][0] == pytest.approx(two["h100-sxm"])


def test_power_by_type_plot_stacks_types_and_overhead_against_the_cap():
    results = with_pools(synthetic(days=2, cap_kw=100.0))
    figs = figures(results)
    try:
        assert "power_by_type.png" in figs and "throttling.png" not in figs
        ax = figs["power_by_type.png"].axes[0]
        layers = [p.get_data() for p in stairs(ax) if p.get_fill()]
        assert len(layers) == 3  # two pools (no scenario: named by pool), then the facility overhead
        ts = results.timeseries
        assert layers[1].values == pytest.approx(ts["it_power_kw"].to_numpy())  # the IT layers add up to it_power_kw
        assert layers[2].values == pytest.approx(ts["facility_power_kw"].to_numpy())
        assert layers[1].baseline == pytest.approx(layers[0].values)
        assert "site cap" in texts(figs["power_by_type.png"]) and "100 kW site cap" in ax.get_title("left")
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_power_by_type_long_run_draws_daily_means_that_still_add_up():
    results = with_pools(synthetic(days=40))
    figs = figures(results)
    try:
        ax = figs["power_by_type.png"].axes[0]
        layers = [p.get_data() for p in stairs(ax) if p.get_fill()]
        assert len(layers[1].values) == 40 and "daily means" in ax.get_title("left")
        daily = results.timeseries["it_power_kw"].to_numpy().reshape(40, 24).mean(axis=1)
        assert layers[1].values == pytest.approx(daily)
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_throttling_plot_only_when_chips_were_throttled(tmp_path):
    throttled = with_pools(synthetic(days=2, cap_kw=90.0), throttled=True)
    figs = figures(throttled)
    try:
        ax = figs["throttling.png"].axes[0]
        layers = [p.get_data() for p in stairs(ax) if p.get_fill()]
        assert layers[-1].values == pytest.approx(throttled.timeseries["throttled_chips.h100-sxm"].to_numpy())
        assert "12 chip-hours" in ax.get_title("left") and "site cap (right)" in texts(figs["throttling.png"])
        right = figs["throttling.png"].axes[1]
        assert right.get_ylabel() == "power [kW]"
    finally:
        for fig in figs.values():
            plt.close(fig)
    calm = with_pools(synthetic(days=2, cap_kw=90.0), throttled=True)
    calm.timeseries["throttled_chips.h100-sxm"] = 0.0
    names = [p.name for p in write_plots(calm, _dir(tmp_path / "calm"))]
    assert "throttling.png" not in names and "power_by_type.png" in names
    names = [p.name for p in write_plots(synthetic(days=2), _dir(tmp_path / "one"))]  # no pool columns
    assert "power_by_type.png" not in names and "throttling.png" not in names


def test_pue_plot_has_outside_temperature_on_a_second_axis_only_with_weather():
    results = synthetic(days=3)
    hour = results.timeseries["time_s"].to_numpy() / 3600.0
    results.timeseries["pue"] = 1.15 + 0.05 * np.sin(2 * np.pi * hour / 24)
    results.summary["facility"] = {"climate": "greensboro", "pue_pinned": False}
    results.timeseries["outside_dry_bulb_c"] = 20 + 8 * np.sin(2 * np.pi * hour / 24)
    figs = figures(results)
    try:
        fig = figs["pue.png"]
        assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "outside dry-bulb [°C]"
        assert "outside dry-bulb (greensboro)" in texts(fig)
    finally:
        for f in figs.values():
            plt.close(f)
    figs = figures(Results(summary=results.summary, jobs=results.jobs, manifest=results.manifest,
                           timeseries=results.timeseries.drop(columns="outside_dry_bulb_c")))
    try:
        assert len(figs["pue.png"].axes) == 1
    finally:
        for f in figs.values():
            plt.close(f)


def test_report_embeds_every_plot_written(tmp_path):
    results = with_pools(synthetic(days=2, cap_kw=90.0), throttled=True)
    out = results.save(tmp_path / "run")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"power_by_type.png", "throttling.png"} <= set(pngs)
    html = (out / "report.html").read_text()
    for name in pngs:
        assert f'alt="{name}"' in html, name


def test_budgets_plot_only_with_budget_columns_against_one_with_the_actions_as_bars():
    plain = with_pools(synthetic(days=2))
    ts = plain.timeseries.copy()
    ts["rack_budget_util_max.gpu"] = np.where(ts["it_power_kw"] > 60, 1.0, 0.8)
    ts["row_budget_util_max.gpu"] = 0.9
    ts["row_budget_kw.gpu"] = 100.0
    capping = pd.DataFrame({"time_s": [3600.0, 3700.0, 7300.0, 7400.0],
                            "action": ["throttle", "throttle", "shed", "cap"],
                            "budget": ["rack:gpu:0", "site", "row:gpu:1", ""]})
    with_budgets = Results(summary=plain.summary, jobs=plain.jobs, timeseries=ts, manifest=plain.manifest,
                           capping=capping)
    figs = figures(plain)
    assert "budgets.png" not in figs
    for fig in figs.values():
        plt.close(fig)
    figs = figures(with_budgets)
    try:
        fig = figs["budgets.png"]
        top, bottom = fig.axes[:2]
        lines = [p.get_data().values for p in stairs(top)]
        assert len(lines) == 2 and lines[0].max() == 1.0 and lines[1] == pytest.approx([0.9] * len(ts))
        assert "busiest rack: gpu" in texts(fig) and "busiest row: gpu" in texts(fig) and "budget" in texts(fig)
        heights = [bar.get_height() for bar in bottom.patches if bar.get_height() > 0]
        assert heights == [1.0, 1.0]  # the rack's throttle in hour 1, the row's shed in hour 2; site and cap rows not
    finally:
        for fig in figs.values():
            plt.close(fig)
