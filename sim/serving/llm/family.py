"""The request-level LLM family: every request through continuous batching in the serving kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.kernels.serving_reference import DONE
from sim.serving.accounting import group_cost_per_bin, replica_events, units_per_bin
from sim.serving.autoscale import window_switches
from sim.serving.burst import BurstGroups, rental_outages, request_attainment
from sim.serving.family import ServiceRun
from sim.serving.llm.plan import plan_groups
from sim.serving.llm.requests import service_requests
from sim.serving.llm.serve import serve_requests
from sim.serving.llm.summary import llm_requests_table, llm_summary, slo_outcome
from sim.serving.throttle import apply_clocks


class LlmRequestService(BurstGroups, ServiceRun):
    """An LLM service at ``fidelity: request``. A burst group (``sim.serving.burst``) is served as at the fluid
    fidelity: first without it, then with one windowed copy per rental, on the same requests."""

    def __init__(self, index, service, context):
        super().__init__(index, service, context)
        self.scaled_groups = self.hold_out_burst(plan_groups(index, service, context.fleet, context.catalog,
                                                             context.porting))
        self.requests: pd.DataFrame | None = None
        self.result: dict | None = None

    def draw(self) -> None:
        c = self.context
        self.requests = service_requests(self.service, c.base_dir, c.horizon_s, c.rng, c.start)

    def failing_groups(self) -> list:
        return list(self.scaled_groups)

    def requests_for_scaling(self) -> pd.DataFrame | None:
        return self.requests

    def serve(self, switches: dict) -> None:
        c = self.context
        apply_clocks(self, switches)
        if self.burst_plan is not None:
            first = serve_requests(self.service, self.scaled_groups, self.requests, switches, c.horizon_s,
                                   c.bin_width_s, self.outages)
            offered, met = slo_outcome(first, self.service.slo)[:2]
            arrival = self.requests["arrival_s"].to_numpy()
            copies = self.add_windows(request_attainment(arrival, offered, met, self.burst_config.interval,
                                                         c.horizon_s))
            for plan in copies:
                switches[(plan.service, plan.group)] = window_switches(plan.replicas, plan.window, c.horizon_s)
            self.outages = rental_outages(c, copies, self.outages)  # the rented replicas fail while rented
        self.result = serve_requests(self.service, self.scaled_groups, self.requests, switches, c.horizon_s,
                                     c.bin_width_s, self.outages)

    def busy_chip_seconds(self):
        return [(plan.pool, busy) for plan, busy in zip(self.scaled_groups, self.result["busy_chip_s"])]

    def energy_chip_seconds(self):
        return [(plan.pool, energy) for plan, energy in zip(self.scaled_groups, self.result["energy_chip_s"])]

    def cost_per_bin(self, edges: np.ndarray):
        """Cost per bin of every group (its switches' active replicas), tokens of completed requests at
        their finish."""
        fleet, r = self.context.fleet, self.result
        cost = sum(group_cost_per_bin(fleet.pools[plan.pool], fleet.site, plan.chips_per_replica,
                                      replica_events(plan.replicas, switch), energy, edges, plan.clock)
                   for plan, switch, energy in zip(self.scaled_groups, r["switches"], r["energy_chip_s"]))
        done = r["status"] == DONE
        tokens = units_per_bin(edges, r["finish_s"][done], r["requests"]["output_tokens"].to_numpy()[done])
        return "tokens", cost, tokens

    def summary(self) -> dict:
        return self.with_burst_summary(llm_summary(self.service, self.context.fleet, self.scaled_groups,
                                                   self.result, self.context.horizon_s))

    def requests_table(self) -> pd.DataFrame:
        return llm_requests_table(self.service, self.context.fleet, self.scaled_groups, self.result)
