"""Results of a run with a power-cap policy that acts (``throttle``, ``shed``) or a cap schedule
(``sim.training.capping``): ``capping.csv`` and the summary's ``power_capping``. Runs under plain admission
control with a fixed cap write neither, so they write exactly what they wrote before."""

from __future__ import annotations

import numpy as np
import pandas as pd

CAPPING_COLUMNS = ["time_s", "policy", "action", "job", "pool", "clock_frac", "job_power_w", "site_committed_w",
                   "cap_w", "priority", "budget"]


def capping_rows(rows: list[tuple]) -> pd.DataFrame:
    """One row per action: a cap change (``cap``), a clock lowered (``throttle``) or raised (``restore``), a job
    paused (``shed``); ``job_power_w`` is the job's facility power after the action (0 when shed) and
    ``site_committed_w`` the site's committed facility power right after it [W] (within one event, a job that just
    started counts at full clock until its own row: the site is within the cap after the event's last row);
    ``priority`` is the job's power-cap priority (empty on ``cap`` rows)."""
    table = pd.DataFrame(rows, columns=CAPPING_COLUMNS)
    return table.astype({"priority": "Int64"})


def capping_summary(outcome: dict, kind: str, replica_chip_hours: float | None = None) -> dict:
    """Policy, number of actions by kind, throttled chip-hours (training chips running below full clock × hours),
    lost chip-hours (full-speed work not done because of slower clocks), jobs shed, and the highest committed power
    after any event against the cap then [W]; under ``throttle`` and ``shed``, ``throttled_replica_chip_hours``
    (inference replica chips held below full clock × hours, ``sim.serving.throttle``)."""
    rows = outcome["rows"]
    actions = {a: sum(1 for r in rows if r[2] == a) for a in ("cap", "throttle", "restore", "shed")}
    over = max((p - cap for _, p, cap in outcome["trace"]), default=float("-inf"))
    return {"policy": kind, "events": len(rows), **{f"{a}_events": n for a, n in actions.items()},
            "throttled_chip_hours": outcome["throttled_chip_hours"], "lost_chip_hours": outcome["lost_chip_hours"],
            "shed_jobs": outcome["shed_jobs"], "max_committed_over_cap_w": over if over > float("-inf") else None,
            **({} if replica_chip_hours is None else {"throttled_replica_chip_hours": replica_chip_hours}),
            **({"budgets": budget_summary(outcome, rows)} if "budgets" in outcome else {})}


def budget_summary(outcome: dict, rows: list[tuple]) -> dict:
    """With rack or row budgets: per level (``site``, ``rack``, ``row``) the actions it took (``throttle``,
    ``restore``, ``shed`` rows naming a budget of that level), and for racks and rows the number of budgets, the
    oversubscription (largest full-load IT power of a budget's chips / its budget: Σ rack peaks / row budget) and
    the peak utilisation (largest committed IT power / budget after any event); for the site the peak committed
    facility power / cap (None without a cap)."""
    out = {}
    for level in ("site", "rack", "row"):
        counts = {f"{a}_events": sum(1 for r in rows if r[2] == a and r[10].split(":")[0] == level)
                  for a in ("throttle", "restore", "shed")}
        out[level] = {**counts, **outcome["budgets"].get(level, {})}
    trace = outcome["trace"]
    out["site"]["peak_utilisation"] = max((p / cap for _, p, cap in trace), default=None)
    return {level: data for level, data in out.items() if level == "site" or "budgets" in data}


def budget_series(names: list[str], kinds: list[str], limits_w: list[float], times_s, budgets, utils,
                  edges: np.ndarray) -> dict[str, np.ndarray]:
    """Time-series columns of the rack and row budgets (``sim.fleet.budgets`` layout: ``names`` ``KIND:POOL:k``,
    ``kinds``, ``limits_w`` [W]) from the trace ``sim.training.budgets.BudgetLoads.record`` keeps (``times_s``,
    ``budgets``, ``utils``: each budget's committed IT power / budget from each time on, its first entry at 0).
    Per pool with that kind of budget: ``rack_budget_util_max.<pool>`` and ``row_budget_util_max.<pool>``, the
    highest utilisation of any of its racks (rows) during the bin: the exact maximum over the committed state after
    every event in the bin and the state carried into it (a state within one event, before the policy acted, is
    not seen, as the summary's ``peak_utilisation``); ``row_budget_kw.<pool>``, Σ of its row budgets [kW]."""
    starts, n = edges[:-1], len(edges) - 1
    times_s, budgets, utils = (np.asarray(times_s, dtype=np.float64), np.asarray(budgets, dtype=np.int64),
                               np.asarray(utils, dtype=np.float64))
    order = np.argsort(budgets, kind="stable")  # by budget, each in time order
    times_s, budgets, utils = times_s[order], budgets[order], utils[order]
    bounds = np.searchsorted(budgets, np.arange(len(names) + 1))
    bins = np.searchsorted(edges, times_s, side="right") - 1
    groups: dict[tuple[str, str], list[int]] = {}
    for b, (name, kind) in enumerate(zip(names, kinds)):
        groups.setdefault((kind, name[len(kind) + 1:name.rindex(":")]), []).append(b)
    out: dict[str, np.ndarray] = {}
    for kind in ("rack", "row"):
        for (k, pool), members in groups.items():
            if k != kind:
                continue
            peak = np.zeros(n)
            for b in members:
                lo, hi = bounds[b], bounds[b + 1]
                if lo == hi:
                    continue
                held = np.searchsorted(times_s[lo:hi], starts, side="right") - 1  # the entry in force at a bin start
                np.maximum(peak, np.where(held >= 0, utils[lo:hi][np.maximum(held, 0)], 0.0), out=peak)
                inside = (bins[lo:hi] >= 0) & (bins[lo:hi] < n)
                np.maximum.at(peak, bins[lo:hi][inside], utils[lo:hi][inside])
            out[f"{kind}_budget_util_max.{pool}"] = peak
    for (kind, pool), members in groups.items():
        if kind == "row":
            out[f"row_budget_kw.{pool}"] = np.full(n, sum(limits_w[b] for b in members) / 1e3)
    return out
