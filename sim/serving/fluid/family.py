"""The fluid LLM family: arrival rates per time bin served by replica capacity (``sim.serving.fluid.serve``)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from sim.serving import burst
from sim.serving.accounting import group_cost_per_bin, replica_events, units_per_bin
from sim.serving.family import FluidResults, ServiceRun
from sim.serving.fluid.serve import serve_fluid
from sim.serving.fluid.summary import fluid_summary
from sim.serving.llm.plan import plan_groups


class FluidService(FluidResults, ServiceRun):
    """An LLM service at ``fidelity: fluid``: its traffic is drawn while serving, never request by request.

    A replica group with ``burst`` (at most one, ``sim.serving.burst``) is left out of ``scaled_groups`` until
    served: the service is served once without it (traffic from a copy of the stream), then again with one
    windowed copy of it per rental window (numbered after the service's groups)."""

    def __init__(self, index, service, context):
        super().__init__(index, service, context)
        plans = plan_groups(index, service, context.fleet, context.catalog, context.porting)
        bursting = [g for g, group in enumerate(service.replicas) if group.burst is not None]
        self.burst_plan = plans[bursting[0]] if bursting else None  # validation allows one burst group
        self.burst_windows: list[tuple[float, float]] = []
        self.scaled_groups = [plan for g, plan in enumerate(plans) if g not in bursting]
        self.result: dict | None = None

    def serve(self, switches: dict) -> None:
        c = self.context
        if self.burst_plan is not None:
            config = self.service.replicas[self.burst_plan.group].burst
            first = serve_fluid(self.service, self.scaled_groups, c.horizon_s, c.bin_width_s, c.base_dir,
                                copy.deepcopy(c.rng), c.start)
            attainment = burst.interval_attainment(first["edges"], first["offered_per_bin"], first["met_per_bin"],
                                                   config.interval, c.horizon_s)
            self.burst_windows = burst.rental_windows(attainment, config, self._burst_limit())
            n = len(self.service.replicas)
            self.scaled_groups = self.scaled_groups + [replace(self.burst_plan, group=n + k, window=window)
                                                       for k, window in enumerate(self.burst_windows)]
        self.result = serve_fluid(self.service, self.scaled_groups, c.horizon_s, c.bin_width_s, c.base_dir, c.rng,
                                  c.start)

    def _burst_limit(self) -> tuple[float, float]:
        """The part of the run the burst group's pool is online [s]."""
        return self.context.fleet.pools[self.burst_plan.pool].online_window(self.context.horizon_s)

    def burst_rentals(self) -> list[tuple]:
        if self.burst_plan is None:
            return []
        plan = self.burst_plan
        return [(plan.pool, burst.realised_steps(self.burst_windows, plan.replicas * plan.chips_per_replica,
                                                 self._burst_limit()))]

    def busy_chip_seconds(self):
        return [(plan.pool, busy) for plan, busy in zip(self.scaled_groups, self.result["busy_chip_s"])]

    def cost_per_bin(self, edges: np.ndarray):
        """Cost per bin of every group (all replicas, as the summary counts them); the summary's output tokens
        spread over the bins by requests served."""
        fleet, r = self.context.fleet, self.result
        cost = sum(group_cost_per_bin(fleet.pools[plan.pool], fleet.site, plan.chips_per_replica,
                                      replica_events(plan.replicas, None, plan.window), busy, edges)
                   for plan, busy in zip(self.scaled_groups, r["busy_chip_s"]))
        tokens = round(sum(part["output_tokens"] for part in r["groups"]))
        return "tokens", cost, units_per_bin(edges, per_bin=r["served_per_bin"], total=tokens)

    def summary(self) -> dict:
        summary = fluid_summary(self.service, self.context.fleet, self.scaled_groups, self.result,
                                self.context.horizon_s)
        if self.burst_plan is not None:
            plan = self.burst_plan
            summary["burst"] = burst.burst_summary(self.burst_windows, plan.replicas, plan.chips_per_replica,
                                                   self.context.fleet.pools[plan.pool].chip_cost_usd_per_hour)
        return summary
