"""What the plots draw, as numbers (no matplotlib here): plot bins that divide a day, daily means with a
min–max band for long runs, offered and served request rates, and the power unit.

Every plot bin is a whole divisor of 24 h (10 s … 1 day), so a daily traffic cycle falls the same way in every
bin and cannot alias into a slow beat. Runs longer than ``LONG_SPAN_S`` are drawn as daily means; series with
more than ``MAX_DRAWN_BINS`` bins are merged into coarser day-dividing bins. Merged bins keep the minimum and
maximum of the bins they merge, drawn as a band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.results.series import bin_edges

DAY_S = 86400.0
HOUR_S = 3600.0
PLOT_BINS_S = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, HOUR_S, 3 * HOUR_S, 6 * HOUR_S, DAY_S)  # all divide a day
LONG_SPAN_S = 31 * DAY_S  # a run longer than a month is drawn as daily means with a min–max band
MAX_DRAWN_BINS = 2000  # a series with more bins is merged into coarser bins with a min–max band
SERVED_BINS = 300  # at most this many bins in the offered/served plot of a run up to LONG_SPAN_S
FINE_BINS = 10_000  # at most this many bins behind the daily band of a long offered/served plot
POWER_MW_FROM_KW = 1000.0  # power is drawn in MW from this peak up, else in kW


@dataclass(frozen=True)
class Series:
    """A piecewise-constant series ready to draw: bin edges [s since the scenario start], the mean per bin
    and, when bins were merged for drawing, the min and max of the merged bins (``source_bin_s`` wide)."""

    edges_s: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    source_bin_s: float | None = None

    @property
    def merged(self) -> bool:
        return self.low is not None

    @property
    def bin_s(self) -> float:
        """Width of the drawn bins [s] (the first; the last may be cut short by the horizon)."""
        return float(self.edges_s[1] - self.edges_s[0])

    def top(self) -> float:
        """The highest value drawn (band included)."""
        return float(np.max(self.high if self.merged else self.mean, initial=0.0))


def plot_bin_s(span_s: float, finest_s: float, max_bins: int) -> float:
    """The smallest plot bin (a divisor of a day) at least ``finest_s`` wide with at most ``max_bins`` bins over
    ``span_s``; a day when none is coarse enough."""
    for width in PLOT_BINS_S:
        if width >= finest_s * (1 - 1e-9) and span_s / width <= max_bins:
            return width
    return DAY_S


def drawn_bin_s(span_s: float, native_bin_s: float) -> float | None:
    """The bin a series of ``native_bin_s`` bins over ``span_s`` is drawn in: a day for long runs, a coarser
    day-divisor for too many bins; ``None`` when drawn as it is."""
    if span_s > LONG_SPAN_S:
        width = DAY_S
    elif span_s / native_bin_s > MAX_DRAWN_BINS:
        width = plot_bin_s(span_s, native_bin_s, MAX_DRAWN_BINS // 2)
    else:
        return None
    return width if width > native_bin_s * (1 + 1e-9) else None


def for_drawing(edges_s: np.ndarray, values: np.ndarray) -> Series:
    """A series of bin means (bins ``edges_s``) as it is drawn: as is, or merged per ``drawn_bin_s``."""
    values = np.asarray(values, dtype=np.float64)
    span = float(edges_s[-1] - edges_s[0])
    native = float(edges_s[1] - edges_s[0])
    width = drawn_bin_s(span, native)
    if width is None:
        return Series(edges_s, values)
    return merge(edges_s, values, bin_edges(span, width) + edges_s[0])


def merge(edges_s: np.ndarray, values: np.ndarray, new_edges_s: np.ndarray) -> Series:
    """Bin means over ``new_edges_s`` (exact time-weighted means of the step function) with the min and max of
    the bins each new bin overlaps."""
    cumulative = np.concatenate(([0.0], np.cumsum(values * np.diff(edges_s))))
    mean = np.diff(np.interp(new_edges_s, edges_s, cumulative)) / np.diff(new_edges_s)
    first = np.searchsorted(edges_s, new_edges_s[:-1], side="right") - 1  # the bin holding each new bin's start
    stop = np.searchsorted(edges_s, new_edges_s[1:], side="left")  # the first bin from each new bin's end
    low = np.array([values[a:b].min() for a, b in zip(first, stop)])
    high = np.array([values[a:b].max() for a, b in zip(first, stop)])
    return Series(new_edges_s, mean, low, high, float(edges_s[1] - edges_s[0]))


def request_rates(requests, fluid_load: dict, horizon_s: float) -> tuple[Series, Series]:
    """Offered (arrivals) and served (completions) requests per second, all services together: request-level
    services from their rows, fluid services from their per-bin counts (spread evenly within a fluid bin).

    Bins are day divisors no finer than the coarsest fluid bin; a long run is drawn as daily means with the
    min–max of finer such bins."""
    finest = max((float(np.max(np.diff(edges))) for edges, _, _ in fluid_load.values()), default=0.0)
    long_run = horizon_s > LONG_SPAN_S
    edges = bin_edges(horizon_s, plot_bin_s(horizon_s, finest, FINE_BINS if long_run else SERVED_BINS))
    offered, served = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    if requests is not None and len(requests):
        offered += np.histogram(requests["arrival_s"], edges)[0]
        served += np.histogram(requests.loc[requests["state"] == "completed", "finish_s"], edges)[0]
    for fluid_edges, offered_per_bin, served_per_bin in fluid_load.values():
        for total, counts in ((offered, offered_per_bin), (served, served_per_bin)):
            total += np.diff(np.interp(edges, fluid_edges, np.concatenate(([0.0], np.cumsum(counts)))))
    rates = [counts / np.diff(edges) for counts in (offered, served)]
    if long_run:
        days = bin_edges(horizon_s, DAY_S)
        return merge(edges, rates[0], days), merge(edges, rates[1], days)
    return Series(edges, rates[0]), Series(edges, rates[1])


def power_unit(peak_kw: float) -> tuple[str, float]:
    """The unit power is drawn in, from the peak drawn, and the factor from kW to it."""
    return ("MW", 1e-3) if peak_kw >= POWER_MW_FROM_KW else ("kW", 1.0)


def duration_label(seconds: float) -> str:
    """A bin width for a legend: '30 s', '15 min', '1 h', '1 day'."""
    for unit, size in (("day", DAY_S), ("h", HOUR_S), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}" + ("s" if unit == "day" and seconds != size else "")
    return f"{seconds:g} s"


def power_by_type(timeseries, pool_types: dict[str, str]) -> dict[str, np.ndarray]:
    """IT power per bin [kW] by accelerator type: the ``it_power_kw.<pool>`` columns summed by each pool's type
    (``pool_types``: pool name -> accelerator id; a pool not in it counts under its own name; the
    ``it_power_kw.by_type.<type>`` columns are those sums already and are not counted again), types sorted.
    Together they add up to ``it_power_kw``."""
    out: dict[str, np.ndarray] = {}
    for column in timeseries.columns:
        if column.startswith("it_power_kw.") and not column.startswith("it_power_kw.by_type."):
            pool = column.split(".", 1)[1]
            kind = pool_types.get(pool, pool)
            values = timeseries[column].to_numpy(dtype=np.float64)
            out[kind] = out[kind] + values if kind in out else values.copy()
    return dict(sorted(out.items()))


def stacked(layers: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer, in order, its (bottom, top) when stacked from 0."""
    out, base = {}, None
    for name, values in layers.items():
        values = np.asarray(values, dtype=np.float64)
        bottom = np.zeros(len(values)) if base is None else base
        out[name] = (bottom, bottom + values)
        base = bottom + values
    return out
