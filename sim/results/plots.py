"""PNG plots of a run, sized for a slide, drawn from one ``Results`` object (matplotlib is imported only here).

* ``utilization.png`` — utilization per accelerator type over time
* ``queue.png`` — training jobs waiting to start (bin mean); only when the run has training jobs
* ``jct.png`` — CDF of job completion time per accelerator type (log time axis); only with completed jobs
* ``power.png`` — IT and facility power, against the site cap when there is one; in kW or MW by the peak
* ``power_by_type.png`` — IT power stacked by accelerator type, with the facility overhead (facility − IT) on top,
  against the site cap (bin by bin with a dated cap); only when the fleet has more than one accelerator type
  (with one, ``power.png`` says the same)
* ``throttling.png`` — chips below full clock stacked by accelerator type, with facility power and the cap on a
  second axis; only when a capping policy throttled chips (``throttled_chips.<type>`` columns not all zero)
* ``latency.png`` — latency CDF per service and accelerator type (request-level services)
* ``served.png`` — offered and served requests per second over time (every LLM and ranking service)
* ``shared_pool.png`` — per ``sharing: shared`` pool: chips held by inference replicas and chips busy with
  training, stacked, against the pool size
* ``cost.png`` — cost per calendar month, stacked by category (depreciation, maintenance, rental, energy);
  only for runs of at least ``COST_PLOT_MIN_S`` (60 days: a shorter run has one or two partial months)
* ``capacity.png`` — online chips over calendar time, stacked by accelerator type (rented chips hatched), with
  a dated tick for each pool that comes online or leaves during the run; same length rule as ``cost.png``
* ``budgets.png`` — with rack or row budgets (``fleet[].rack_budget_kw``, ``row_budget_kw``): per pool the busiest
  rack's and row's committed IT power ÷ budget over time against 1 (the budget), and the capping actions (throttle,
  shed) that named a rack or row budget per bin as bars
* ``failures.png`` — with a ``failures`` section: chips away for repair or in maintenance windows per pool
  (bin mean, ``repair_chips.<pool>``), and training jobs interrupted by cause, stacked bars
  (``interruptions.<cause>`` summed into at most ``FAILURE_BARS`` bins that divide a day)
* ``slo.png`` — SLO attainment per service and calendar month (``monthly.csv``); same length rule, and only
  when a service has monthly SLO figures (request-level services with an SLO)

Slides: 10 × 5.6 in at 150 dpi, 12 pt text, one colour per accelerator type in every plot, legends beside
the axes. Time axes show calendar dates from the scenario start. How bins are chosen for drawing (daily means
with a min–max band for long runs, bins that divide a day) is in ``sim.results.plot_data``. The same run gives
the same bytes: no date or software version is written into the PNG.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from sim.results.plot_data import (  # noqa: E402
    DAY_S,
    Series,
    duration_label,
    for_drawing,
    plot_bin_s,
    power_by_type,
    power_unit,
    request_rates,
    stacked,
)

STYLE = {
    "figure.figsize": (10.0, 5.6), "figure.dpi": 150, "savefig.dpi": 150,
    "font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 11,
    "xtick.labelsize": 11, "ytick.labelsize": 11, "lines.linewidth": 1.8,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False,
}
# accelerator types take these in sorted order; red, greys and black are kept for other series
ACCELERATOR_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
RED, DARK, GREY = "#d62728", "#222222", "#8c8c8c"
# interruption causes (``sim.results.failures``): component classes, rack-level network failures, windows
CAUSE_COLOURS = {"gpu": "#1f77b4", "memory": "#9467bd", "network": "#2ca02c", "host": "#8c564b",
                 "software": "#ff7f0e", "maintenance": "#8c8c8c", "network-rack": "#17becf",
                 "maintenance-window": "#222222"}
SERVICE_LINESTYLES = ("-", "--", ":", "-.")
PLOT_NAMES = ("utilization.png", "queue.png", "jct.png", "power.png", "power_by_type.png", "throttling.png",
              "latency.png", "served.png", "shared_pool.png", "cost.png", "capacity.png", "slo.png", "pue.png",
              "failures.png", "budgets.png")
COST_PLOT_MIN_S = 60 * 86400.0
FAILURE_BARS = 200  # at most this many bars of interruptions in failures.png
# the columns <category>_usd of monthly.csv
COST_CATEGORIES = ("depreciation", "write_off", "capex_cash_cost", "maintenance", "rental", "energy", "porting")
COST_COLOURS = {"depreciation": "#1f77b4", "write_off": "#8c564b", "capex_cash_cost": "#17becf",
                "maintenance": "#9467bd", "rental": "#ff7f0e", "energy": "#2ca02c", "porting": "#e377c2"}
# (step [s], locator) from fine to coarse; the first giving at most MAX_TICKS ticks over the run is used
MAX_TICKS = 13
TICK_STEPS = (
    *((s, lambda s=s: mdates.SecondLocator(bysecond=range(0, 60, s))) for s in (10, 30)),
    *((m * 60, lambda m=m: mdates.MinuteLocator(byminute=range(0, 60, m))) for m in (1, 2, 5, 10, 15, 30)),
    *((h * 3600, lambda h=h: mdates.HourLocator(byhour=range(0, 24, h))) for h in (1, 2, 3, 4, 6, 12)),
    *((d * DAY_S, lambda d=d: mdates.DayLocator(interval=d)) for d in (1, 2)),
    *((w * 7 * DAY_S, lambda w=w: mdates.WeekdayLocator(byweekday=mdates.MO, interval=w)) for w in (1, 2)),
    *((m * 30.4 * DAY_S, lambda m=m: mdates.MonthLocator(bymonth=range(1, 13, m))) for m in (1, 2, 3, 6)),
    *((y * 365.25 * DAY_S, lambda y=y: mdates.YearLocator(y)) for y in (1, 2, 5, 10)),
)


@dataclass(frozen=True)
class _Run:
    """What every plot of one run shares: its name, time axis and accelerator colours."""

    name: str
    start: float  # matplotlib date number of simulated time 0
    horizon_s: float
    edges_s: np.ndarray  # the time series' bin edges [s]
    colours: dict[str, str]

    @classmethod
    def of(cls, results) -> _Run:
        ts = results.timeseries
        horizon = float(results.summary["horizon_s"])
        accels = sorted(c.split(".", 1)[1] for c in ts.columns if c.startswith("utilization."))
        return cls(name=results.manifest.get("scenario", ""),
                   start=float(mdates.date2num(dt.datetime.fromisoformat(str(ts["datetime"].iloc[0])))),
                   horizon_s=horizon, edges_s=np.append(ts["time_s"].to_numpy(dtype=np.float64), horizon),
                   colours={a: ACCELERATOR_COLOURS[i % len(ACCELERATOR_COLOURS)] for i, a in enumerate(accels)})

    def colour(self, accelerator: str) -> str:
        return self.colours.get(accelerator, GREY)

    def series(self, values) -> Series:
        return for_drawing(self.edges_s, np.asarray(values, dtype=np.float64))


def write_plots(results, out: Path) -> list[Path]:
    """Write the run's plots into ``out``; a plot this run has nothing for is not written, and a file of
    that name left by an earlier run in ``out`` is removed (it would not match this run)."""
    out = Path(out)
    written = []
    with plt.rc_context(STYLE):
        for name, fig in _figures(results):
            fig.savefig(out / name, metadata={"Software": None})  # no version: the same run, the same bytes
            plt.close(fig)
            written.append(out / name)
    for name in sorted(set(PLOT_NAMES) - {p.name for p in written}):
        (out / name).unlink(missing_ok=True)
    return written


def figures(results) -> dict:
    """The run's plots as open figures, by file name (for inspection; close them with ``plt.close``)."""
    with plt.rc_context(STYLE):
        return dict(_figures(results))


def _figures(results):
    run = _Run.of(results)
    summary, ts = results.summary, results.timeseries
    yield "utilization.png", _utilization(run, ts)
    if summary["jobs"]["submitted"] > 0:
        yield "queue.png", _queue(run, ts)
    if summary["jobs"]["completed"] > 0:
        yield "jct.png", _jct(run, results.jobs)
    yield "power.png", _power(run, ts, summary)
    by_type = power_by_type(ts, _pool_types(results.scenario))
    if len(by_type) > 1:
        yield "power_by_type.png", _power_by_type(run, ts, summary, by_type)
    throttled = {c.split(".", 1)[1]: ts[c].to_numpy(dtype=np.float64) for c in ts.columns
                 if c.startswith("throttled_chips.")}
    if any(values.any() for values in throttled.values()):
        yield "throttling.png", _throttling(run, ts, summary, dict(sorted(throttled.items())))
    requests = results.requests
    has_requests = requests is not None and len(requests) > 0
    if has_requests:
        yield "latency.png", _latency(run, requests)
    if has_requests or results.fluid_load:
        yield "served.png", _served(run, requests if has_requests else None, results.fluid_load)
    if summary.get("shared_pools"):
        yield "shared_pool.png", _shared_pools(run, ts, summary["shared_pools"], results.scenario)
    monthly = getattr(results, "monthly", None)
    if monthly is not None and len(monthly) and run.horizon_s >= COST_PLOT_MIN_S:
        yield "cost.png", _cost(run, monthly)
    if run.horizon_s >= COST_PLOT_MIN_S and any(c.startswith("online_chips.") for c in ts.columns):
        yield "capacity.png", _capacity(run, ts, results.scenario, getattr(results, "procurement", None))
    if (monthly is not None and len(monthly) >= 2 and run.horizon_s >= COST_PLOT_MIN_S
            and any(c.startswith("slo_attainment.") for c in monthly.columns)):
        yield "slo.png", _slo(run, monthly)
    if "pue" in ts.columns:
        yield "pue.png", _pue(run, ts, summary)
    if "failures" in summary:
        yield "failures.png", _failures(run, ts, results.scenario)
    if any(c.startswith(("rack_budget_util_max.", "row_budget_util_max.")) for c in ts.columns):
        yield "budgets.png", _budgets(run, ts, results.scenario, getattr(results, "capping", None))


def _budgets(run: _Run, ts, scenario, capping):
    """Per pool with budgets, the busiest rack's (solid) and row's (dashed) committed IT power ÷ budget, the bin's
    maximum (``rack_budget_util_max.<pool>``, ``row_budget_util_max.<pool>``), in the pool's accelerator colour
    against 1 (upper axes); the ``throttle`` and ``shed`` rows of ``capping.csv`` that named a rack or row budget,
    per bin, stacked bars (lower axes; at most ``FAILURE_BARS`` bars over the run)."""
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, layout="constrained", height_ratios=(3, 2))
    top.set_ylabel("committed ÷ budget\n(busiest, bin max)")
    accelerator = _pool_types(scenario)
    lines = []
    for kind, style in (("rack", "-"), ("row", "--")):
        for column in (c for c in ts.columns if c.startswith(f"{kind}_budget_util_max.")):
            pool = column.split(".", 1)[1]
            lines.append(_draw(top, run, run.series(ts[column]), run.colour(accelerator.get(pool, "")),
                               f"busiest {kind}: {pool}"))
            top.patches[-1].set_linestyle(style)
    top.axhline(1.0, color=RED, linestyle=":", label="budget", zorder=0.5)  # under a pool held at its budget
    top.set_ylim(0, max([1.1] + [line.top() * 1.05 for line in lines]))
    edges = run.edges_s
    width = plot_bin_s(float(edges[-1] - edges[0]), float(edges[1] - edges[0]), FAILURE_BARS) if len(edges) > 1 else 0
    drawn = edges if width <= edges[1] - edges[0] else np.append(np.arange(edges[0], edges[-1], width), edges[-1])
    label = duration_label(float(drawn[1] - drawn[0])) if len(drawn) > 1 else "bin"
    bottom.set_ylabel(f"actions per {label}")
    stacked = np.zeros(len(drawn) - 1)
    if capping is not None and len(capping):
        level = capping["budget"].astype(str).str.split(":").str[0]
        for action, colour in (("throttle", "#ff7f0e"), ("shed", RED)):
            times = capping.loc[(capping["action"] == action) & level.isin(("rack", "row")), "time_s"]
            counts = np.histogram(times.to_numpy(dtype=np.float64), drawn)[0].astype(np.float64)
            if not counts.any():
                continue
            bottom.bar(run.start + drawn[:-1] / DAY_S, counts, width=np.diff(drawn) / DAY_S, bottom=stacked,
                       align="edge", color=colour, label=action, linewidth=0)
            stacked += counts
    bottom.set_ylim(0, max(1.0, float(stacked.max(initial=0.0)) * 1.08))
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not stacked.any():
        bottom.text(0.5, 0.5, "no rack or row budget throttled or shed", transform=bottom.transAxes, ha="center",
                    color=GREY)
    _time_axis(bottom, run)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="for a rack or row")
    return _finish(fig, top, run, "busiest rack and row against their budgets", lines)


def _failures(run: _Run, ts, scenario):
    """Chips away for repair or maintenance per pool (upper axes; the pool's accelerator colour, a line style per
    pool of the same type) and interruptions per bin by cause, stacked bars (lower axes)."""
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, layout="constrained", height_ratios=(3, 2))
    top.set_ylabel("chips away (bin mean)")
    accelerator = {pool.name: pool.accelerator_id for pool in scenario.fleet} if scenario is not None else {}
    bands, seen = [], {}
    for column in (c for c in ts.columns if c.startswith("repair_chips.")):
        pool = column.split(".", 1)[1]
        accel = accelerator.get(pool, "")
        bands.append(_draw(top, run, run.series(ts[column]), run.colour(accel), pool))
        top.patches[-1].set_linestyle(SERVICE_LINESTYLES[seen.get(accel, 0) % len(SERVICE_LINESTYLES)])
        seen[accel] = seen.get(accel, 0) + 1
    top.set_ylim(0, max([1.0] + [band.top() * 1.08 for band in bands]))
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    edges = run.edges_s  # bars at most FAILURE_BARS over the run, in bins that divide a day
    width = plot_bin_s(float(edges[-1] - edges[0]), float(edges[1] - edges[0]), FAILURE_BARS) if len(edges) > 1 else 0
    drawn = edges if width <= edges[1] - edges[0] else np.append(np.arange(edges[0], edges[-1], width), edges[-1])
    label = duration_label(float(drawn[1] - drawn[0])) if len(drawn) > 1 else "bin"
    bottom.set_ylabel(f"interruptions per {label}")
    stacked = np.zeros(len(drawn) - 1)
    for column in (c for c in ts.columns if c.startswith("interruptions.")):
        cumulative = np.concatenate(([0.0], np.cumsum(ts[column].to_numpy(dtype=np.float64))))
        counts = np.diff(np.interp(drawn, edges, cumulative))
        if not counts.any():
            continue
        cause = column.split(".", 1)[1]
        bottom.bar(run.start + drawn[:-1] / DAY_S, counts, width=np.diff(drawn) / DAY_S, bottom=stacked,
                   align="edge", color=CAUSE_COLOURS.get(cause, GREY), label=cause, linewidth=0)
        stacked += counts
    bottom.set_ylim(0, max(1.0, float(stacked.max(initial=0.0)) * 1.08))
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not stacked.any():
        bottom.text(0.5, 0.5, "no training job interrupted", transform=bottom.transAxes, ha="center", color=GREY)
    _time_axis(bottom, run)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="cause")
    return _finish(fig, top, run, "chips away for repair and maintenance, interruptions", bands)


def _utilization(run: _Run, ts):
    fig, ax = _new("busy chips ÷ online chips")
    bands = []
    for accel, colour in run.colours.items():
        bands.append(_draw(ax, run, run.series(ts[f"utilization.{accel}"]), colour, accel))
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return _finish(fig, ax, run, "utilization by accelerator type", bands)


def _queue(run: _Run, ts):
    fig, ax = _new("jobs waiting (bin mean)")
    series = run.series(ts["queue_length"])
    band = _draw(ax, run, series, RED, None)  # one line: no legend entry
    ax.set_ylim(0, max(1.0, series.top() * 1.08))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(fig, ax, run, "training jobs waiting to start", [band])


def _power(run: _Run, ts, summary: dict):
    cap_kw, peak_kw = summary.get("power_cap_kw"), summary["peak_facility_power_kw"]
    unit, factor = power_unit(max(peak_kw, cap_kw or 0.0))
    what = f"power against the {_power_text(cap_kw * factor, unit)} site cap" if cap_kw else "IT and facility power"
    fig, ax = _new(f"power [{unit}]")
    it = run.series(ts["it_power_kw"].to_numpy() * factor)
    facility = run.series(ts["facility_power_kw"].to_numpy() * factor)
    bands = [_draw(ax, run, it, GREY, "IT"),
             _draw(ax, run, facility, DARK, f"facility (IT × PUE {_pue_text(summary)})\n"
                                             f"exact peak {_power_text(peak_kw * factor, unit)}")]
    top = facility.top()
    if "power_cap_kw" in ts.columns:  # a dated cap (or a capping policy): the cap bin by bin
        cap = run.series(ts["power_cap_kw"].to_numpy() * factor)
        ax.stairs(cap.mean, run.start + cap.edges_s / 86400.0, baseline=None,
                  color=RED, linestyle="--", label="site cap")
        top = max(top, float(cap.top()))
    elif cap_kw:
        ax.axhline(cap_kw * factor, color=RED, linestyle="--", label="site cap")
        top = max(top, cap_kw * factor)
    ax.set_ylim(0, top * 1.08 or 1.0)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    return _finish(fig, ax, run, what, bands)


def _pool_types(scenario) -> dict[str, str]:
    """Pool name -> accelerator id from the scenario (empty without one)."""
    return {p.name: p.accelerator_id for p in scenario.fleet} if scenario is not None else {}


def _cap_line(ax, run: _Run, ts, summary: dict, factor: float) -> float:
    """The site cap as a dashed red line (bin by bin with a dated cap); return its highest value drawn (0: none)."""
    if "power_cap_kw" in ts.columns:
        cap = run.series(ts["power_cap_kw"].to_numpy() * factor)
        ax.stairs(cap.mean, run.start + cap.edges_s / DAY_S, baseline=None, color=RED, linestyle="--",
                  label="site cap")
        return float(cap.top())
    if summary.get("power_cap_kw"):
        ax.axhline(summary["power_cap_kw"] * factor, color=RED, linestyle="--", label="site cap")
        return summary["power_cap_kw"] * factor
    return 0.0


def _power_by_type(run: _Run, ts, summary: dict, by_type: dict[str, np.ndarray]):
    """IT power stacked by accelerator type (``plot_data.power_by_type``), the facility overhead on top, the
    facility power as a line (with its band on long runs) and the site cap."""
    cap_kw = summary.get("power_cap_kw")
    unit, factor = power_unit(max(summary["peak_facility_power_kw"], cap_kw or 0.0))
    fig, ax = _new(f"power [{unit}]")
    facility_kw = ts["facility_power_kw"].to_numpy(dtype=np.float64)
    layers = {accel: values * factor for accel, values in by_type.items()}
    overhead = facility_kw - ts["it_power_kw"].to_numpy(dtype=np.float64)
    layers["facility overhead\n(cooling, losses)"] = overhead * factor
    for name, (bottom, top) in stacked(layers).items():
        low, high = run.series(bottom), run.series(top)
        colour = run.colour(name) if name in by_type else GREY
        ax.stairs(high.mean, run.start + high.edges_s / DAY_S, baseline=low.mean, fill=True, color=colour,
                  alpha=0.6 if name in by_type else 0.3, label=f"IT: {name}" if name in by_type else name, linewidth=0)
    facility = _draw(ax, run, run.series(facility_kw * factor), DARK, "facility power", linewidth=1.0)
    top = max(facility.top(), _cap_line(ax, run, ts, summary, factor))
    ax.set_ylim(0, top * 1.08 or 1.0)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    what = "IT power by accelerator type" + (f" against the {_power_text(cap_kw * factor, unit)} site cap"
                                             if cap_kw else "")
    return _finish(fig, ax, run, what, [facility])


def _throttling(run: _Run, ts, summary: dict, throttled: dict[str, np.ndarray]):
    """Chips below full clock stacked by accelerator type; facility power and the cap on the right axis."""
    fig, ax = _new("chips below full clock (bin mean)")
    drawn = []
    for accel, (bottom, top) in stacked(throttled).items():
        low, high = run.series(bottom), run.series(top)
        drawn.append(high)
        ax.stairs(high.mean, run.start + high.edges_s / DAY_S, baseline=low.mean, fill=True, color=run.colour(accel),
                  alpha=0.6, label=f"throttled {accel}", linewidth=0)
    ax.set_ylim(0, max(1.0, max(s.mean.max(initial=0.0) for s in drawn) * 1.08))
    cap_kw = summary.get("power_cap_kw")
    unit, factor = power_unit(max(summary["peak_facility_power_kw"], cap_kw or 0.0))
    right = ax.twinx()
    right.set_ylabel(f"power [{unit}]")
    right.grid(False)
    facility = _draw(right, run, run.series(ts["facility_power_kw"].to_numpy() * factor), DARK, None, linewidth=1.0)
    top = max(facility.top(), _cap_line(right, run, ts, summary, factor))
    right.set_ylim(0, top * 1.08 or 1.0)
    ax.plot([], [], color=DARK, linewidth=1.0, label="facility power (right)")
    ax.plot([], [], color=RED, linestyle="--", label="site cap (right)")
    hours = (summary.get("power_capping") or {}).get("throttled_chip_hours")
    what = "throttled chips" + (f", {hours:,.0f} chip-hours below full clock" if hours is not None else "")
    return _finish(fig, ax, run, what, [facility])


def _pue(run: _Run, ts, summary: dict):
    """PUE (left axis) and outside dry-bulb temperature (right axis) over the run (``sim.facility``)."""
    fig, ax = _new("PUE (facility ÷ IT power)")
    facility = summary.get("facility", {})
    label = f"PUE, run mean {summary['pue']:.3f}" + (" (pinned)" if facility.get("pue_pinned") else "")
    bands = [_draw(ax, run, run.series(ts["pue"]), DARK, label)]
    if "outside_dry_bulb_c" in ts.columns:
        right = ax.twinx()
        right.set_ylabel("outside dry-bulb [°C]")
        right.grid(False)
        _draw(right, run, run.series(ts["outside_dry_bulb_c"]), RED, None, linewidth=0.8)
        ax.plot([], [], color=RED, label=f"outside dry-bulb ({facility.get('climate') or 'site weather'})")
    return _finish(fig, ax, run, "PUE and outside temperature", bands)


def _pue_text(summary: dict) -> str:
    """``1.2`` (pinned), or ``per hour, mean 1.172`` when the cooling model sets it."""
    facility = summary.get("facility")
    if facility is None or facility.get("pue_pinned") or facility.get("climate") is None:
        return f"{summary['pue']:g}"
    return f"per hour, mean {summary['pue']:.3f}"


def _log_axis(ax) -> None:
    """A log x axis labelled 0.01, 0.1, 1, 10 rather than powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _power_text(value: float, unit: str) -> str:
    return f"{value:,.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def _jct(run: _Run, jobs):
    fig, ax = _new("share of completed jobs")
    done = jobs[jobs["state"] == "completed"]
    for accel, group in done.groupby("accelerator"):
        hours = np.sort((group["end_s"] - group["arrival_s"]).to_numpy()) / 3600.0
        fraction = np.arange(1, len(hours) + 1) / len(hours)
        ax.step(np.maximum(hours, 1e-3), fraction, where="post", color=run.colour(accel),
                label=f"{accel} ({len(hours):,} jobs)")
    _log_axis(ax)
    ax.set_xlabel("job completion time [h], log scale")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return _finish(fig, ax, run, "job completion time (arrival to end) by accelerator type", [], time_axis=False)


def _latency(run: _Run, requests):
    fig, ax = _new("share of completed requests")
    done = requests[requests["state"] == "completed"]
    services = sorted(done["service"].unique())
    styles = {s: SERVICE_LINESTYLES[i % len(SERVICE_LINESTYLES)] for i, s in enumerate(services)}
    for (service, accel), group in done.groupby(["service", "accelerator"]):
        # ranking rows have no first token: their latency is arrival to finish
        latency = np.sort((group["first_token_s"].fillna(group["finish_s"]) - group["arrival_s"]).to_numpy())
        shown = np.unique(np.linspace(0, len(latency) - 1, min(len(latency), 4000)).astype(int))  # enough for a CDF
        ax.step(np.maximum(latency[shown], 1e-4), (shown + 1) / len(latency), where="post", color=run.colour(accel),
                linestyle=styles[service], label=f"{service} on {accel} ({len(latency):,})")
    _log_axis(ax)
    ax.set_xlabel("time to first token (LLM) or to scores (ranking) [s], log scale")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return _finish(fig, ax, run, "request latency by service and accelerator type", [], time_axis=False)


def _served(run: _Run, requests, fluid_load: dict):
    offered, served = request_rates(requests, fluid_load, run.horizon_s)
    what = "offered and served requests, all services" + ("" if offered.merged else
                                                          f" (per {duration_label(offered.bin_s)})")
    fig, ax = _new("requests per second")
    bands = [_draw(ax, run, offered, GREY, "offered (arrivals)", linewidth=3.5),
             _draw(ax, run, served, DARK, "served (completions)", linewidth=1.4)]
    ax.set_ylim(0, max(offered.top(), served.top()) * 1.08 or 1.0)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    return _finish(fig, ax, run, what, bands)


def _shared_pools(run: _Run, ts, shared: dict, scenario):
    """Per shared pool, stacked: chips held by active inference replicas, then chips busy with training;
    lines: the pool's chips and the chips of all its replicas (what inference takes back at its peak)."""
    names = [n for n in sorted(shared) if f"training_busy_chips.{n}" in ts and f"inference_chips.{n}" in ts]
    fig, axes = plt.subplots(len(names), 1, layout="constrained", squeeze=False, sharex=True,
                             figsize=(10.0, 1.2 + 4.4 * len(names)))
    for name, ax in zip(names, axes[:, 0]):
        _shared_pool(ax, run, ts, name, scenario)
    pools = f"shared pool {names[0]}" if len(names) == 1 else "shared pools"
    axes[0, 0].set_title(f"{run.name}: chips of the {pools}, held by inference or busy with training", loc="left")
    for ax in axes[:, 0]:
        _time_axis(ax, run)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _shared_pool(ax, run: _Run, ts, name: str, scenario) -> None:
    inference = run.series(ts[f"inference_chips.{name}"])
    together = run.series(ts[f"inference_chips.{name}"] + ts[f"training_busy_chips.{name}"])
    x = run.start + inference.edges_s / DAY_S
    pool = next((p for p in scenario.fleet if p.name == name), None) if scenario is not None else None
    accel = pool.accelerator_id if pool is not None else ""
    ax.stairs(inference.mean, x, baseline=0.0, fill=True, color=RED, alpha=0.7, label="held by inference replicas")
    ax.stairs(together.mean, x, baseline=inference.mean, fill=True, color=run.colour(accel), alpha=0.55,
              label="busy with training")
    top = together.mean.max(initial=1.0)
    if pool is not None:
        online_s = (pool.online_from - scenario.start).days * DAY_S if pool.online_from else 0.0
        until_s = (pool.online_until - scenario.start).days * DAY_S if pool.online_until else np.inf
        bins = inference.edges_s[:-1]
        delivered = sum(d.chips for d in pool.deliveries)  # later deliveries join the pool at their dates
        size = np.where((bins >= online_s) & (bins < until_s), float(pool.count - delivered), 0.0)
        for d in pool.deliveries:
            size += np.where((bins >= (d.date - scenario.start).days * DAY_S) & (bins < until_s), float(d.chips), 0.0)
        for r in pool.retirements:  # retirements leave it at their dates
            size -= np.where((bins >= (r.date - scenario.start).days * DAY_S) & (bins < until_s), float(r.chips), 0.0)
        ax.stairs(size, x, baseline=None, color=DARK, label=f"pool size\n({pool.count} {accel})")
        replicas = _replica_chips(scenario, name)
        ax.axhline(replicas, color=DARK, linestyle="--", linewidth=1.2, label=f"chips of all\nreplicas ({replicas})")
        top = max(top, pool.count)
    ax.set_ylim(0, top * 1.08)
    ax.set_ylabel(f"{name}: chips" + (" (daily mean)" if inference.merged else " (bin mean)"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _replica_chips(scenario, pool: str) -> int:
    return sum(group.count * group.chips_per_replica
               for service in scenario.workloads.inference for group in service.replicas if group.pool == pool)


def _cost(run: _Run, monthly):
    """Stacked bars of cost per calendar month by category (partial months at the ends are labelled with
    their days in the run), in USD, thousands or millions by the largest month."""
    total = monthly["total_cost_usd"].to_numpy(dtype=np.float64)
    scale, unit = ((1e6, "M USD") if total.max(initial=0.0) >= 1e6 else (1e3, "k USD") if total.max(initial=0.0)
                   >= 1e3 else (1.0, "USD"))
    fig, ax = _new(f"cost per month [{unit}]")
    x = np.arange(len(monthly))
    bottom = np.zeros(len(monthly))
    for category in COST_CATEGORIES:
        values = monthly[f"{category}_usd"].to_numpy(dtype=np.float64) / scale
        if values.any():
            ax.bar(x, values, bottom=bottom, color=COST_COLOURS[category], label=category, width=0.8)
            bottom += values
    _month_ticks(ax, monthly)
    return _finish(fig, ax, run, "cost per month by category", [], time_axis=False)


def _capacity(run: _Run, ts, scenario, procurement=None):
    """Online chips per bin (the time series' ``online_chips.<type>``, drawn as daily means for long runs),
    stacked by accelerator type in sorted order; each type's rented chips (``rented_chips.<type>``) are the
    hatched top of its band. A dotted vertical line with the pool's name marks each date a pool comes online
    (``+``), takes a delivery (``+chips``), retires chips (``−chips``) or leaves (``−``) inside the run (from the
    scenario's ``online_from``, ``deliveries``, ``retirements`` and ``online_until``), and the first delivery of
    each order with the chips it delivered within the run (``procurement.csv``)."""
    fig, ax = _new("online chips")
    accels = sorted(c.split(".", 1)[1] for c in ts.columns if c.startswith("online_chips."))
    bottom, drawn = None, []
    for accel in accels:
        online = run.series(ts[f"online_chips.{accel}"])
        rented_col = f"rented_chips.{accel}"
        rented = run.series(ts[rented_col]).mean if rented_col in ts.columns else np.zeros_like(online.mean)
        x = run.start + online.edges_s / DAY_S
        base = np.zeros_like(online.mean) if bottom is None else bottom
        owned_top = base + online.mean - rented
        if (online.mean - rented).any():
            ax.stairs(owned_top, x, baseline=base, fill=True, color=run.colour(accel), alpha=0.75, label=accel)
        if rented.any():
            ax.stairs(base + online.mean, x, baseline=owned_top, fill=True, facecolor="white",
                      edgecolor=run.colour(accel), hatch="//", linewidth=0, label=f"{accel} (rented)")
        bottom = base + online.mean
        drawn.append(online)
    top = float(bottom.max(initial=1.0)) if bottom is not None else 1.0
    ax.set_ylim(0, top * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for when_s, text in _pool_changes(scenario, run.horizon_s, procurement):
        at = run.start + when_s / DAY_S
        ax.axvline(at, color=DARK, linestyle=":", linewidth=1.2)
        ax.text(at, top * 1.13, f" {text}", rotation=90, va="top", ha="right", fontsize=10, color=DARK)
    # the stacks are exact bin means; no min-max band is drawn (capacity is a step function of dates)
    return _finish(fig, ax, run, "online chips by accelerator type" + (", daily means" if drawn and drawn[0].merged
                                                                        else ""), [])


def _pool_changes(scenario, horizon_s: float, procurement=None) -> list[tuple[float, str]]:
    """(time [s], '+pool', '+chips pool', '−chips pool' or '−pool') of every pool coming online, taking a delivery,
    retiring chips or leaving strictly inside the run; an order's chips delivered in the run at its first delivery
    (``procurement``, the rows of ``procurement.csv``)."""
    if scenario is None:
        return []
    changes = []
    for order in (procurement.itertuples() if procurement is not None else ()):
        if order.chips_delivered:
            at = (dt.date.fromisoformat(order.first_delivery) - scenario.start).days * DAY_S
            changes.append((at, f"+{order.chips_delivered:,} {order.pool} (order)"))
    for pool in scenario.fleet:
        dated = [(pool.online_from, f"+{pool.name}"), (pool.online_until, f"\u2212{pool.name}")]
        dated += [(d.date, f"+{d.chips:,} {pool.name}") for d in pool.deliveries or ()]  # deliveries joining it
        dated += [(r.date, f"\u2212{r.chips:,} {pool.name}") for r in pool.retirements or ()]  # chips retiring
        for date, text in dated:
            if date is not None and 0.0 < (at := (date - scenario.start).days * DAY_S) < horizon_s:
                changes.append((at, text))
    merged: list[tuple[float, str]] = []  # changes within 1 % of the run share one line, or their labels overlap
    for at, text in sorted(changes):
        if merged and at - merged[-1][0] <= 0.01 * horizon_s:
            merged[-1] = (merged[-1][0], f"{merged[-1][1]}, {text}")
        else:
            merged.append((at, text))
    return merged


def _slo(run: _Run, monthly):
    """SLO attainment [%] per service and calendar month (``slo_attainment.<service>`` of ``monthly.csv``),
    one line with markers per service; a month with no offered requests is a gap. The axis runs from a
    little below the lowest month to 100 % (not from 0: attainments near 100 % would look alike)."""
    fig, ax = _new("SLO attainment [%]")
    x = np.arange(len(monthly))
    services = sorted(c.split(".", 1)[1] for c in monthly.columns if c.startswith("slo_attainment."))
    for i, name in enumerate(services):
        values = 100.0 * monthly[f"slo_attainment.{name}"].to_numpy(dtype=np.float64)
        ax.plot(x, values, marker="o", linestyle=SERVICE_LINESTYLES[i % len(SERVICE_LINESTYLES)],
                color=ACCELERATOR_COLOURS[i % len(ACCELERATOR_COLOURS)], label=name)
    lowest = 100.0 * float(np.nanmin(monthly[[f"slo_attainment.{s}" for s in services]].to_numpy(dtype=np.float64),
                                     initial=1.0))
    ax.set_ylim(max(0.0, 100.0 - 1.25 * (100.0 - lowest) - 0.5), 100.0 + 0.05 * (100.0 - lowest) + 0.1)
    ax.yaxis.set_major_formatter(PercentFormatter(100.0))
    _month_ticks(ax, monthly)
    return _finish(fig, ax, run, "SLO attainment per month", [], time_axis=False)


def _month_ticks(ax, monthly) -> None:
    """Month labels on a bar/point axis (a partial month says its days in the run)."""
    x = np.arange(len(monthly))
    days = monthly["days"].to_numpy(dtype=np.float64)
    full = [_month_days(m) for m in monthly["month"]]
    labels = [m if abs(d - f) < 1e-9 else f"{m}\n({d:g} d)" for m, d, f in zip(monthly["month"], days, full)]
    ax.set_xticks(x, labels, rotation=0 if len(x) <= 6 else 45, ha="center" if len(x) <= 6 else "right")
    ax.grid(axis="x", visible=False)


def _month_days(label: str) -> float:
    year, month = (int(part) for part in label.split("-"))
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return float((following - dt.date(year, month, 1)).days)


def _new(ylabel: str):
    fig, ax = plt.subplots(layout="constrained")
    ax.set_ylabel(ylabel)
    return fig, ax


def _draw(ax, run: _Run, series: Series, colour: str, label: str | None, linewidth: float | None = None) -> Series:
    """A step line of the bin means, and the band from min to max when bins were merged for drawing."""
    x = run.start + series.edges_s / DAY_S
    ax.stairs(series.mean, x, baseline=None, color=colour, label=label, linewidth=linewidth)
    if series.merged:
        ax.fill_between(x, np.append(series.low, series.low[-1]), np.append(series.high, series.high[-1]),
                        step="post", color=colour, alpha=0.2, linewidth=0)
    return series


def _finish(fig, ax, run: _Run, what: str, drawn: list[Series], time_axis: bool = True):
    """The title '<scenario>: <what>' (saying when bins were merged for drawing), the time axis, a note on the
    band, and the legend beside the axes."""
    merged = [s for s in drawn if s.merged]
    if merged:
        width = merged[0].bin_s
        what += ", daily means" if width == DAY_S else f", means per {duration_label(width)}"
    ax.set_title(f"{run.name}: {what}", loc="left")
    if time_axis:
        _time_axis(ax, run)
    handles, labels = ax.get_legend_handles_labels()
    if merged:
        handles.append(Patch(color=GREY, alpha=0.3, linewidth=0))
        width = merged[0].bin_s
        labels.append(f"shaded: min to max of the\n{duration_label(merged[0].source_bin_s)} bins in each "
                      + ("day" if width == DAY_S else f"{duration_label(width)}"))
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _time_axis(ax, run: _Run) -> None:
    """Calendar dates over the run: ticks of minutes, hours, days, weeks or months by the run's length."""
    ax.set_xlim(run.start, run.start + run.horizon_s / DAY_S)
    step = next((make for seconds, make in TICK_STEPS if run.horizon_s / seconds <= MAX_TICKS), TICK_STEPS[-1][1])
    locator = step()
    # days and longer: the year below the axis; hours: the date at midnight; minutes: the date below the axis
    formatter = mdates.ConciseDateFormatter(locator, formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"],
                                            zero_formats=["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"],
                                            offset_formats=["", "%Y", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d"])
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
