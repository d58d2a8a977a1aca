"""Training-job schedulers, registered under the names used in YAML (``policy.scheduler.kind``).

The cluster calls ``admit(job, shape)`` for a job arriving at an instant when nothing was freed (it
starts the job or queues it), and ``schedule(freed, new_shapes)`` after chips or power were freed:
``freed`` is the set of pools that gained chips (``None`` when anything may have changed, e.g. power
freed under a site cap) and ``new_shapes`` the job shapes that got their first waiting job from the
arrivals queued at that same instant. A scheduler starts jobs with
``cluster.start(job, pool)`` and asks ``cluster.fits(job, pool)`` whether a start is possible now. The
queue is grouped by job shape (``sim.training.waiting``): when the oldest job of a shape cannot start,
no job of that shape can, so policies work shape by shape.

* ``fifo`` — strict arrival order; the oldest job takes the first eligible pool (fleet order) with room;
  if it cannot start, nothing behind it starts (head-of-line blocking).
* ``fifo-backfill`` — when the oldest job is blocked, younger jobs of other shapes that fit now start,
  oldest shape first (aggressive backfilling: no reservation protects a blocked large gang, so it can
  wait long). Every waiting shape that may use a freed pool is tried (there are few shapes), except those whose gang
  no freed pool has room for now (``DomainAllocator.largest_gang``): they could not start.
* ``hetero-aware`` — backfills like ``fifo-backfill`` and sends each job to the eligible pool that
  minimises the ``objective``: ``earliest-finish`` (start + run time on that chip) or ``cheapest``
  (chip-seconds × (capex or rental rate + full-load energy), among pools with room now). For a busy
  pool the start is estimated by its next completion, a lower bound; a job may wait for a faster chip
  (and the rest of its shape waits with it), but once that estimate has passed without the job
  starting, the job takes the best pool with room now — so no job waits on a stale promise.
"""

from __future__ import annotations

import math

import numpy as np

from sim.policies.registry import register


class Scheduler:
    kind = "base"

    def __init__(self, cluster, config):
        self.cluster = cluster
        self.objective = config.objective

    def schedule(self, freed: set[int] | None, new_shapes: list[int]) -> None:
        raise NotImplementedError

    def admit(self, job: int, shape: int) -> None:
        """A job arrives and nothing was freed: start it if the policy would, else queue it.

        Jobs already waiting were tried against this same capacity, so only the newcomer can start —
        and only if no older job of its shape waits (same shape, same answer)."""
        waiting = self.cluster.waiting
        if waiting.fifos[shape] or not self._may_overtake():
            waiting.push(job, shape)
            return
        pool = self.choose_pool(job)
        if pool is None:
            waiting.push(job, shape)
        else:
            self.cluster.start(job, pool)

    def _may_overtake(self) -> bool:
        """Whether a new job may start while older jobs (of other shapes) wait."""
        return True

    def choose_pool(self, job: int) -> int | None:
        """The first eligible pool (fleet order) that can start ``job`` now."""
        fits = self.cluster.fits
        for pool in self.cluster.eligible[job]:
            if fits(job, pool):
                return pool
        return None

    def _drain(self, shape: int, freed: set[int] | None = None) -> None:
        """Start the oldest jobs of ``shape`` while a pool takes them (every eligible pool is weighed:
        an objective compares them all, so ``freed`` does not narrow the choice here)."""
        waiting, start, choose_pool = self.cluster.waiting, self.cluster.start, self.choose_pool
        fifo = waiting.fifos[shape]
        while fifo:
            pool = choose_pool(fifo[0])
            if pool is None:
                return
            start(waiting.pop(shape), pool)


class FirstFit(Scheduler):
    """Jobs take the first eligible pool (fleet order) with room: one placement attempt per pool."""

    def admit(self, job: int, shape: int) -> None:
        waiting = self.cluster.waiting
        if not waiting.fifos[shape]:
            try_start = self.cluster.try_start
            for pool in waiting.shape_pools[shape]:
                if try_start(job, pool):
                    return
        waiting.push(job, shape)

    def _drain(self, shape: int, freed: set[int] | None = None) -> None:
        """Start the oldest jobs of ``shape`` while a pool takes them. With ``freed``, only those pools
        are tried: the others refused this shape before and have only lost capacity since."""
        waiting, try_start = self.cluster.waiting, self.cluster.try_start
        fifo, pools = waiting.fifos[shape], waiting.shape_pools[shape]
        if freed is not None:
            pools = [pool for pool in pools if pool in freed]
        while fifo:
            job = fifo[0]
            for pool in pools:
                if try_start(job, pool):
                    waiting.pop(shape)
                    break
            else:
                return


@register("scheduler", "fifo")
class Fifo(Scheduler):
    def _may_overtake(self) -> bool:
        return not self.cluster.waiting.count

    def schedule(self, freed, new_shapes) -> None:
        waiting = self.cluster.waiting
        while True:
            head = waiting.oldest()
            if head is None:
                return
            job, shape = head
            pool = self.choose_pool(job)
            if pool is None:
                return
            self.cluster.start(waiting.pop(shape), pool)


@register("scheduler", "fifo-backfill")
class FifoBackfill(FirstFit):
    drains_freed_only = True  # ``_drain`` tries only the freed pools: shapes they have no room for are skipped

    def schedule(self, freed, new_shapes) -> None:
        waiting = self.cluster.waiting
        shapes = waiting.shapes_by_age(freed, self.cluster.room(freed) if self.drains_freed_only else None)
        if new_shapes:  # arrivals of this instant, whatever pools they may use
            shapes = sorted(set(shapes) | set(new_shapes), key=lambda s: waiting.fifos[s][0])
        for shape in shapes:
            self._drain(shape, None if shape in new_shapes else freed)


@register("scheduler", "hetero-aware")
class HeteroAware(FifoBackfill):
    _drain = Scheduler._drain  # choose by objective, not first fit
    drains_freed_only = False  # it weighs every eligible pool
    admit = Scheduler.admit

    def __init__(self, cluster, config):
        super().__init__(cluster, config)
        self.uses_release_times = self.objective == "earliest-finish"  # the cluster keeps them only then
        self.expected_start_s: dict[int, float] = {}  # jobs waiting for a busy, faster pool
        prices = np.array([self._usd_per_chip_second(p) for p in range(len(cluster.pools))])
        self.order = cluster.pool_orders(prices if self.objective == "cheapest" else None)

    def choose_pool(self, job: int) -> int | None:
        cluster = self.cluster
        if self.objective == "cheapest":
            return self._cheapest_now(job)
        promised = self.expected_start_s.get(job)
        may_wait = promised is None or cluster.now < promised
        wait_finish, wait_start = math.inf, math.inf
        for pool in self.order[job]:  # fastest first: the first pool with room is the best start now
            run_s = cluster.run_time_s(job, pool)
            if cluster.fits(job, pool):
                if cluster.now + run_s <= wait_finish:
                    self.expected_start_s.pop(job, None)
                    return pool
                break  # waiting for a faster, busy pool finishes earlier; slower pools cannot beat it
            if may_wait:
                start = cluster.earliest_release_s(pool)
                if start + run_s < wait_finish:
                    wait_finish, wait_start = start + run_s, start
        if wait_finish < math.inf and promised is None:
            self.expected_start_s[job] = wait_start
        return None

    def _cheapest_now(self, job: int) -> int | None:
        fits = self.cluster.fits
        for pool in self.order[job]:  # cheapest first
            if fits(job, pool):
                return pool
        return None

    def _usd_per_chip_second(self, pool: int) -> float:
        p, site = self.cluster.pools[pool], self.cluster.fleet.site
        energy_usd_per_hour = p.busy_w_with_server * site.pue / 1000.0 * site.electricity_usd_per_kwh
        return (p.chip_cost_usd_per_hour + energy_usd_per_hour) / 3600.0
