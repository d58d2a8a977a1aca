"""Accounting shared by the serving families: request states, busy fraction, replica time, energy and cost.

Energy and cost of a replica group's chips: idle power (with the server share) while a replica is
active and its pool online, plus the full-load increment while it iterates (busy chip-seconds from
the kernel); facility energy is IT energy × PUE; chip cost (capex or rental) for every active online
hour. Chips an autoscaled replica lends to training are charged to no one here.
"""

from __future__ import annotations

import numpy as np

from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, UNFINISHED

STATUS_NAMES = {DONE: "completed", UNFINISHED: "unfinished", REJECTED: "rejected", NOT_OFFERED: "not-offered"}


def request_counts(status: np.ndarray) -> dict[str, int]:
    """``requests.{offered, completed, rejected, unfinished, not_offered}`` from the kernel's states
    (offered = completed + rejected + unfinished)."""
    return {"offered": int((status != NOT_OFFERED).sum()), "completed": int((status == DONE).sum()),
            "rejected": int((status == REJECTED).sum()), "unfinished": int((status == UNFINISHED).sum()),
            "not_offered": int((status == NOT_OFFERED).sum())}


def busy_fraction(groups, busy_chip_s, horizon_s: float, replica_s: list[float] | None = None) -> float:
    """Busy fraction of the service's replica chips: chip-seconds iterating over chip-seconds of active
    replicas (the same definition for both fidelities; ``replica_s`` as ``replica_seconds``)."""
    if replica_s is None:
        replica_s = [p.replicas * horizon_s for p in groups]
    active = sum(seconds * p.chips_per_replica for p, seconds in zip(groups, replica_s))
    # at most 1: a replica switched off drains its last requests after its active time ends
    return min(1.0, float(sum(float(b.sum()) for b in busy_chip_s) / active)) if active > 0 else 0.0


def replica_seconds(groups, switches, fleet, horizon_s: float) -> list[float]:
    """Active replica-seconds of each group while its pool is online (every replica, without switches)."""
    out = []
    for g, plan in enumerate(groups):
        online_s = fleet.pools[plan.pool].online_from_s
        switch = switches[g] if switches else None
        if switch is None:  # every replica, whenever its pool is online
            out.append(plan.replicas * max(0.0, horizon_s - online_s))
        else:
            out.append(switch.replica_seconds(min(online_s, horizon_s), horizon_s))
    return out


def energy_and_cost(groups, busy_chip_s, fleet, horizon_s: float, tokens: int,
                    replica_s: list[float] | None = None) -> tuple[float | None, float | None]:
    """Facility energy [kWh per 1k tokens] and cost [USD per 1M tokens] of the service's replica chips
    (see the module docstring). ``replica_s`` defaults to every replica for the whole time its pool is
    online."""
    if replica_s is None:
        replica_s = replica_seconds(groups, None, fleet, horizon_s)
    site = fleet.site
    energy_kwh = cost_usd = 0.0
    for plan, busy, seconds in zip(groups, busy_chip_s, replica_s):
        pool = fleet.pools[plan.pool]
        chip_hours = seconds * plan.chips_per_replica / 3600.0
        joules = (chip_hours * 3600.0 * pool.idle_w_with_server
                  + float(busy.sum()) * (pool.busy_w_with_server - pool.idle_w_with_server))
        kwh = joules * site.pue / 3.6e6
        energy_kwh += kwh
        cost_usd += chip_hours * pool.chip_cost_usd_per_hour + kwh * site.electricity_usd_per_kwh
    if tokens == 0:
        return None, None
    return energy_kwh / tokens * 1e3, cost_usd / tokens * 1e6
