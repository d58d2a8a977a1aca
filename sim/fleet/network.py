"""The network a training gang's collectives cross, as levels: the arrays the step-time kernel reads.

A pool's network is a short list of *levels*, innermost first. Level 0 is the scale-up domain (an NVLink
server or NVL72 rack, a TPU slice's inter-chip interconnect); the next levels are the data-center network
(the rack's top-of-rack switch, then the spine). For each level:

* ``chips`` — chips under one node of the level (one domain, one rack, the whole pool); non-decreasing;
* ``bandwidth_bps`` — what one chip can send into a collective at that level, one way [B/s]: half the
  bidirectional scale-up bandwidth at level 0, the chip's share of the scale-out NICs above it, divided by
  the level's oversubscription;
* ``latency_s`` — per-message latency of one step of a collective at that level [s].

A group of ``n`` chips whose members are ``stride`` chips apart (tensor-parallel ranks are adjacent, data-
parallel ranks are ``tp · pp · cp`` apart) spans the innermost level whose ``chips`` cover ``n · stride``; its
collectives run hierarchically (``levels_spanned``). ``torus_dims`` is non-empty when level 0 is a torus (TPU
slices): the step-time model then uses the torus all-reduce over its dimensions instead of a ring.

This module is the one place that turns the catalog and the site into these numbers; the kernels get them as
P×K arrays (``level_arrays``), padded by repeating the outermost level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_LEVELS = 3
# estimate: NVLink/ICI hop ~1 µs, a NIC + ToR round ~5 µs, through the spine ~10 µs — orders of magnitude
# typical of published NCCL small-message all-reduce latencies; they matter only for small messages
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


def pool_network(pool) -> NetworkLevels:
    """The levels of a resolved pool (``sim.fleet.build.ResolvedPool``): domain, rack, whole pool."""
    accel = pool.accelerator
    domain = pool.domain_chips
    per_rack = max(domain, pool.chips_per_server * pool.servers_per_rack)
    whole = max(per_rack, pool.count)
    out_bps = accel.scale_out_bandwidth_gbps * 1e9
    return NetworkLevels(
        chips=(domain, per_rack, whole),
        bandwidth_bps=(0.5 * accel.scale_up_bandwidth_gbps * 1e9, out_bps, out_bps),
        latency_s=(SCALE_UP_LATENCY_S, RACK_LATENCY_S, SPINE_LATENCY_S),
    )


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
