"""Site power-cap policies (``policy.power_cap.kind``): what the training cluster does at the site cap.

* ``admission`` (default, today's behaviour): a job starts only if the site's committed facility power stays within
  the cap with it at full load; running jobs are never slowed or stopped (``sim.training.cluster``).
* ``throttle``: a job starts if the cap holds with every running training job at the minimum clock
  (``min_clock_frac``); then the clocks are set so that committed power meets the cap: the jobs of the highest
  priority (``priority``, default 0) started first keep the full clock, the lowest-priority ones started last are
  slowed first. Inference counts against the cap at its power per time bin (``sim.training.capping``); its LLM
  replicas are slowed only as ``sim.serving.throttle`` decides before training (a service below the training jobs'
  priority, or a cap that cannot hold inference at full load). When a job ends, the freed power raises the slowed
  jobs' clocks again, highest priority and oldest first. A clock change settles the
  job's remaining work and moves its completion; there is no fixed time step. When even the minimum clock does
  not fit (a cap drop), the last-started jobs are shed as below until it does.
* ``shed``: admission control as ``admission``; when the committed power exceeds the cap (a drop of a dated cap,
  ``site.power_cap_mw``, or inference drawing more), the lowest-priority, most recently started training jobs are
  paused with checkpoint semantics
  (``sim.training.sharing.preempt``: work since the last checkpoint is lost and counted) and wait again; they
  resume when admission lets them.
Under ``admission`` a cap drop only stops new starts: running jobs run on above the new cap until they end, and
inference stays reserved at full load (``Fleet.committed_floor_w``).

Clock and power (``power_frac``): the dynamic (busy − idle) power of a chip at clock fraction ``f`` is
``f · V(f)²`` of its full-load value, with the voltage tracking the clock above a floor, ``V(f) = max(f, 0.7)``
(normalised to 1 at the full clock). ``estimate:`` CMOS dynamic power ``P = C·V²·f`` (any VLSI text); a GPU's DVFS
table lowers voltage with clock down to a minimum operating voltage near 0.65–0.75 of the maximum (reported for
V100/A100 DVFS curves in GPU power-management studies); 0.7 taken as a round middle value. Idle (static and
leakage) power is unchanged by the clock.

Clock and speed (``speed_frac``): a job's step time splits into a part that scales with the core clock (compute)
and a part that does not (memory traffic — HBM has its own clock — and networking): speed at ``f`` is
``1 / (c/f + 1 − c)``. ``c`` comes from the step model (``sim.training.steps``): the bottleneck's share of the step
when compute is the bottleneck, otherwise one minus the bottleneck's share (the rest counted as compute: an upper
bound on the clock-sensitive part). Jobs without a step plan (roofline path) count as compute-bound, ``c = 1``.
"""

from __future__ import annotations

import math

from sim.policies.registry import register

COUNTED_AS_DRAWN = ("throttle", "shed")  # policies under which inference counts at its per-bin power, not reserved
VOLTAGE_FLOOR = 0.7  # estimate: minimum operating voltage / maximum voltage of a GPU DVFS table (module docstring)


def power_frac(f: float) -> float:
    """Dynamic power at clock fraction ``f`` as a fraction of full-load dynamic power: ``f · max(f, V_floor)²``."""
    v = f if f > VOLTAGE_FLOOR else VOLTAGE_FLOOR
    return f * v * v


def clock_for_power(x: float) -> float:
    """Inverse of ``power_frac``: the highest clock fraction whose dynamic power fraction is at most ``x`` (0..1)."""
    if x >= 1.0:
        return 1.0
    if x <= 0.0:
        return 0.0
    knee = VOLTAGE_FLOOR ** 3
    return x ** (1.0 / 3.0) if x >= knee else x / (VOLTAGE_FLOOR * VOLTAGE_FLOOR)


def speed_frac(f: float, compute_share: float) -> float:
    """Speed at clock fraction ``f`` of a job whose step is ``compute_share`` clock-bound (module docstring)."""
    if f >= 1.0:
        return 1.0
    return 1.0 / (compute_share / f + 1.0 - compute_share)


def lowest_busy_power_frac(config) -> float:
    """Share of its full-load power increment a job draws at the lowest clock ``config`` (``policy.power_cap``)
    may set: ``power_frac(min_clock_frac)`` under ``throttle``, 1 otherwise."""
    return power_frac(config.min_clock_frac) if config.kind == "throttle" else 1.0


class CappingPolicy:
    """Base: ``admission``. ``fits_power`` decides starts; ``rebalance`` acts after each event of the cluster."""

    acts = False  # whether the cluster must call ``rebalance`` (admission: never, so its runs are unchanged)

    def __init__(self, config):
        self.config = config
        self.min_clock = float(getattr(config, "min_clock_frac", 0.5))


@register("capping", "admission")
class Admission(CappingPolicy):
    """Today's behaviour: admission control only (module docstring)."""


@register("capping", "throttle")
class Throttle(CappingPolicy):
    """Slow the lowest-priority, most recently started training jobs down to ``min_clock_frac`` to keep within the
    cap."""

    acts = True


@register("capping", "shed")
class Shed(CappingPolicy):
    """Pause the lowest-priority, most recently started training jobs (checkpoint semantics) while the cap is
    exceeded."""

    acts = True


def clocks_within(budget_w: float, jobs_w: list[float], min_clock: float) -> list[float] | None:
    """Clock fractions, in the given order (kept first), so that ``Σ w · power_frac(f) <= budget_w``: every job at
    ``min_clock`` at least, then the first jobs raised to full clock one after the other, one partly; None if even
    every job at ``min_clock`` exceeds the budget."""
    floor = power_frac(min_clock)
    spare = budget_w - floor * math.fsum(jobs_w)
    if spare < -1e-9 * max(budget_w, 1.0):
        return None
    clocks = []
    for w in jobs_w:
        if w <= 0.0:
            clocks.append(1.0)
            continue
        room = spare / w + floor  # the power fraction this job may take
        if room >= 1.0:
            clocks.append(1.0)
            spare -= w * (1.0 - floor)
        elif room > floor:
            clocks.append(max(min_clock, clock_for_power(room)))
            spare = 0.0
        else:
            clocks.append(min_clock)
    return clocks
