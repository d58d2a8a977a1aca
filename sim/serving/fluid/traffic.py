"""Offered load of a fluid-fidelity service: expected arrivals and token moments per time bin.

No individual request is sampled for generator traffic:
* **Poisson** at ``rate_per_s``: ``rate · bin width`` arrivals per bin.
* **Diurnal**: the rate function ``rate · (1 + amplitude · cos(2π (hour − peak_hour)/24))`` integrated over
  each bin in closed form (hour 0 at the start date's midnight, as the request-level generator).
* **Bursty**: the two-state calm/burst path is drawn (exponential period lengths, starting calm, as the
  request-level generator) — a few draws per period — and its piecewise-constant rate integrated per bin.
* **Growth** (``growth:``): the rate times the multiplier m(t) (``sim.workload.growth``), integrated per bin in
  closed form, with the diurnal term (exponential or linear × cosine); bursty periods' levels times ∫ m over them.
  A grown trace is scaled as the request level scales it (below).
* Token lengths: the exact probabilities of the rounded counts ``max(1, ceil(X))``
  (``sim.workload.distributions.token_pmf``) give the share of requests whose KV need ``P + O`` lies in
  a band ``(above, kv_capacity_tokens]`` and the moments of those requests, by sums over the prompt pmf
  of cumulative sums over the output pmf (prompt and output lengths are drawn independently).
  ``sim.serving.fluid.split`` takes one band per distinct KV capacity of the service's groups.

For **trace** traffic the scaled trace is read as the request-level path reads it (same reader, same
scaling) and histogrammed: requests per bin and per-bin sums of the token moments, with ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sim.workload.distributions import empirical_stamp, token_pmf
from sim.workload.growth import growth_curve

# slices of the length distributions, finer in the tail, that stand for them in latency mixtures (TTFT takes
# prompt lengths, end-to-end latency output lengths)
QUANTILE_EDGES = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0])


@dataclass(frozen=True)
class Lengths:
    """Token moments of the requests a replica group accepts, per bin (arrays) or constant (0-d arrays).

    ``accepted_frac`` share of the service's arrivals taken (those in a band of KV need, or routed to a
    group); the rest are means over those requests:
    ``prompt`` E[P], ``output`` E[O], ``chunks`` E[ceil(P / token_budget)] (iterations carrying the prompt),
    ``context`` E[(O − 1)·P + O·(O − 1)/2] (KV tokens read over its decode iterations)."""

    accepted_frac: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    chunks: np.ndarray
    context: np.ndarray


@dataclass(frozen=True)
class Offered:
    """A service's offered load: fluid bin edges [s], expected arrivals per bin (before any rejection),
    requests after the horizon (traces only), and how to get the token moments for a replica group."""

    edges: np.ndarray
    arrivals: np.ndarray
    not_offered: int
    source: object  # GeneratorLengths or TraceLengths

    def lengths(self, kv_capacity_tokens: int, token_budget: int, above: int = 0) -> Lengths:
        """Share and moments of the requests with ``above < P + O <= kv_capacity_tokens`` [tokens]
        (``above = 0``: every request that fits ``kv_capacity_tokens``), for a group's ``token_budget``."""
        return self.source.lengths(kv_capacity_tokens, token_budget, above)

    def slices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slices of the length distributions between ``QUANTILE_EDGES``: (share of requests, prompt
        tokens, output tokens), the tokens as (slices, 2) arrays of [low, high] — each slice taken as
        uniform between them — except the last, a point at its mean (so means stay right)."""
        return np.diff(QUANTILE_EDGES), *self.source.slices()


def fluid_edges(horizon_s: float, bin_s: float) -> np.ndarray:
    """Bin edges ``k · bin_s`` from 0, closing at the horizon (the last bin may be shorter)."""
    count = int(np.ceil(horizon_s / bin_s - 1e-9))
    edges = np.arange(count + 1, dtype=np.float64) * bin_s
    edges[-1] = horizon_s
    return edges


def offered_load(service, edges: np.ndarray, base_dir: Path, rng: np.random.Generator, start=None) -> Offered:
    """The service's offered load over the bins ``edges`` (see the module docstring); ``start`` is the
    scenario's start date, which growth points are counted from."""
    traffic = service.traffic
    if traffic.trace is not None:
        from sim.serving.llm.requests import service_requests

        requests = service_requests(service, base_dir, float(edges[-1]), rng, start)
        arrival = requests["arrival_s"].to_numpy()
        inside = (arrival >= 0) & (arrival < edges[-1])
        index = np.clip(np.searchsorted(edges, arrival[inside], side="right") - 1, 0, len(edges) - 2)
        source = TraceLengths(index, requests["prompt_tokens"].to_numpy()[inside],
                              requests["output_tokens"].to_numpy()[inside], len(edges) - 1)
        counts = np.bincount(index, minlength=len(edges) - 1).astype(np.float64)
        return Offered(edges, counts, int((~inside).sum()), source)
    gen = traffic.generator
    arrivals = _generator_arrivals(gen, edges, rng, growth_curve(gen.growth, start))
    source = GeneratorLengths(gen.prompt_tokens, gen.output_tokens, str(base_dir))
    return Offered(edges, arrivals, 0, source)


@lru_cache(maxsize=64)
def _pmf(dist, base_dir: str, stamp=None) -> np.ndarray:
    """``token_pmf``, computed once per distinct distribution (services often share one); read-only.
    ``stamp``: the identity of an empirical distribution's file (``empirical_stamp``): a changed file is new."""
    pmf = token_pmf(dist, Path(base_dir))
    pmf.flags.writeable = False
    return pmf


def _generator_arrivals(gen, edges: np.ndarray, rng: np.random.Generator, growth=None) -> np.ndarray:
    """Expected arrivals per bin: the generator's rate function (times the growth multiplier) integrated over
    each bin."""
    rate = gen.rate_per_s
    if growth is not None and gen.bursty is None:
        d = gen.diurnal
        amplitude, peak_hour = (d.amplitude_frac, d.peak_hour) if d is not None else (0.0, 0.0)
        return np.maximum(np.diff(rate * growth.rate_integral(edges, amplitude, peak_hour)), 0.0)
    if gen.diurnal is not None:
        d = gen.diurnal
        day_s = 86400.0
        phase = 2.0 * np.pi * (edges / 3600.0 - d.peak_hour) / 24.0
        integral = rate * (edges + d.amplitude_frac * day_s / (2.0 * np.pi) * np.sin(phase))
        return np.diff(integral)
    if gen.bursty is not None:
        return np.diff(_bursty_integral(gen, edges, rng, growth))
    return rate * np.diff(edges)


def _bursty_integral(gen, edges: np.ndarray, rng: np.random.Generator, growth=None) -> np.ndarray:
    """∫₀ᵗ rate at every edge, along one drawn calm/burst path (calm first; lengths drawn in bulk). With
    growth, each period's constant level multiplies ∫ m over it: the path is integrated on the clock
    G(t) = ∫₀ᵗ m, on which it is again piecewise linear."""
    b = gen.bursty
    horizon = float(edges[-1])
    burst_share = b.mean_burst_s / (b.mean_burst_s + b.mean_calm_s)
    calm_rate = gen.rate_per_s / (1.0 - burst_share + b.burst_factor * burst_share)
    pairs = int(horizon / (b.mean_burst_s + b.mean_calm_s)) + 8
    lengths = []
    total = 0.0
    while total < horizon:
        chunk = np.empty(2 * pairs)
        chunk[0::2] = rng.exponential(b.mean_calm_s, pairs)
        chunk[1::2] = rng.exponential(b.mean_burst_s, pairs)
        lengths.append(chunk)
        total += float(chunk.sum())
    lengths = np.concatenate(lengths)
    ends = np.cumsum(lengths)
    level = np.where(np.arange(len(lengths)) % 2 == 0, calm_rate, calm_rate * b.burst_factor)
    times = np.concatenate(([0.0], ends))
    cumulative = np.concatenate(([0.0], np.cumsum(level * lengths)))
    if growth is None:
        return np.interp(edges, times, cumulative)
    clock = growth.rate_integral(times)
    cumulative = np.concatenate(([0.0], np.cumsum(level * np.diff(clock))))
    return np.interp(growth.rate_integral(edges), clock, cumulative)


class GeneratorLengths:
    """Token moments from the exact pmfs of the generator's rounded prompt and output lengths (computed
    once per distinct distributions and replica limits: fleets often run many alike services)."""

    def __init__(self, prompt, output, base_dir: str):
        self.key = (prompt, output, base_dir, (empirical_stamp(prompt, base_dir), empirical_stamp(output, base_dir)))

    def lengths(self, kv_capacity_tokens: int, token_budget: int, above: int = 0) -> Lengths:
        return _generator_lengths(*self.key, kv_capacity_tokens, token_budget, above)

    def slices(self) -> tuple[np.ndarray, np.ndarray]:
        return _generator_slices(*self.key)


@lru_cache(maxsize=64)
def _generator_lengths(prompt, output, base_dir: str, stamps: tuple, kv_capacity_tokens: int, token_budget: int,
                       above: int = 0) -> Lengths:
    """Share of requests with ``above < P + O <= kv_capacity_tokens`` and their moments (module
    docstring), from the two pmfs."""
    p_pmf, o_pmf = _pmf(prompt, base_dir, stamps[0]), _pmf(output, base_dir, stamps[1])
    k = np.arange(len(p_pmf), dtype=np.float64)
    o = np.arange(len(o_pmf), dtype=np.float64)
    tokens = np.arange(len(p_pmf))
    room, floor = kv_capacity_tokens - tokens, above - tokens  # the band of outputs: floor < O <= room

    def upto(values):  # E[values(O); floor < O <= room] for every prompt length
        cumulative = np.concatenate(([0.0], np.cumsum(o_pmf * values)))  # [n]: the sum over O < n
        return (cumulative[np.clip(room + 1, 0, len(o_pmf))]
                - cumulative[np.clip(floor + 1, 0, len(o_pmf))])

    fits, outputs, squares = upto(np.ones_like(o)), upto(o), upto(o * o)
    accepted = float(np.sum(p_pmf * fits))
    if accepted <= 0:
        return Lengths(*(np.array(v) for v in (0.0, 1.0, 1.0, 1.0, 0.0)))
    prompt = float(np.sum(p_pmf * k * fits)) / accepted
    output = float(np.sum(p_pmf * outputs)) / accepted
    output_sq = float(np.sum(p_pmf * squares)) / accepted
    prompt_output = float(np.sum(p_pmf * k * outputs)) / accepted
    chunks = float(np.sum(p_pmf * np.ceil(k / token_budget) * fits)) / accepted
    context = prompt_output - prompt + (output_sq - output) / 2.0
    return Lengths(*(np.array(v) for v in (accepted, prompt, output, chunks, context)))


@lru_cache(maxsize=64)
def _generator_slices(prompt, output, base_dir: str, stamps: tuple) -> tuple[np.ndarray, np.ndarray]:
    """[low, high] tokens of each slice of ``QUANTILE_EDGES`` (the last: its mean), from the pmfs."""
    out = []
    for pmf in (_pmf(prompt, base_dir, stamps[0]), _pmf(output, base_dir, stamps[1])):
        cumulative = np.cumsum(pmf)
        edges = np.searchsorted(cumulative, np.maximum(QUANTILE_EDGES, 1e-12)).astype(np.float64)
        bounds = np.stack((edges[:-1], edges[1:]), axis=1)
        tokens = np.arange(len(pmf), dtype=np.float64)
        top = tokens >= edges[-2]
        bounds[-1] = float(np.sum(pmf[top] * tokens[top])) / max(float(pmf[top].sum()), 1e-300)
        bounds.flags.writeable = False  # shared through the cache
        out.append(bounds)
    return tuple(out)


class TraceLengths:
    """Token moments per bin from the (scaled) trace's requests, by ``np.bincount``."""

    def __init__(self, bin_index: np.ndarray, prompt: np.ndarray, output: np.ndarray, bins: int):
        self.bin_index, self.bins = bin_index, bins
        self.prompt, self.output = prompt.astype(np.float64), output.astype(np.float64)

    def lengths(self, kv_capacity_tokens: int, token_budget: int, above: int = 0) -> Lengths:
        p, o = self.prompt, self.output
        fits = (p + o <= kv_capacity_tokens) & (p + o > above)

        def per_bin(values):
            return np.bincount(self.bin_index[fits], weights=values[fits], minlength=self.bins)

        count = per_bin(np.ones_like(p))
        arrived = np.bincount(self.bin_index, minlength=self.bins).astype(np.float64)
        sums = [per_bin(v) for v in (p, o, np.ceil(p / token_budget), (o - 1) * p + o * (o - 1) / 2.0)]
        overall = [float(s.sum()) / max(float(count.sum()), 1.0) for s in sums]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = [np.where(count > 0, s / count, fallback) for s, fallback in zip(sums, overall)]
            accepted = np.where(arrived > 0, count / arrived, 1.0)
        return Lengths(accepted, means[0], np.maximum(means[1], 1.0), np.maximum(means[2], 1.0), means[3])

    def slices(self) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for values in (self.prompt, self.output):
            if len(values) == 0:
                out.append(np.ones((len(QUANTILE_EDGES) - 1, 2)))
                continue
            edges = np.quantile(values, QUANTILE_EDGES)
            bounds = np.stack((edges[:-1], edges[1:]), axis=1)
            bounds[-1] = float(values[values >= edges[-2]].mean())
            out.append(bounds)
        return tuple(out)
