"""Training-job schedulers, registered under the names used in YAML (``policy.scheduler.kind``).

A scheduler is called by the cluster after every state change with ``freed`` (chips or power became
available) and ``arrived`` (jobs just appended to the queue, in arrival order). It starts jobs through
``cluster.start(job, pool)`` and asks ``cluster.fits(job, pool)`` whether a start is possible now.

* ``fifo`` — strict arrival order; the head job takes the first eligible pool (fleet order) with room;
  if it cannot start, nothing behind it starts (head-of-line blocking).
* ``fifo-backfill`` — as fifo, but when the head is blocked, later jobs within ``backfill_window``
  that fit now start (aggressive backfilling: no reservation protects the head, so very large gangs can
  wait long; the window bounds the work per event).
* ``hetero-aware`` — scans the window like backfill and sends each job to the eligible pool that
  minimises the ``objective``: ``earliest-finish`` (start + run time on that chip, where a busy pool's
  start is estimated by its next completion, a lower bound, so a job may wait for a faster chip) or
  ``cheapest`` (chip-hours × (capex or rental rate + energy at full load), among pools with room now).
"""

from __future__ import annotations

import math

from sim.policies.registry import register


class Scheduler:
    kind = "base"

    def __init__(self, cluster, config):
        self.cluster = cluster
        self.window = config.backfill_window
        self.objective = config.objective

    def schedule(self, freed: bool, arrived: list[int]) -> None:
        raise NotImplementedError

    def choose_pool(self, job: int) -> int | None:
        """The first eligible pool (fleet order) that can start ``job`` now."""
        fits = self.cluster.fits
        for pool in self.cluster.eligible[job]:
            if fits(job, pool):
                return pool
        return None

    def _scan(self, count: int) -> None:
        """Try the first ``count`` queued jobs in order; start those a pool takes now."""
        queue, cluster = self.cluster.queue, self.cluster
        head = [queue.popleft() for _ in range(min(count, len(queue)))]
        kept = []
        for job in head:
            pool = self.choose_pool(job)
            if pool is None:
                kept.append(job)
            else:
                cluster.start(job, pool)
        queue.extendleft(reversed(kept))


@register("scheduler", "fifo")
class Fifo(Scheduler):
    def schedule(self, freed: bool, arrived: list[int]) -> None:
        queue, cluster = self.cluster.queue, self.cluster
        if not freed and len(queue) > len(arrived):
            return  # the head was already blocked and nothing was freed
        while queue:
            pool = self.choose_pool(queue[0])
            if pool is None:
                return
            cluster.start(queue.popleft(), pool)


@register("scheduler", "fifo-backfill")
class FifoBackfill(Scheduler):
    def schedule(self, freed: bool, arrived: list[int]) -> None:
        queue = self.cluster.queue
        if freed:
            if self.cluster.any_room():
                self._scan(self.window)
            return
        waiting_before = len(queue) - len(arrived)
        if waiting_before >= self.window:
            return  # the new jobs are outside the window
        # only the new jobs can change anything: earlier ones were already tried with this capacity
        self._scan_tail(len(arrived))

    def _scan_tail(self, count: int) -> None:
        queue, cluster = self.cluster.queue, self.cluster
        tail = [queue.pop() for _ in range(count)][::-1]
        for job in tail:
            pool = self.choose_pool(job)
            if pool is None:
                queue.append(job)
            else:
                cluster.start(job, pool)


@register("scheduler", "hetero-aware")
class HeteroAware(FifoBackfill):
    def choose_pool(self, job: int) -> int | None:
        cluster = self.cluster
        durations = cluster.duration[job]
        if self.objective == "cheapest":
            return self._cheapest_now(job, durations)
        best_pool, best_finish, best_now = None, math.inf, False
        for pool in cluster.eligible[job]:
            now = cluster.fits(job, pool)
            start = cluster.now if now else cluster.earliest_release_s(pool)
            finish = start + durations[pool]
            if finish < best_finish or (finish == best_finish and now and not best_now):
                best_pool, best_finish, best_now = pool, finish, now
        return best_pool if best_now else None

    def _cheapest_now(self, job: int, durations: list[float]) -> int | None:
        cluster = self.cluster
        best_pool, best_cost = None, math.inf
        for pool in cluster.eligible[job]:
            if not cluster.fits(job, pool):
                continue
            cost = cluster.busy_chips[job] * durations[pool] * self._usd_per_chip_second(pool)
            if cost < best_cost:
                best_pool, best_cost = pool, cost
        return best_pool

    def _usd_per_chip_second(self, pool: int) -> float:
        p, site = self.cluster.pools[pool], self.cluster.fleet.site
        energy_usd_per_hour = p.busy_w_with_server * site.pue / 1000.0 * site.electricity_usd_per_kwh
        return (p.chip_cost_usd_per_hour + energy_usd_per_hour) / 3600.0
