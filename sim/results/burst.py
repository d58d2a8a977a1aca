"""Results of cloud burst (``policy.burst``): the realised rentals feed the fleet, and are reported.

After training, each burst pool gets the online chips its rentals realised (``ResolvedPool.with_realised_steps``),
so utilization, idle power and energy, ``fleet_cost_usd``, the money ledger, monthly.csv and capacity.png
count the rented chips only while they were online. The events go to ``burst.csv`` and a ``burst`` section
of ``summary.json``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sim.training.burst import realised_steps

COLUMNS = ["time_s", "datetime", "pool", "event", "chips", "domain", "rented_chips"]


def realise_burst(fleet, events, horizon_s: float, start_date) -> tuple[object, pd.DataFrame]:
    """The fleet with each burst pool's realised online chips, and the events as a table (one row per
    request, online and release, in time order; ``rented_chips``: the pool's online rented chips after it).
    Serving-burst pools (``sim.serving.burst``, their rentals already realised) are left as they are."""
    pools = list(fleet.pools)
    for p in pools:
        if p.burst and p.realised_steps is None:
            begin, end = p.online_window(horizon_s)
            pools[p.index] = p.with_realised_steps(*realised_steps(events, p.index, begin, end))
    rows, online = [], {p.index: 0 for p in pools}
    for t, pool, kind, chips, domain in events:
        online[pool] += chips if kind == "online" else -chips if kind == "release" else 0
        rows.append((t, pools[pool].name, kind, chips, domain, online[pool]))
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "datetime"])
    times = table["time_s"].to_numpy(dtype=np.float64)
    offsets = np.round(times * 1e6).astype("timedelta64[us]")
    dates = np.datetime_as_string(np.datetime64(start_date, "us") + offsets, unit="s")
    table.insert(1, "datetime", dates)
    return dataclasses.replace(fleet, pools=pools), table


def burst_summary(table: pd.DataFrame, fleet, horizon_s: float, serving_pools=frozenset()) -> dict:
    """Per burst pool: counts of requests, onlines and releases; ``rented_chip_hours`` (chips online while
    rented, within the run), ``peak_rented_chips``, ``rental_usd`` (those chip-hours × the pool's rate: what
    the ledger charges), and ``rented_chips_at_end``."""
    out = {}
    for p in fleet.pools:
        if not p.burst or p.index in serving_pools:  # serving burst: in its service's summary
            continue
        rows = table[table["pool"] == p.name]
        kinds = rows["event"].to_numpy()
        chip_hours = p.online_chip_seconds(0.0, horizon_s) / 3600.0
        _, counts = p.chip_steps(horizon_s)
        out[p.name] = {"requests": int((kinds == "request").sum()), "onlines": int((kinds == "online").sum()),
                       "releases": int((kinds == "release").sum()), "rented_chip_hours": chip_hours,
                       "peak_rented_chips": int(max(counts)), "rental_usd": chip_hours * p.chip_cost_usd_per_hour,
                       "rented_chips_at_end": int(counts[-2]) if len(counts) > 1 else 0}
    return out
