"""How a fluid-fidelity service's load splits over its replica groups, by KV need and capacity share.

The request-level kernel routes a request only among the replicas whose KV cache can ever hold it
(``P + O <= kv_capacity_tokens``) and rejects it only when no replica can. The fluid split follows
that in expectation:

* The groups' distinct KV capacities ``c₁ < c₂ < … < c_m`` [tokens] cut the requests into bands of KV
  need: ``need <= c₁``, ``c₁ < need <= c₂``, …; requests above ``c_m`` fit no group and are rejected.
* A band's requests go to the groups that can hold them, each in proportion to its capacity share
  (replicas × nominal decode rate ``tokens_per_s``, ``sim.serving.autoscale.capacity_shares``; decode is
  memory-bound, so FLOP/s would misweight chip types).
* A group's arrivals per bin are the sum of the bands it receives; its token moments are their mixture,
  weighted by the requests of each band (exact: every moment is a mean over requests). Bands come from
  the pmfs for generator traffic and from histograms per band for traces (``Offered.lengths``).

Windows (``sim.fleet.windows``): a group takes a band's requests only while active. In each bin a band's
requests are accepted for the share of the bin some group holding it is active (the union of their windows,
pro rata at an edge; the rest is rejected, ``no replica active``), split over the holders by capacity share
× the share of the bin each is active (``group_lengths(..., covers)``).

Simplification: the split is static, by capacity share; the request-level routers send a request to
the least loaded (or next, or fastest) replica among those that can hold it, which evens out load a
static split does not see (a group that alone holds the long requests gets no relief from the others).
"""

from __future__ import annotations

import numpy as np

from sim.fleet.windows import active_fraction
from sim.serving.autoscale import capacity_shares
from sim.serving.fluid.traffic import Lengths, Offered

MOMENTS = ("prompt", "output", "chunks", "context")


def capacity_share(groups: list) -> np.ndarray:
    """Each group's capacity share of its service (replicas × nominal decode rate, summing to 1)."""
    shares = capacity_shares(groups)
    return np.array([shares[(p.service, p.group)] for p in groups])


def group_lengths(offered: Offered, groups: list, shares: np.ndarray, covers: list | None = None) -> list[Lengths]:
    """Per group, the share of the service's arrivals routed to it (``accepted_frac``, per bin for traces or
    windows) and the token moments of those requests (module docstring). ``covers``: per group, the share of
    each bin it is active (None: every group all run)."""
    capacity = np.array([int(p.kernel["kv_capacity_tokens"]) for p in groups])
    levels = np.unique(capacity)
    bands = list(zip(np.concatenate(([0], levels[:-1])), levels))
    out = []
    for g, (plan, cap, share) in enumerate(zip(groups, capacity, shares)):
        if covers is None:
            parts = [(float(share / shares[capacity >= high].sum()),
                      offered.lengths(int(high), int(plan.kernel["token_budget"]), int(low)))
                     for low, high in bands if high <= cap]
        else:
            parts = [(_windowed_share(g, capacity >= high, shares, covers, groups, offered.edges),
                      offered.lengths(int(high), int(plan.kernel["token_budget"]), int(low)))
                     for low, high in bands if high <= cap]
        out.append(mix(parts))
    return out


def _windowed_share(g: int, holders: np.ndarray, shares: np.ndarray, covers: list, groups: list,
                    edges: np.ndarray) -> np.ndarray:
    """Group ``g``'s share of a band's arrivals per bin: the union cover of the band's holders × g's capacity
    share × its cover over the holders' (0 where none is active)."""
    weight = sum(shares[h] * covers[h] for h in np.flatnonzero(holders))
    union = union_cover([groups[h].window for h in np.flatnonzero(holders)], edges)
    return np.divide(union * shares[g] * covers[g], weight, out=np.zeros(len(edges) - 1), where=weight > 0)


def union_cover(windows: list, edges: np.ndarray) -> np.ndarray:
    """Share of each bin inside the union of ``windows`` ((from_s, until_s), None: the whole run)."""
    if any(w is None for w in windows):
        return np.ones(len(edges) - 1)
    merged: list[list[float]] = []
    for begin, end in sorted(windows):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return sum((active_fraction(tuple(w), edges) for w in merged), np.zeros(len(edges) - 1))


def covers_of(groups: list, edges: np.ndarray) -> list | None:
    """Per group, the share of each bin it is active; None when no group is windowed (the split of before)."""
    if all(getattr(p, "window", None) is None for p in groups):
        return None
    return [np.ones(len(edges) - 1) if p.window is None else active_fraction(p.window, edges) for p in groups]


def rejected_frac(offered: Offered, groups: list) -> np.ndarray:
    """Share of arrivals (per bin for traces) whose KV need exceeds every group's capacity."""
    top = max(int(p.kernel["kv_capacity_tokens"]) for p in groups)
    return 1.0 - offered.lengths(top, int(groups[0].kernel["token_budget"])).accepted_frac


def inactive_frac(offered: Offered, groups: list) -> np.ndarray:
    """Share of arrivals per bin that some group could hold but none of those is active (windowed groups):
    per band of KV need, its share times the part of the bin outside the union of its holders' windows."""
    capacity = np.array([int(p.kernel["kv_capacity_tokens"]) for p in groups])
    levels = np.unique(capacity)
    out = np.zeros(len(offered.edges) - 1)
    for low, high in zip(np.concatenate(([0], levels[:-1])), levels):
        holders = np.flatnonzero(capacity >= high)
        band = offered.lengths(int(high), int(groups[0].kernel["token_budget"]), int(low)).accepted_frac
        out = out + band * (1.0 - union_cover([groups[h].window for h in holders], offered.edges))
    return out


def mix(parts: list[tuple[float, Lengths]]) -> Lengths:
    """The mixture of bands ``(share taken, band lengths)``: the taken shares of the arrivals add up,
    the moments are averaged over the requests taken. A bin where nothing is taken gets the moments
    averaged over the bins' mean shares (it carries no load; this only keeps its row mergeable)."""
    weights = [share * band.accepted_frac for share, band in parts]
    total = sum(weights)
    if len(parts) == 1:
        return Lengths(np.asarray(total), *(getattr(parts[0][1], name) for name in MOMENTS))
    fallback = [float(np.mean(w)) for w in weights]
    if sum(fallback) <= 0:
        return Lengths(*(np.array(v) for v in (0.0, 1.0, 1.0, 1.0, 0.0)))
    moments = []
    for name in MOMENTS:
        values = [getattr(band, name) for _, band in parts]
        spread = sum(f * v for f, v in zip(fallback, values)) / sum(fallback)
        with np.errstate(invalid="ignore", divide="ignore"):
            moments.append(np.asarray(np.where(total > 0, sum(w * v for w, v in zip(weights, values))
                                               / np.where(total > 0, total, 1.0), spread)))
    return Lengths(np.asarray(total), *moments)
