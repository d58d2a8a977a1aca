"""Closed-form queueing results (M/M/c), the analytic oracle for the serving models.

The tests check the request-level serving kernel (one request per replica, exponential service) and the
fluid model's vectorised Erlang C (``sim.kernels.fluid.erlang_c``) against these formulas. Pure
functions of scalars; no state.
"""

from __future__ import annotations

import math


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C).

    ``offered_load`` is a = λ/μ in Erlangs; requires a < c (a stable queue), else returns 1.
    Computed through the Erlang B recursion B(k) = a·B(k-1) / (k + a·B(k-1)), which is stable for
    large c where the factorial form overflows; then C = c·B / (c - a·(1 - B)).
    """
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return servers * blocking / (servers - offered_load * (1.0 - blocking))


def mmc_mean_wait_s(arrival_rate_per_s: float, service_rate_per_s: float, servers: int) -> float:
    """Mean time in queue (before service) of an M/M/c queue [s]; inf when unstable."""
    load = arrival_rate_per_s / service_rate_per_s
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers * service_rate_per_s - arrival_rate_per_s)
