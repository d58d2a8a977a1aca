"""Results of a run with a power-cap policy that acts (``throttle``, ``shed``) or a cap schedule
(``sim.training.capping``): ``capping.csv`` and the summary's ``power_capping``. Runs under plain admission
control with a fixed cap write neither, so they write exactly what they wrote before."""

from __future__ import annotations

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
