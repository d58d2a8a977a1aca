"""Time of one collective over a pool's network levels (``sim.fleet.network.NetworkLevels``) [s].

The reference cost model the step-time kernel's inline formulas are compared with; pure Python, one call
per collective. Every function takes ``nbytes`` — the full buffer per rank [B] (the all-reduce size, the
input of a reduce-scatter, the output of an all-gather, what one rank sends in an all-to-all) — the group
size ``n``, the ``stride`` between consecutive members (chips; 1 = adjacent, a data-parallel group is
``tp · pp · cp`` apart) and the levels. All are the alpha-beta (latency-bandwidth) model:

* **Ring** of ``g`` members on one switched level (Thakur, Rabenseifner & Gropp, "Optimization of
  Collective Communication Operations in MPICH", IJHPCA 2005; NCCL's ring algorithm, whose bus bandwidth
  the NCCL tests define as ``2(n-1)/n · size / time`` for all-reduce): reduce-scatter and all-gather take
  ``(g-1)`` steps of ``alpha`` and move ``(g-1)/g · nbytes`` per chip; all-reduce = reduce-scatter +
  all-gather: ``2(g-1)·alpha + 2(g-1)/g · nbytes / bw``.
* **Hierarchical** over levels (the two-level ring of NCCL's CollNet-less multi-node rings and Horovod's
  hierarchical all-reduce): a group whose members sit ``g_0`` to a level-0 node, ``g_0·g_1`` to a level-1
  node, ... reduce-scatters inside level 0 on the whole buffer, then among the ``g_1`` level-0 nodes of a
  level-1 node on ``1/g_0`` of it, and so on outwards; the all-gather retraces the steps inwards. Members
  at the same level work in parallel, each on its own link share (``bandwidth_bps`` is per chip). A group
  inside one domain therefore never touches the scale-out levels.
* **Torus** (TPU slices, ``levels.torus_dims``): the multi-dimensional ring — the buffer is split into
  one piece per active dimension, and each piece is reduce-scattered along the dimensions in a rotated
  order, so every dimension's links are busy in every phase (the bucket algorithm of Sack & Gropp,
  "Collective algorithms for multiported torus networks", ACM TOPC 2015; the scaling-book's account of
  TPU all-reduces). Each dimension's ring runs both ways over its two links: ``bandwidth_bps / D`` per
  chip for a D-dimensional torus. A full D-dimensional slice reaches the chip's whole injection bandwidth,
  where a one-dimensional ring through the same chips uses only ``1/D`` of it.
* **All-to-all**: each chip sends ``(n-1)/n`` of its buffer; on switched levels the traffic leaving each
  level's node crosses that level's links (the slowest level bounds it); on a torus it is also bounded by
  the bisection: ``nbytes · d_max · D / (4 · bandwidth_bps)``.
* **Send/receive** between two chips ``stride`` apart: ``alpha + nbytes / bw`` at the level they span.

Efficiency and latency constants (calibrated in ``benchmarks/collectives_fidelity.py`` against measured
NCCL times inside DGX A100/H100 servers, sizes >= 1 MiB): a collective reaches ``SCALE_UP_EFFICIENCY`` of
the nominal scale-up bandwidth and ``SCALE_OUT_EFFICIENCY`` of the NIC bandwidth, and pays
``LAUNCH_S`` once besides ``alpha`` per step (``levels.latency_s``). Simplifications: no pipelining of
the hierarchical phases; no tree or NVLS (switch-reduction) algorithms; members are spread evenly (a
group's members per node are ``chips_k / stride``, capped by ``n``); the torus is wrapped in every
dimension (small TPU slices are meshes); contention with other groups' traffic is not modelled.
"""

from __future__ import annotations

import math

from sim.fleet.network import NetworkLevels, levels_spanned

# calibrated (benchmarks/collectives_fidelity.py --fit: minimax of the A100 and H100 median errors on NCCL
# all-reduces of 1-64 MiB inside DGX servers): 0.75 of the nominal NVLink bandwidth and 35 µs per call
# (kernel launch, synchronisation); median absolute error ~19 % on each chip, A100 modelled faster and H100
# slower than measured (one efficiency for two NVLink generations; no NVLS switch reduction on H100)
SCALE_UP_EFFICIENCY = 0.75
LAUNCH_S = 35e-6
# estimate: large-message NCCL bus bandwidth over InfiniBand/RoCE reaches ~80-90 % of the NIC line rate in
# the NCCL tests' published results; 0.8 taken (the measured cross-server rows come from a cluster whose
# network is not documented, so they cannot calibrate it)
SCALE_OUT_EFFICIENCY = 0.8


def _efficiency(level: int) -> float:
    return SCALE_UP_EFFICIENCY if level == 0 else SCALE_OUT_EFFICIENCY


def _torus_group(n: int, torus_dims: tuple[int, ...], stride: int = 1) -> tuple[int, ...]:
    """The sub-box a group of ``n`` members ``stride`` chips apart fills in a slice of ``torus_dims``
    (chips numbered along the first dimension first): the stride steps over whole first dimensions (or
    spaces the members of one), then the group fills whole dimensions and part of the next (a group of the
    whole slice is the slice). Members spaced within a dimension are taken to ride its ring at full speed."""
    shape, left, skip = [], max(1, int(n)), max(1, int(stride))
    for d in torus_dims:
        if skip >= d:  # the stride steps over this whole dimension
            skip = max(1, skip // d)
            shape.append(1)
            continue
        take = min(max(1, d // skip), left)
        skip = 1
        shape.append(take)
        left = max(1, math.ceil(left / take))
    return tuple(shape)


def _members_per_level(levels: NetworkLevels, n: int, stride: int) -> list[float]:
    """Group members under one node of each level spanned, innermost first (the last is ``n``)."""
    top = levels_spanned(levels, n, stride)
    per = [min(float(n), max(1.0, levels.chips[k] / stride)) for k in range(top)]
    return per + [float(n)]


def _uses_torus(levels: NetworkLevels, n: int, stride: int) -> bool:
    return bool(levels.torus_dims) and levels_spanned(levels, n, stride) == 0


def _torus_reduce_scatter_s(nbytes: float, shape: tuple[int, ...], levels: NetworkLevels) -> float:
    """Reduce-scatter on a torus sub-box ``shape`` (bucket algorithm, rotated dimension orders)."""
    active = [d for d in shape if d > 1]
    if not active:
        return 0.0
    dims_total = len(levels.torus_dims)
    per_dim_bps = levels.bandwidth_bps[0] * SCALE_UP_EFFICIENCY / dims_total
    pieces = len(active)
    total = 0.0
    for phase in range(pieces):
        worst = 0.0
        for piece in range(pieces):
            order = active[piece:] + active[:piece]
            data = nbytes / pieces / math.prod(order[:phase])
            d = order[phase]
            worst = max(worst, (d - 1) * levels.latency_s[0] + (d - 1) / d * data / per_dim_bps)
        total += worst
    return total


def reduce_scatter_s(nbytes: float, n: int, stride: int, levels: NetworkLevels) -> float:
    """Reduce-scatter of a ``nbytes`` buffer over ``n`` members (each ends with ``nbytes / n``) [s]."""
    if n <= 1:
        return 0.0
    if _uses_torus(levels, n, stride):
        return LAUNCH_S + _torus_reduce_scatter_s(nbytes, _torus_group(n, levels.torus_dims, stride), levels)
    total, data, inner = LAUNCH_S, float(nbytes), 1.0
    for k, members in enumerate(_members_per_level(levels, n, stride)):
        g = members / inner  # members of the ring at this level (one per level-(k-1) node)
        if g > 1:
            bw = levels.bandwidth_bps[k] * _efficiency(k)
            total += (g - 1) * levels.latency_s[k] + (g - 1) / g * data / bw
            data /= g
        inner = members
    return total


def all_gather_s(nbytes: float, n: int, stride: int, levels: NetworkLevels) -> float:
    """All-gather whose result is ``nbytes`` per member (each contributes ``nbytes / n``) [s]: the
    reduce-scatter's steps in reverse, the same time."""
    return reduce_scatter_s(nbytes, n, stride, levels)


def allreduce_s(nbytes: float, n: int, stride: int, levels: NetworkLevels) -> float:
    """All-reduce of ``nbytes`` per member over ``n`` members: reduce-scatter then all-gather [s]
    (one call: the launch cost ``LAUNCH_S`` is paid once)."""
    if n <= 1:
        return 0.0
    return reduce_scatter_s(nbytes, n, stride, levels) + all_gather_s(nbytes, n, stride, levels) - LAUNCH_S


def all_to_all_s(nbytes: float, n: int, stride: int, levels: NetworkLevels) -> float:
    """All-to-all: each member sends ``nbytes / n`` to every other member [s]. Switched levels: the slowest
    of the levels spanned, each carrying the share of the buffer bound outside its inner node; a torus
    slice: the larger of the injection and the bisection bound."""
    if n <= 1:
        return 0.0
    if _uses_torus(levels, n, stride):
        shape = _torus_group(n, levels.torus_dims, stride)
        bw = levels.bandwidth_bps[0] * SCALE_UP_EFFICIENCY
        injection = (n - 1) / n * nbytes / bw
        bisection = nbytes * max(shape) * len(levels.torus_dims) / (4 * bw)
        return LAUNCH_S + sum(d - 1 for d in shape) * levels.latency_s[0] + max(injection, bisection)
    members = _members_per_level(levels, n, stride)
    worst, latency, inner = 0.0, 0.0, 1.0
    for k, m in enumerate(members):
        if m > inner:
            # share of the buffer crossing level k's links: to the other members of the level-0 node at
            # level 0; above, everything bound outside the member's level-(k-1) node (it leaves through them)
            outside = (m - 1) / n if k == 0 else (n - inner) / n
            worst = max(worst, outside * nbytes / (levels.bandwidth_bps[k] * _efficiency(k)))
            latency += levels.latency_s[k]
        inner = m
    return LAUNCH_S + latency + worst


def send_recv_s(nbytes: float, stride: int, levels: NetworkLevels) -> float:
    """Point-to-point send of ``nbytes`` between two chips ``stride`` apart (a pipeline stage boundary) [s]."""
    k = levels_spanned(levels, 2, stride)
    return LAUNCH_S + levels.latency_s[k] + nbytes / (levels.bandwidth_bps[k] * _efficiency(k))
