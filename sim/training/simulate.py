"""Run training: a fresh SimPy environment, the cluster process and its scheduler, to the horizon."""

from __future__ import annotations

from typing import Callable

import simpy

from sim.fleet import Fleet
from sim.fleet.budgets import budget_layout
from sim.policies.capping import lowest_busy_power_frac
from sim.policies.registry import registry
from sim.training.budgets import BudgetLoads
from sim.training.capping import PowerCap, compute_shares
from sim.training.cluster import Cluster
from sim.training.power import job_activity
from sim.training.prepare import PreparedJobs


def simulate_training(fleet: Fleet, jobs: PreparedJobs, horizon_s: float, scheduler_config,
                      progress: Callable[[float], None] | None = None, scaling_schedule=(),
                      checkpoint_interval_s: float = 3600.0, burst_policies=(), failures=None,
                      failure_rng=None, power_cap_config=None, cap_schedule=(), priorities=None,
                      inference_power=None, shifting=None) -> Cluster:
    """Simulate training jobs on ``fleet`` over [0, horizon_s]; returns the finished cluster state.

    ``scheduler_config`` is the scenario's ``policy.scheduler`` section; its ``kind`` picks the class.
    ``scaling_schedule`` is ``autoscale.ScalingPlan.schedule`` (inference replicas on shared pools);
    ``burst_policies`` are ``(pool index, policy.burst entry)`` pairs (``sim.training.burst``); ``failures`` a
    ``FailureConfig`` drawing from ``failure_rng`` (``sim.training.failures``; None: no failures).
    ``power_cap_config`` is ``policy.power_cap`` (None: admission); ``cap_schedule`` ``((t [s], cap [W]), ...)``
    the cap's later values (``sim.training.capping``); ``priorities`` each job's power-cap priority (None: all 0);
    ``inference_power`` ``(bin starts [s], inference facility power per bin [W], its full-load reservation [W])``,
    counted as it draws under ``throttle`` and ``shed``; ``shifting`` a ``sim.training.shifting.Shifting`` when the
    training jobs are deferrable (None: none is held). Rack and row budgets on the fleet's
    pools (``sim.training.budgets``) bring the capping policy in too, ``admission`` included.
    """
    env = simpy.Environment()
    scheduler_cls = registry("scheduler")[scheduler_config.kind]
    power_cap = budgets = None
    layout = budget_layout(fleet.pools)
    if layout is not None:
        low = lowest_busy_power_frac(power_cap_config) if power_cap_config is not None else 1.0
        budgets = lambda c: BudgetLoads(c, layout, low)  # noqa: E731
    if power_cap_config is not None:
        policy = registry("capping")[power_cap_config.kind](power_cap_config)
        if policy.acts or cap_schedule or layout is not None:
            shares = compute_shares(jobs)
            activity = job_activity(jobs)
            power_cap = lambda c: PowerCap(c, policy, cap_schedule, shares, priorities,  # noqa: E731
                                           inference_power, activity)
    cluster = Cluster(env, fleet, jobs, horizon_s, lambda c: scheduler_cls(c, scheduler_config), progress=progress,
                      scaling_schedule=scaling_schedule, checkpoint_interval_s=checkpoint_interval_s,
                      burst_policies=burst_policies, failures=failures, failure_rng=failure_rng,
                      power_cap=power_cap, shifting=shifting, budgets=budgets)
    env.run(until=cluster.process)
    return cluster
