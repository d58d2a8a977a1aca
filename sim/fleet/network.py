"""The network a training gang's collectives cross, as levels: the arrays the step-time kernel reads.

A pool's network is a short list of *levels*, innermost first. Level 0 is the scale-up domain (an NVLink
server or NVL72 rack, a TPU slice's inter-chip interconnect); the next levels are the data-center network
(the rack's top-of-rack switch, then the spine). For each level:

* ``chips`` — chips under one node of the level (one domain, one rack, the whole pool); non-decreasing;
* ``bandwidth_bps`` — what one chip can send into a collective at that level, one way [B/s]: half the
  bidirectional scale-up bandwidth at level 0, the chip's share of the scale-out NICs above it, divided by
  the level's oversubscription;
* ``latency_s`` — per-message latency of one step of a collective at that level [s].

The bandwidths are read from the topology graph's edges (``sim.fleet.build.build_topology``): a server's
edge to its domain's fabric (level 0), to its rack switch (level 1), and its rack's edge to the site spine
(level 2), which carries the rack's aggregate NIC bandwidth divided by the site's
``network.spine_oversubscription`` — so oversubscription slows traffic between racks and nothing inside one.

TPU pools (``torus_dimensions`` in the catalog): level 0 is a *slice*, the chips one job joins on the
inter-chip interconnect (ICI). The allocator's domain stays the catalog's ``scale_up_domain_chips`` block
(a 4x4x4 cube on v4, v5p and TPU7x; the 256-chip pod on v5e and v6e), the unit of deliveries and
retirements; a gang larger than a block takes whole free blocks (``sim.fleet.allocation``), and those
join into one torus over the optical circuit switches up to the generation's ``max_slice_chips`` (4,096 on
v4, 6,144 on v5p, 9,216 on TPU7x; 256 on v5e/v6e, which have no optical switches, so their level 0 is the
pod). Level 0 of a TPU pool therefore covers ``min(max_slice_chips, pool chips)``, and ``torus_dims`` is
the shape of that largest slice (``slice_shape``). Simplifications: the allocator does not track which pod
a block sits in (any whole free blocks of the pool are taken to be joinable, i.e. pods never fragment); all
slices are modelled as tori (small slices without wraparound links are meshes, slower along those axes).

Slice rule (``slice_shape``): a TPU gang runs on the most cube-like valid slice that holds it; a gang whose
size is not a valid slice is *rounded up* to the smallest valid slice (the extra chips of the slice are
idle), never rejected — the scheduler chooses pools per job, so a size valid on one pool need not be on
another. The training cluster places ``gang_chips_on`` chips (its power and busy-chip counts stay the
gang's own); inference replicas are not rounded. Valid slices: 3D generations — 2x2x1, 2x2x2, 2x2x4,
2x4x4 below one cube, then AxBxC with every dimension a multiple of 4 (GC-V4, GC-V5P; no dimension beyond
1.5x the cube root of the largest slice); 2D generations — 1x1, 2x2, 2x4, 4x4, 4x8, 8x8, 8x16, 16x16
(GC-V5E, GC-V6E). A gang larger than ``max_slice_chips`` runs on several equal slices joined over the
data-center network (``slices_for``; multislice).

A group of ``n`` chips whose members are ``stride`` chips apart (tensor-parallel ranks are adjacent, data-
parallel ranks are ``tp · pp · cp`` apart) spans the innermost level whose ``chips`` cover ``n · stride``; its
collectives run hierarchically (``levels_spanned``; cost functions in ``sim.fleet.collectives``).
``torus_dims`` is non-empty when level 0 is a torus (TPU slices): the step-time model then uses the torus
all-reduce over its dimensions instead of a ring.

This module is the one place that turns the catalog and the site into these numbers; the kernels get them as
P×K arrays (``level_arrays``), padded by repeating the outermost level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_LEVELS = 3
# Per-step latency of a collective at each level [s] (the launch cost of a call is sim.fleet.collectives.LAUNCH_S).
# estimate: an NVLink/ICI hop ~1 µs, a NIC + top-of-rack switch round ~5 µs, through the spine ~10 µs — the
# order of published small-message NCCL/RDMA latencies; they matter only for small messages. Measured NCCL
# all-reduces inside one DGX server (benchmarks/collectives_fidelity.py) cannot tell the level-0 figure from
# the launch cost, so it stays an estimate
SCALE_UP_LATENCY_S = 1e-6
RACK_LATENCY_S = 5e-6
SPINE_LATENCY_S = 10e-6


@dataclass(frozen=True)
class NetworkLevels:
    """One pool's network levels, innermost first (see the module docstring)."""

    chips: tuple[int, ...]
    bandwidth_bps: tuple[float, ...]
    latency_s: tuple[float, ...]
    torus_dims: tuple[int, ...] = ()

    def level_of(self, span_chips: float) -> int:
        """Index of the innermost level whose node holds ``span_chips`` consecutive chips."""
        for k, chips in enumerate(self.chips):
            if span_chips <= chips:
                return k
        return len(self.chips) - 1


def levels_spanned(levels: NetworkLevels, group_chips: int, stride: int = 1) -> int:
    """Outermost level a group of ``group_chips`` members placed ``stride`` chips apart crosses."""
    return levels.level_of(group_chips * stride)


def pool_network(pool, topology=None) -> NetworkLevels:
    """The levels of a resolved pool (``sim.fleet.build.ResolvedPool``): domain (or TPU slice), rack, whole pool.

    Bandwidths come from the edges of ``topology`` (the fleet's graph, ``Fleet.topology``; without it the
    graph of one rack of this pool is built, whose edges carry the same figures): per chip, one way, as the
    module docstring says. A pool of one rack has no spine traffic, but its level 2 still carries the spine
    edge's figure (no group reaches it)."""
    import dataclasses

    from sim.fleet.build import build_topology  # build does not import this module: no cycle

    accel = pool.accelerator
    if topology is not None and pool.servers:
        graph = topology
    else:
        rack = max(pool.domain_chips, pool.chips_per_server * pool.servers_per_rack)
        graph = build_topology([dataclasses.replace(pool, count=rack, deliveries=(), retirements=())])
    per_server, per_rack_servers = pool.chips_per_server, pool.servers_per_rack
    name = pool.name
    if pool.servers:
        up_gbps = graph.edges[f"{name}/domain0", f"{name}/server0"]["bandwidth_gbps"] / per_server
        rack_gbps = graph.edges[f"{name}/rack0", f"{name}/server0"]["bandwidth_gbps"] / per_server
        spine_gbps = graph.edges["site", f"{name}/rack0"]["bandwidth_gbps"] / (per_server * per_rack_servers)
    else:  # a pool with no server yet (all chips delivered later): the same figures without a graph
        up_gbps, rack_gbps = accel.scale_up_bandwidth_gbps, accel.scale_out_bandwidth_gbps
        spine_gbps = rack_gbps / pool.spine_oversubscription
    domain, torus = pool.domain_chips, ()
    if accel.torus_dimensions is not None:
        domain = max(domain, min(accel.max_slice_chips, pool.count))
        torus = largest_slice_within(accel, domain)
    per_rack = max(domain, per_server * per_rack_servers)
    whole = max(per_rack, pool.count)
    return NetworkLevels(
        chips=(domain, per_rack, whole),
        bandwidth_bps=(0.5 * up_gbps * 1e9, rack_gbps * 1e9, spine_gbps * 1e9),
        latency_s=(SCALE_UP_LATENCY_S, RACK_LATENCY_S, SPINE_LATENCY_S),
        torus_dims=torus,
    )


def accelerator_network(accel, chips: int, rack_chips: int = 0) -> NetworkLevels:
    """The levels of a stand-alone pool of ``chips`` of ``accel`` with racks of ``rack_chips`` (default: one
    scale-up domain per rack) and no spine oversubscription — the network of a reference chip that a
    time-based job was measured on, or of a published run: the catalog's bandwidths, without a fleet graph;
    a TPU's level 0 is its largest valid slice within ``chips``."""
    domain, torus = accel.scale_up_domain_chips, ()
    if accel.torus_dimensions is not None:
        domain = max(domain, min(accel.max_slice_chips, chips))
        torus = largest_slice_within(accel, domain)
    rack = max(domain, rack_chips)
    whole = max(rack, chips)
    out_bps = accel.scale_out_bandwidth_gbps * 1e9
    return NetworkLevels(
        chips=(domain, rack, whole),
        bandwidth_bps=(0.5 * accel.scale_up_bandwidth_gbps * 1e9, out_bps, out_bps),
        latency_s=(SCALE_UP_LATENCY_S, RACK_LATENCY_S, SPINE_LATENCY_S),
        torus_dims=torus,
    )


def fleet_networks(fleet) -> list[NetworkLevels]:
    """``pool_network`` of every pool of a ``sim.fleet.build.Fleet``, read from its topology graph."""
    return [pool_network(pool, fleet.topology) for pool in fleet.pools]


_CUBE_SUBSLICES = ((1, 2, 2), (2, 2, 2), (2, 2, 4), (2, 4, 4))  # below one 4x4x4 cube (GC-V4, GC-V5P)
_SQUARE_SLICES = ((1, 1), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16))  # GC-V5E, GC-V6E


@lru_cache(maxsize=None)
def _valid_slices(dimensions: int, max_chips: int) -> tuple[tuple[int, ...], ...]:
    """Valid slice shapes (ascending dims) of a torus generation, most preferred first for each size:
    fewest chips, then the smallest largest dimension (most cube-like), then the smallest surface."""
    if dimensions == 2:
        shapes = [s for s in _SQUARE_SLICES if s[0] * s[1] <= max_chips]
    elif dimensions == 3:
        shapes = [s for s in _CUBE_SUBSLICES if s[0] * s[1] * s[2] <= max_chips]
        # estimate: no dimension beyond 1.5x the cube root of the largest slice, rounded up to a whole cube
        # (v4: 24, as GC-V4's 12x12x24; v5p: 28, holding its 16x16x24; TPU7x: 32): long thin slices are not offered
        top = 4 * math.ceil(1.5 * max_chips ** (1 / 3) / 4)
        for a in range(4, top + 1, 4):
            for b in range(a, top + 1, 4):
                for c in range(b, min(top, max_chips // (a * b)) + 1, 4):
                    shapes.append((a, b, c))
    else:
        shapes = [(n,) for n in range(1, max_chips + 1)]
    return tuple(sorted(shapes, key=lambda s: (math.prod(s), max(s), sum(x * y for x, y in zip(s, s[1:])), s)))


def slice_shape(accelerator, chips: int) -> tuple[int, ...]:
    """The slice a gang of ``chips`` runs on: the most cube-like valid slice with the fewest chips that
    holds it (ascending dimensions; see the module docstring's slice rule). Raises ``ValueError`` for a
    chip without a torus (``torus_dimensions`` unset) or a gang larger than ``max_slice_chips``
    (use ``slices_for``)."""
    if accelerator.torus_dimensions is None:
        raise ValueError(f"{accelerator.id} has no torus fabric (torus_dimensions unset): no slice shape")
    if chips > accelerator.max_slice_chips:
        raise ValueError(f"found {chips} chips: larger than the largest {accelerator.id} slice "
                         f"({accelerator.max_slice_chips}); accepted: at most {accelerator.max_slice_chips}, "
                         "or several slices (slices_for)")
    for shape in _valid_slices(accelerator.torus_dimensions, accelerator.max_slice_chips):
        if math.prod(shape) >= chips:
            return shape
    raise ValueError(f"no valid {accelerator.id} slice holds {chips} chips")


def largest_slice_within(accelerator, chips: int) -> tuple[int, ...]:
    """The shape of the largest valid slice of at most ``chips`` chips (the smallest slice if none fits):
    the torus of a TPU pool's level 0."""
    shapes = _valid_slices(accelerator.torus_dimensions, accelerator.max_slice_chips)
    fitting = [shape for shape in shapes if math.prod(shape) <= chips]
    if not fitting:
        return shapes[0]
    most = max(math.prod(shape) for shape in fitting)
    return next(shape for shape in fitting if math.prod(shape) == most)  # the most cube-like of that size


def slice_chips(accelerator, chips: int) -> int:
    """Chips of the slice a gang of ``chips`` takes (``slice_shape``, rounded up to a valid slice)."""
    return math.prod(slice_shape(accelerator, chips))


def slices_for(accelerator, chips: int) -> tuple[int, tuple[int, ...]]:
    """``(slices, shape)``: a gang of ``chips`` on the fewest equal slices of at most ``max_slice_chips``
    each (one slice when it fits), joined over the data-center network when there are several."""
    count = max(1, math.ceil(chips / accelerator.max_slice_chips))
    return count, slice_shape(accelerator, math.ceil(chips / count))


def gang_chips_on(pool, chips: int) -> int:
    """Chips a training gang of ``chips`` takes on ``pool`` (the slice rule, module docstring): on a TPU
    pool the valid slice(s) holding it (``slices_for``), elsewhere ``chips``. A gang whose slices would
    exceed the whole pool keeps its own size (it then runs on whole blocks that are not a valid slice)."""
    accel = pool.accelerator
    if accel.torus_dimensions is None or chips <= 0:
        return chips
    count, shape = slices_for(accel, chips)
    taken = count * math.prod(shape)
    return taken if taken <= pool.count else chips


def level_arrays(networks: list[NetworkLevels]) -> dict[str, np.ndarray]:
    """P×MAX_LEVELS arrays ``level_chips``, ``level_bandwidth_bps``, ``level_latency_s`` (padded with the
    outermost level) and ``torus_dims`` (P×3, zeros where level 0 is switched) for the kernels."""
    n = len(networks)
    chips = np.zeros((n, MAX_LEVELS))
    bandwidth = np.zeros((n, MAX_LEVELS))
    latency = np.zeros((n, MAX_LEVELS))
    torus = np.zeros((n, 3))
    for p, net in enumerate(networks):
        for k in range(MAX_LEVELS):
            i = min(k, len(net.chips) - 1)
            chips[p, k] = net.chips[i]
            bandwidth[p, k] = net.bandwidth_bps[i]
            latency[p, k] = net.latency_s[i]
        torus[p, :len(net.torus_dims)] = net.torus_dims
    return {"level_chips": chips, "level_bandwidth_bps": bandwidth, "level_latency_s": latency, "torus_dims": torus}
