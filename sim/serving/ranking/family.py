"""The ranking family: DLRM-class requests through dynamic batching in the ranking kernel (``ranking``), or
as arrival rates per time bin through batch-service queues (``ranking-fluid``, ``sim.serving.ranking.fluid``)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd

from sim.kernels.serving_reference import DONE, NOT_OFFERED
from sim.serving.accounting import group_cost_per_bin, replica_events, units_per_bin
from sim.serving.burst import (
    burst_summary,
    interval_attainment,
    realised_steps,
    rental_outages,
    rental_windows,
    request_attainment,
)
from sim.serving.failures import availability
from sim.serving.family import FluidResults, ServiceRun
from sim.serving.ranking.fluid import ranking_fluid_summary, serve_ranking_fluid
from sim.serving.ranking.serve import failing_groups, plan_service, serve_service
from sim.serving.ranking.summary import ranking_requests_table, ranking_summary


class _RankingRun(ServiceRun):
    """What both ranking fidelities share: the replicas' plan (batch-time constants per group) and busy time.
    A serving-burst group (``sim.serving.burst``, at most one) is left out of the plan for the first pass; once
    its rental windows are known the plan takes one windowed copy of it per window, after the other groups."""

    def __init__(self, index, service, context):
        super().__init__(index, service, context)
        bursting = [g for g, group in enumerate(service.replicas) if group.burst is not None]
        self.burst_group = bursting[0] if bursting else None
        self.burst_windows: list = []
        groups = None
        if self.burst_group is not None:
            windows = getattr(context.fleet, "group_windows", {})
            groups = [(g, windows.get((index, g))) for g in range(len(service.replicas)) if g != self.burst_group]
        self.plan = plan_service(index, service, context.fleet, context.catalog, context.porting, groups)
        self.result: dict | None = None

    def _with_rentals(self, attainment: np.ndarray) -> None:
        """Rent from the first pass's per-interval ``attainment`` (``rental_windows``) and plan the copies."""
        group = self.service.replicas[self.burst_group]
        self.burst_windows = rental_windows(attainment, group.burst, self._burst_limit())
        windows = getattr(self.context.fleet, "group_windows", {})
        groups = [(g, windows.get((self.index, g))) for g in range(len(self.service.replicas))
                  if g != self.burst_group] + [(self.burst_group, window) for window in self.burst_windows]
        c = self.context
        self.plan = plan_service(self.index, self.service, c.fleet, c.catalog, c.porting, groups)

    def _burst_pool(self):
        return self.context.fleet.pools[self._burst_pool_index()]

    def _burst_pool_index(self) -> int:
        name = self.service.replicas[self.burst_group].pool
        return next(p.index for p in self.context.fleet.pools if p.name == name)

    def _burst_limit(self) -> tuple[float, float]:
        """The part of the run the burst group's pool is online [s]."""
        return self._burst_pool().online_window(self.context.horizon_s)

    def burst_rentals(self) -> list[tuple]:
        if self.burst_group is None:
            return []
        group = self.service.replicas[self.burst_group]
        return [(self._burst_pool_index(), realised_steps(self.burst_windows, group.count * group.chips_per_replica,
                                                          self._burst_limit()))]

    def _with_burst_summary(self, summary: dict) -> dict:
        if self.burst_group is not None:
            group = self.service.replicas[self.burst_group]
            summary["burst"] = burst_summary(self.burst_windows, group.count, group.chips_per_replica,
                                             self._burst_pool().chip_cost_usd_per_hour)
        return summary

    def busy_chip_seconds(self):
        return list(zip(self.plan.pools, self.result["busy_chip_s"]))

    def energy_chip_seconds(self):
        return list(zip(self.plan.pools, self.result["energy_chip_s"]))

    def _cost(self, edges: np.ndarray) -> np.ndarray:
        """Cost per bin of every group: all its replicas while the pool is online and the group active (as the summary
        counts)."""
        fleet, plan = self.context.fleet, self.plan
        windows = plan.windows or (None,) * len(plan.pools)
        return sum(group_cost_per_bin(fleet.pools[pool], fleet.site, chips, replica_events(replicas, None, window),
                                      energy, edges)
                   for pool, replicas, chips, energy, window in zip(plan.pools, plan.replicas, plan.chips_per_replica,
                                                                    self.result["energy_chip_s"], windows))

    def windowed_groups(self) -> list[tuple]:
        p = self.plan
        return [(w, p.pools[g], p.chips_per_replica[g], p.replicas[g], (p.service, g)) for g, w in enumerate(p.windows)
                if w is not None]


class RankingService(_RankingRun):
    """A ``family: ranking`` service; its requests come from the ``ranking`` stream while serving. With a
    ``failures`` section its groups lose replicas to drawn outages while active (all run, a window, a serving-burst
    group's rentals; ``sim.serving.failures``; the kernel reroutes or loses their queries)."""

    def failing_groups(self) -> list:
        return failing_groups(self.plan)

    def _with_rentals(self, attainment: np.ndarray) -> None:
        """Plan the rented copies (``_RankingRun._with_rentals``); they fail while rented (``rental_outages``)."""
        super()._with_rentals(attainment)
        copies = failing_groups(self.plan, len(self.service.replicas) - 1)  # the copies follow the other groups
        self.outages = rental_outages(self.context, copies, self.outages)

    def serve(self, switches: dict) -> None:
        """Serve the requests; with a burst group, first without it on a copy of the stream (the same requests),
        then with its rentals (``sim.serving.burst``)."""
        c = self.context
        if self.burst_group is not None:
            first = serve_service(self.plan, self.service, c.horizon_s, c.bin_width_s, copy.deepcopy(c.ranking_rng),
                                  c.base_dir, c.start, self.outages)
            arrival = first["requests"]["arrival_s"].to_numpy()
            offered = first["status"] != NOT_OFFERED
            met = (first["status"] == DONE) & (first["finish_s"] - arrival <= self.service.slo.latency_p99_ms / 1e3)
            self._with_rentals(request_attainment(arrival, offered, met,
                                                  self.service.replicas[self.burst_group].burst.interval, c.horizon_s))
        self.result = serve_service(self.plan, self.service, c.horizon_s, c.bin_width_s, c.ranking_rng,
                                    c.base_dir, c.start, self.outages)

    def cost_per_bin(self, edges: np.ndarray):
        """Completed requests at their finish."""
        done = self.result["status"] == DONE
        return "requests", self._cost(edges), units_per_bin(edges, self.result["finish_s"][done],
                                                            np.ones(int(done.sum())))

    def summary(self) -> dict:
        return self._with_burst_summary(ranking_summary(self.plan, self.service, self.context.fleet, self.result,
                                                        self.context.horizon_s))

    def requests_table(self) -> pd.DataFrame:
        return ranking_requests_table(self.plan, self.service, self.context.fleet, self.result)


class RankingFluidService(FluidResults, _RankingRun):
    """A ``family: ranking`` service at ``fidelity: fluid``: its traffic is drawn while serving (from the
    ``inference`` stream, as LLM fluid services), never query by query. With a ``failures`` section its groups
    serve by availability while active (``sim.serving.ranking.fluid``: ``A × replicas`` replicas)."""

    def _available(self) -> None:
        """Give the plan's groups their replicas' availability (failures only; a windowed group, a serving-burst
        group's copies included: up that share of the time they are active)."""
        failures = self.context.failures
        if failures is None:
            return
        p = self.plan
        self.plan = replace(p, availability=tuple(availability(failures, pool, chips)
                                                  for pool, chips in zip(p.pools, p.chips_per_replica)))

    def serve(self, switches: dict) -> None:
        """Serve the rates; with a burst group, first without it on copies of the streams, then with its rentals
        (``sim.serving.burst``)."""
        c = self.context
        self._available()
        if self.burst_group is not None:
            first = serve_ranking_fluid(self.plan, self.service, c.horizon_s, c.bin_width_s, c.base_dir,
                                        copy.deepcopy(c.rng), c.start, micro_rng=copy.deepcopy(c.ranking_rng))
            self._with_rentals(interval_attainment(first["edges"], first["offered_per_bin"], first["met_per_bin"],
                                                   self.service.replicas[self.burst_group].burst.interval,
                                                   c.horizon_s))
            self._available()
        self.result = serve_ranking_fluid(self.plan, self.service, c.horizon_s, c.bin_width_s, c.base_dir, c.rng,
                                          c.start, micro_rng=c.ranking_rng)

    def cost_per_bin(self, edges: np.ndarray):
        """The summary's completed requests spread over the bins by requests served."""
        completed = round(sum(part["completed"] for part in self.result["groups"]))
        return "requests", self._cost(edges), units_per_bin(edges, per_bin=self.result["served_per_bin"],
                                                            total=completed)

    def summary(self) -> dict:
        summary = ranking_fluid_summary(self.plan, self.service, self.context.fleet, self.result,
                                        self.context.horizon_s)
        if self.context.failures is not None:  # the expected share of replica-time up (sim.serving.failures)
            p = self.plan
            replicas = sum(p.replicas)
            summary["replica_availability"] = (float(sum(n * p.up(g) for g, n in enumerate(p.replicas)) / replicas)
                                               if replicas else 1.0)
        return self._with_burst_summary(summary)
