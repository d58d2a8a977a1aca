"""The fluid LLM family: arrival rates per time bin served by replica capacity (``sim.serving.fluid.serve``)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from sim.serving.accounting import group_cost_per_bin, replica_events, units_per_bin
from sim.serving.burst import BurstGroups, interval_attainment
from sim.serving.failures import availability
from sim.serving.family import FluidResults, ServiceRun
from sim.serving.fluid.serve import serve_fluid
from sim.serving.fluid.summary import fluid_summary
from sim.serving.llm.plan import plan_groups
from sim.serving.throttle import apply_clocks


class FluidService(BurstGroups, FluidResults, ServiceRun):
    """An LLM service at ``fidelity: fluid``: its traffic is drawn while serving, never request by request.

    A replica group with ``burst`` (at most one, ``sim.serving.burst``) is left out of ``scaled_groups`` until
    served: the service is served once without it (traffic from a copy of the stream), then again with one
    windowed copy of it per rental window (numbered after the service's groups)."""

    def __init__(self, index, service, context):
        super().__init__(index, service, context)
        plans = plan_groups(index, service, context.fleet, context.catalog, context.porting)
        if context.failures is not None:  # replicas are up a share of the time they are active (sim.serving.failures)
            plans = [replace(plan, availability=availability(context.failures, plan.pool, plan.chips_per_replica))
                     for plan in plans]
        self.scaled_groups = self.hold_out_burst(plans)
        self.result: dict | None = None

    def serve(self, switches: dict) -> None:
        c = self.context
        apply_clocks(self)
        if self.burst_plan is not None:
            first = serve_fluid(self.service, self.scaled_groups, c.horizon_s, c.bin_width_s, c.base_dir,
                                copy.deepcopy(c.rng), c.start)
            self.add_windows(interval_attainment(first["edges"], first["offered_per_bin"], first["met_per_bin"],
                                                 self.burst_config.interval, c.horizon_s))
        self.result = serve_fluid(self.service, self.scaled_groups, c.horizon_s, c.bin_width_s, c.base_dir, c.rng,
                                  c.start)

    def busy_chip_seconds(self):
        return [(plan.pool, busy) for plan, busy in zip(self.scaled_groups, self.result["busy_chip_s"])]

    def energy_chip_seconds(self):
        return [(plan.pool, energy) for plan, energy in zip(self.scaled_groups, self.result["energy_chip_s"])]

    def cost_per_bin(self, edges: np.ndarray):
        """Cost per bin of every group (all replicas, as the summary counts them); the summary's output tokens
        spread over the bins by requests served."""
        fleet, r = self.context.fleet, self.result
        cost = sum(group_cost_per_bin(fleet.pools[plan.pool], fleet.site, plan.chips_per_replica,
                                      replica_events(plan.replicas, None, plan.window), energy, edges,
                                      plan.clock)
                   for plan, energy in zip(self.scaled_groups, r["energy_chip_s"]))
        tokens = round(sum(part["output_tokens"] for part in r["groups"]))
        return "tokens", cost, units_per_bin(edges, per_bin=r["served_per_bin"], total=tokens)

    def summary(self) -> dict:
        summary = fluid_summary(self.service, self.context.fleet, self.scaled_groups, self.result,
                                self.context.horizon_s)
        if self.context.failures is not None:  # the expected share of replica-time up (sim.serving.failures)
            replicas = sum(plan.replicas for plan in self.scaled_groups)
            up = sum(plan.replicas * plan.availability for plan in self.scaled_groups)
            summary["replica_availability"] = float(up / replicas) if replicas else 1.0
        return self.with_burst_summary(summary)
