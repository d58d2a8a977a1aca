"""The ranking family: DLRM-class requests through dynamic batching in the ranking kernel (``ranking``), or
as arrival rates per time bin through batch-service queues (``ranking-fluid``, ``sim.serving.ranking.fluid``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.kernels.serving_reference import DONE
from sim.serving.accounting import group_cost_per_bin, replica_events, units_per_bin
from sim.serving.family import FluidResults, ServiceRun
from sim.serving.ranking.fluid import ranking_fluid_summary, serve_ranking_fluid
from sim.serving.ranking.serve import plan_service, serve_service
from sim.serving.ranking.summary import ranking_requests_table, ranking_summary


class _RankingRun(ServiceRun):
    """What both ranking fidelities share: the replicas' plan (batch-time constants per group) and busy time."""

    def __init__(self, index, service, context):
        super().__init__(index, service, context)
        self.plan = plan_service(index, service, context.fleet, context.catalog, context.porting)
        self.result: dict | None = None

    def busy_chip_seconds(self):
        return list(zip(self.plan.pools, self.result["busy_chip_s"]))

    def _cost(self, edges: np.ndarray) -> np.ndarray:
        """Cost per bin of every group: all its replicas while the pool is online and the group active (as the summary
        counts)."""
        fleet, plan = self.context.fleet, self.plan
        windows = plan.windows or (None,) * len(plan.pools)
        return sum(group_cost_per_bin(fleet.pools[pool], fleet.site, chips, replica_events(replicas, None, window),
                                      busy, edges)
                   for pool, replicas, chips, busy, window in zip(plan.pools, plan.replicas, plan.chips_per_replica,
                                                                  self.result["busy_chip_s"], windows))

    def windowed_groups(self) -> list[tuple]:
        p = self.plan
        return [(w, p.pools[g], p.chips_per_replica[g], p.replicas[g]) for g, w in enumerate(p.windows)
                if w is not None]


class RankingService(_RankingRun):
    """A ``family: ranking`` service; its requests come from the ``ranking`` stream while serving."""

    def serve(self, switches: dict) -> None:
        c = self.context
        self.result = serve_service(self.plan, self.service, c.horizon_s, c.bin_width_s, c.ranking_rng,
                                    c.base_dir, c.start)

    def cost_per_bin(self, edges: np.ndarray):
        """Completed requests at their finish."""
        done = self.result["status"] == DONE
        return "requests", self._cost(edges), units_per_bin(edges, self.result["finish_s"][done],
                                                            np.ones(int(done.sum())))

    def summary(self) -> dict:
        return ranking_summary(self.plan, self.service, self.context.fleet, self.result, self.context.horizon_s)

    def requests_table(self) -> pd.DataFrame:
        return ranking_requests_table(self.plan, self.service, self.context.fleet, self.result)


class RankingFluidService(FluidResults, _RankingRun):
    """A ``family: ranking`` service at ``fidelity: fluid``: its traffic is drawn while serving (from the
    ``inference`` stream, as LLM fluid services), never query by query."""

    def serve(self, switches: dict) -> None:
        c = self.context
        self.result = serve_ranking_fluid(self.plan, self.service, c.horizon_s, c.bin_width_s, c.base_dir, c.rng,
                                          c.start, micro_rng=c.ranking_rng)

    def cost_per_bin(self, edges: np.ndarray):
        """The summary's completed requests spread over the bins by requests served."""
        completed = round(sum(part["completed"] for part in self.result["groups"]))
        return "requests", self._cost(edges), units_per_bin(edges, per_bin=self.result["served_per_bin"],
                                                            total=completed)

    def summary(self) -> dict:
        return ranking_fluid_summary(self.plan, self.service, self.context.fleet, self.result,
                                     self.context.horizon_s)
