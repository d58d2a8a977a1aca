"""The serving stage of a run: every inference service, whatever its family, before training.

Inference has strict priority over training and its autoscaler decides from the requests alone, so
serving runs first, over the whole horizon, and hands training a plain timeline: the autoscaler's
reservation schedule on shared pools. Steps (``sim.serving.family`` says what each family does in
each): plan every service, draw the request-level ones' requests, size autoscaled groups, serve every
service, then report.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.policies.capping import power_frac
from sim.serving.autoscale import ScalingPlan, plan_scaling, window_changes, window_switches
from sim.serving.failures import draw_outages, hold_in_repair, hold_scaled_in_repair
from sim.serving.family import ServiceRun, ServingContext, family_key
from sim.serving.llm.summary import REQUEST_COLUMNS
from sim.serving.throttle import throttled_chip_hours, throttled_power


@dataclass
class ServingOutcome:
    """What serving hands the later stages."""

    services: list[ServiceRun]
    scaling: ScalingPlan

    @property
    def scaled_groups(self) -> list:
        """Every LLM replica group, in service order (the autoscaler's numbering)."""
        return [plan for run in self.services for plan in run.scaled_groups]

    def busy_chip_seconds_by_pool(self) -> dict[int, np.ndarray]:
        """Chip-seconds of inference work per time bin, summed over the replica groups of each pool."""
        by_pool: dict[int, np.ndarray] = {}
        for run in self._llm_first():
            for pool, busy in run.busy_chip_seconds():
                by_pool[pool] = by_pool.get(pool, 0) + busy
        return by_pool

    def energy_chip_seconds_by_pool(self) -> dict[int, np.ndarray]:
        """Energy-weighted busy chip-seconds of inference work per time bin (``sim.serving.activity``), summed
        over the replica groups of each pool."""
        by_pool: dict[int, np.ndarray] = {}
        for run in self._llm_first():
            for pool, energy in run.energy_chip_seconds():
                by_pool[pool] = by_pool.get(pool, 0) + energy
        return by_pool

    def drawn_chip_seconds_by_pool(self) -> dict[int, np.ndarray]:
        """``energy_chip_seconds_by_pool`` with each slowed replica copy's chip-seconds × ``power_frac`` of its clock
        (``sim.serving.throttle``): per bin, the busy increment inference draws in units of full-load chip-seconds
        (the work's activity, ``sim.serving.activity``, times the clock's power share)."""
        by_pool: dict[int, np.ndarray] = {}
        for run in self._llm_first():
            plans = run.scaled_groups if run.service.family == "llm" else None
            for k, (pool, busy) in enumerate(run.energy_chip_seconds()):
                f = plans[k].clock if plans is not None else 1.0
                by_pool[pool] = by_pool.get(pool, 0) + (busy if f >= 1.0 else busy * power_frac(f))
        return by_pool

    def throttled_power(self, fleet, edges: np.ndarray) -> dict[int, tuple]:
        """What slowed replicas save per pool, as step events (``sim.serving.throttle.throttled_power``)."""
        plans, busy = [], []
        for run in self.services:
            if run.service.family == "llm":
                plans += run.scaled_groups
                busy += [b for _, b in run.energy_chip_seconds()]
        return throttled_power(plans, busy, fleet, edges)

    def throttled_chip_hours(self) -> float:
        """Replica chips held below full clock × hours."""
        return throttled_chip_hours([plan for run in self.services if run.service.family == "llm"
                                     for plan in run.scaled_groups])

    def summaries(self) -> dict:
        """``summary["inference"]``: one entry per service."""
        return {run.name: run.summary() for run in self.services}

    def requests_table(self) -> pd.DataFrame:
        """One row per simulated request: the LLM services' rows, then the ranking services' (an ``items``
        column appears only when a ranking service ran, so LLM-only runs keep their columns)."""
        llm, ranking = [], []
        for run in self.services:
            table = run.requests_table()
            if table is not None:
                (ranking if run.service.family == "ranking" else llm).append(table)
        llm_rows = pd.concat(llm, ignore_index=True) if llm else pd.DataFrame(columns=REQUEST_COLUMNS)
        ranking_rows = pd.concat(ranking, ignore_index=True) if ranking else pd.DataFrame()
        if ranking_rows.empty:
            return llm_rows
        if llm_rows.empty:
            return ranking_rows
        return pd.concat([llm_rows, ranking_rows], ignore_index=True)

    def cost_per_bin(self, edges: np.ndarray) -> dict[str, tuple]:
        """Services whose family says: name -> (unit, cost per bin [USD], units per bin)
        (``ServiceRun.cost_per_bin``)."""
        return {run.name: cost for run in self.services if (cost := run.cost_per_bin(edges)) is not None}

    def load_per_bin(self) -> dict[str, tuple]:
        """Fluid services: name -> (bin edges [s], offered per bin, served per bin)."""
        return {run.name: load for run in self.services if (load := run.load_per_bin()) is not None}

    def slo_per_bin(self) -> dict[str, tuple]:
        """Fluid services with an SLO: name -> (bin edges [s], offered per bin, met per bin)."""
        return {run.name: load for run in self.services if (load := run.slo_per_bin()) is not None}

    def _llm_first(self) -> list[ServiceRun]:
        return sorted(self.services, key=lambda run: run.service.family == "ranking")


def serve_all(services, families: dict, context: ServingContext, autoscale_configs,
              phase=lambda name: nullcontext()) -> ServingOutcome:
    """Run the serving stage over the scenario's ``services`` (``workloads.inference``);
    ``families`` maps a ``family_key`` to its ``ServiceRun`` class; ``autoscale_configs`` maps
    ``(service, group)`` to the group's ``autoscale`` section (absent: not autoscaled); ``phase(name)``
    is a context manager around each service's serving (progress on a terminal)."""
    runs = [families[family_key(service)](index, service, context) for index, service in enumerate(services)]
    for run in runs:
        run.draw()
    llm_groups = [plan for run in runs for plan in run.scaled_groups]
    scaling = plan_scaling(llm_groups, autoscale_configs,
                           {run.index: run.requests_for_scaling() for run in runs}, context.fleet, context.horizon_s)
    extra = [entry for run in runs for entry in run.windowed_groups()]
    if extra:  # windowed groups of other families (ranking): numbered after the LLM groups in the schedule
        for k, (window, pool, chips, replicas, _) in enumerate(extra):
            scaling.schedule.extend(window_changes(window, context.horizon_s, len(llm_groups) + k, pool, chips,
                                                   replicas))
        scaling.schedule.sort(key=lambda e: (e[0], e[4] > 0, e[1]))
    if context.failures is not None:  # replica outages, every failing group in service order
        outages = draw_outages([plan for run in runs for plan in run.failing_groups()], context.failures,
                               context.fleet, context.horizon_s, context.failure_rng,
                               {key: events for key, events in scaling.switches.items() if key in autoscale_configs})
        for run in runs:
            run.outages = {key: rows for key, rows in outages.items() if key[0] == run.index}
        windowed = [(k, plan.window, plan.chips_per_replica, plan.replicas, (plan.service, plan.group))
                    for k, plan in enumerate(llm_groups) if plan.window is not None]
        windowed += [(len(llm_groups) + k, window, chips, replicas, key)
                     for k, (window, _, chips, replicas, key) in enumerate(extra)]
        held = [hold_in_repair(scaling.schedule, k, window, chips, replicas, outages[key], context.horizon_s)
                for k, window, chips, replicas, key in windowed  # windowed groups' chips in repair at the window's end
                if key in outages]
        held += [hold_scaled_in_repair(scaling.schedule, k, scaling.switches[key], outages[key], plan.replicas,
                                       autoscale_configs[key].min_count, context.horizon_s)
                 for k, plan in enumerate(llm_groups)  # autoscaled replicas switched off while in repair
                 if (key := (plan.service, plan.group)) in autoscale_configs and key in outages]
        if any(held):
            scaling.schedule.sort(key=lambda e: (e[0], e[4] > 0, e[1]))
    for run in runs:
        with phase(run.name):
            run.serve(scaling.switches)
        for plan in run.scaled_groups:  # a burst group's rental windows are known only once it is served
            if (plan.service, plan.group) not in scaling.switches:
                scaling.switches[(plan.service, plan.group)] = window_switches(plan.replicas, plan.window,
                                                                               context.horizon_s)
    return ServingOutcome(runs, scaling)
