"""The cluster: one SimPy process that admits, places and completes training jobs.

Events happen only when state changes: a job arrives, a job completes, a pool comes online or leaves, an
inference replica group on a shared pool scales or a windowed group on any pool starts or ends
(``sim.training.sharing``), or a burst timer fires (a waiting job's wait crossing the threshold, rented chips
coming online, a minimum rental expiring: ``sim.training.burst``), or, with a ``failures`` section, a failure or a
repair (``sim.training.failures``: applied after pools leave, before inference scaling), or, with deferrable jobs,
held jobs are released into the queue (``sim.training.shifting``: after cap changes, before arrivals). At each such
instant the process settles completions first (freeing chips), then pools coming online, then drains starting and
retirements, then pools leaving, then inference scale-downs and scale-ups (which may preempt training, and with
failures book chips away for repair: ``sim.training.sharing``), then
rented burst domains coming online,
then admits arrivals, then asks the scheduler policy to start what it can, then lets the burst policy
release idle rentals and request new ones; then it sleeps until the next instant. The cluster is the only
SimPy process of a run (serving is computed before training, ``sim.serving.stage``, and reaches it only
as the shared pools' reservation schedule), so it normally fast-forwards its own clock instead of a
SimPy round trip; it yields a timeout only when another process has an event first. There is no fixed
time step and no process per job or per device: pools are counted per scale-up domain
(``sim.fleet.allocation``), running jobs sit in one heap keyed by completion time.

Site power: with a cap, a job starts only if the site's committed facility power — idle power of every
chip (online or still to come), the full-load increment of every inference replica's chips
(``Fleet.committed_floor_w``) and of every chip busy with training, times PUE — stays within the cap.
Under the default ``policy.power_cap.kind: admission`` this is admission control only: running jobs are never
throttled or stopped for power. ``throttle`` and ``shed`` (and a dated cap, ``site.power_cap_mw``) act through
``sim.training.capping``: ``_power_fits`` asks it before a start, a cap change is an event, and after every event
it slows (or speeds up again) the lowest-priority, last-started jobs' clocks, moving their completions, or pauses
them with the preemption path; there inference counts at its power per time bin instead of its reservation (each
change an event). A pool that leaves (``online_until``) stops drawing power then: its idle floor is released from
the committed power. Rack and row budgets (``fleet[].rack_budget_kw``, ``row_budget_kw``) are kept by
``sim.training.budgets``: on a pool with any, ``fits`` and ``try_start`` place the job where its racks and rows have
room, and ``_complete`` takes its power out of them.

Deliveries (``fleet[].deliveries``, ``ResolvedPool.deliveries``): a pool's later chips are held out of
its allocator from the start (whole domains) and released at their date, so from then on a gang larger
than a domain takes whole free domains of old and new deliveries alike. Their idle power is committed
from t=0 like every chip not yet online.

TPU pools (``torus_dimensions`` in the catalog): a gang takes the whole valid slice(s) that hold it
(``sim.fleet.network.gang_chips_on``: e.g. 2 chips take a 2x2 slice of a v6e, 100 chips a 4x4x8 slice of a
v4); the slice's extra chips are placed with the gang and idle (not busy: no busy power, not in busy chips).

Retirements and drain (``fleet[].retirements``, ``fleet[].drain``, docs/fleet.md): from ``date - drain`` a
retirement's domains — the pool's highest-index full-size domains that are delivered and hold no inference
replica — are closed (``DomainAllocator.close``): no job is placed there, jobs already there run on. At the date
every job still running on one of them is preempted as below, and their idle power floor is released. The
drain before a whole pool leaves (``online_until``) marks the pool not online from ``online_until - drain``.

Pools that leave (retirement, end of a rental contract, ``ResolvedPool.online_until_s``): at that
instant the pool drains at once (after ``drain``, if any). Every training job still running there is
preempted with the same checkpoint semantics as an inference preemption (``sim.training.sharing.preempt``:
it keeps its work up to its last checkpoint, loses the rest, and waits again at its arrival position for any pool it may
use); no job starts there afterwards. Jobs are not kept from starting when they could not finish
before the pool leaves (that would break the rule that the oldest waiting job of a shape blocks the
rest, as run times differ within a shape): a long job started shortly before the end loses the work
since its last checkpoint. When every pool a job may use has left, the job is rejected with the reason
``every pool it may use has left``: at that instant if it was waiting (its wait counts in the queue
series up to then: ``left_queue_s`` in the outcome), at its arrival if it arrives later. No job is
dropped, and none blocks a strict-FIFO queue forever. Inference replica groups on a pool that leaves are active
until it leaves (``sim.fleet.windows``): their chips are released by the reservation schedule at that instant.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
from math import sqrt

import numpy as np
import simpy

from sim.fleet import Fleet, idle_facility_w, within_cap
from sim.fleet.allocation import SharedChips
from sim.fleet.network import gang_chips_on
from sim.training import sharing
from sim.training.burst import Burst
from sim.training.failures import RUN_FIELDS, RUN_INTERVAL, RUN_NEXT, RUN_OVERHEAD, RUN_SAVE, FailureProcess
from sim.training.prepare import PreparedJobs, pool_orders
from sim.training.waiting import WaitQueue

NOT_STARTED = math.nan
NOTHING_FREED: frozenset[int] = frozenset()
STRANDED = "every pool it may use has left (online_until)"


class Cluster:
    """Mutable state of one run: free chips per pool, the queue, running jobs and per-job records."""

    def __init__(self, env: simpy.Environment, fleet: Fleet, jobs: PreparedJobs, horizon_s: float,
                 scheduler_factory, progress=None, scaling_schedule=(), checkpoint_interval_s: float = 3600.0,
                 burst_policies=(), failures=None, failure_rng=None, power_cap=None, shifting=None,
                 budgets=None):
        self.env = env
        self.fleet = fleet
        self.horizon_s = horizon_s
        self.pools = fleet.pools
        # inference replicas' chips already reserved (min_count if scaled); chips of later deliveries held
        # until their date (``held[pool][k]``, released by ``_bring_online``)
        self.held: list[list[tuple]] = []
        self.allocators = fleet.new_allocators(self.held)
        self.pending_deliveries = [[t for t, _ in p.deliveries] for p in self.pools]  # dates still to come [s]
        self.shared = [SharedChips(a) for a in self.allocators]
        self.online = [p.online_from_s <= 0.0 < p.online_until_s for p in self.pools]
        self.arrival = jobs.arrival_s.tolist()
        self.chips = jobs.chips.tolist()
        # TPU pools: a gang takes whole valid slices (``sim.fleet.network.gang_chips_on``); None elsewhere
        self.slice_chips = [functools.lru_cache(maxsize=None)(functools.partial(gang_chips_on, p))
                            if p.accelerator.torus_dimensions is not None else None for p in self.pools]
        self.share_units = jobs.share_units.tolist()
        self.busy_chips = jobs.busy_chips.tolist()
        self.busy_chips_array = np.asarray(jobs.busy_chips, dtype=np.float64)  # the same, for array arithmetic
        self.duration = jobs.duration_s  # N×P array; read with run_time_s (item() gives a Python float)
        self.ramps = jobs.ramps  # per-epoch run times of pools that dated ports change; None without them
        self.eligible = jobs.eligible
        self.eligible_mask = jobs.eligible_mask
        self.reject_reason = list(jobs.reject_reason)
        n = len(self.arrival)
        self.start_s = [NOT_STARTED] * n
        self.end_s = [NOT_STARTED] * n
        self.pool_of = [-1] * n
        self.placement: dict[int, object] = {}
        self.shape = list(jobs.shape)  # a copy: jobs stranded by a leaving pool get -1 (``_reject_stranded``)
        self.waiting = WaitQueue(jobs.shape_pools, self._gang_of)
        self.completions: list[tuple[float, int]] = []
        self.pool_ends: list[list[float]] = [[] for _ in self.pools]
        self.now = 0.0
        self.events = 0
        self.power_cap_w = fleet.site.power_cap_w
        self.dynamic_w = [fleet.busy_increment_facility_w(p.index) for p in self.pools]
        # idle power of every pool is reserved from t=0, including pools not online yet: their arrival
        # must not push the site over its cap (admission control cannot shed running jobs); so is the
        # full-load power of chips reserved for inference replicas
        self.committed_w = fleet.committed_floor_w
        self.scheduler = scheduler_factory(self)
        self.track_release_times = getattr(self.scheduler, "uses_release_times", False)
        self.progress = progress
        # shared pools: (time, group, pool, chips per replica, ±replicas), then an inf sentinel
        self.scaling_schedule = list(scaling_schedule) + [(math.inf, -1, -1, 0, 0)]
        self.checkpoint_s = checkpoint_interval_s
        self.replica_placements: dict[int, list] = {}
        self.resumed: dict[int, float] = {}       # remaining work fraction of jobs preempted at least once
        self.first_start_s: dict[int, float] = {}  # their first start
        self.segments: list[tuple] = []           # (job, pool, start, preempted at, lost chip-seconds)
        self.stale_completions: set[tuple] = set()  # (end, job) heap entries of preempted jobs (with failures)
        self.deferred: set[int] = set()
        self.left_queue_s: dict[int, float] = {}  # jobs rejected while waiting, when their pools had all left
        # drains and retirements (``fleet[].retirements``, ``fleet[].drain``): domains closed per (pool, retirement)
        self.retiring: dict[tuple[int, int], list[int]] = {}
        self.retired_chips = [0] * len(self.pools)
        self.static_domains = [self._occupied_domains(p) for p in range(len(self.pools))]  # replicas from t = 0
        self.group_pool = {group: pool for _, group, pool, _, _ in self.scaling_schedule}
        # cloud burst (``sim.training.burst``): (pool index, policy) pairs; None without policy.burst
        self.burst = Burst(self, burst_policies) if burst_policies else None
        # failures of training chips (``sim.training.failures``); None without a ``failures`` section
        self.failures = FailureProcess(self, failures, failure_rng) if failures is not None else None
        # running jobs' shares of the shared checkpoint storage (``FailureProcess.saver_share``), or None
        self.savers = self.failures.saver_share if self.failures is not None else None
        self.domain_jobs = self.failures.domain_jobs if self.failures is not None else None
        # rack and row power budgets (``sim.training.budgets``); None without any
        self.budgets = budgets(self) if budgets is not None else None
        # power-cap schedule and throttle/shed (``sim.training.capping``); None for plain admission control
        self.capping = power_cap(self) if power_cap is not None else None
        # deferrable jobs held for cheap or clean hours (``sim.training.shifting``); None without policy.shifting
        self.shifting = shifting
        self.process = env.process(self._run())

    # -- queries used by scheduler policies -------------------------------------------------------
    def fits(self, job: int, pool: int) -> bool:
        """Whether ``job`` can start on ``pool`` now (online, room in a domain, within the power cap)."""
        if not self.online[pool]:
            return False
        if not self._power_fits(self.busy_chips[job] * self.dynamic_w[pool]):
            return False
        units = self.share_units[job]
        if units:
            if self.budgets is not None and self.budgets.layout.has(pool):
                return self.shared[pool].can_place(units) and self.budgets.can_start(job, pool, 1)
            return self.shared[pool].can_place(units)
        allocator, chips = self.allocators[pool], self.chips[job]
        if self.slice_chips[pool] is not None:
            chips = self.slice_chips[pool](chips)
        if self.budgets is not None and self.budgets.layout.has(pool):
            return allocator.can_place(chips) and self.budgets.can_start(job, pool, chips)
        if chips <= allocator.domain_chips:  # DomainAllocator.can_place inlined: hetero-aware asks this per
            return (allocator.mask >> chips) != 0  # pool per decision, and the call costs ~10 % of its run time
        return allocator.can_place(chips)

    def room(self, pools: set[int] | None) -> list[int]:
        """Per pool, the largest gang it can place now (``DomainAllocator.largest_gang``) for ``pools`` (all when
        None), -2 for the others: a necessary test of ``try_start`` (``WaitQueue.shapes_by_age``)."""
        allocators = self.allocators
        if pools is None:
            room = [a.largest_gang() for a in allocators]
        else:
            room = [-2] * len(allocators)
            for pool in pools:
                room[pool] = allocators[pool].largest_gang()
        if self.budgets is not None:
            self.budgets.narrow(room)  # no larger gang than the racks and rows take
        return room

    def _gang_of(self, job: int, shape: int) -> tuple[tuple[int, int], ...]:
        """((pool, chips the gang of ``job`` takes there), ...) over the pools of its ``shape``; -1 for a chip
        share (its room is not tested)."""
        if self.share_units[job]:
            return tuple((pool, -1) for pool in self.waiting.shape_pools[shape])
        chips, slices = self.chips[job], self.slice_chips
        return tuple((pool, chips if slices[pool] is None else slices[pool](chips))
                     for pool in self.waiting.shape_pools[shape])

    def _power_fits(self, busy_w: float) -> bool:
        """Whether a start adding ``busy_w`` of facility power at full load respects the site cap (admission
        control; ``throttle`` counts running jobs at their minimum clock: ``sim.training.capping``)."""
        if self.capping is not None:
            return self.capping.fits(busy_w)
        return within_cap(self.committed_w + busy_w, self.power_cap_w)

    def pool_orders(self, usd_per_chip_second: np.ndarray | None = None) -> list[tuple[int, ...]]:
        """Per job, eligible pools fastest first (cheapest first when prices per pool are given)."""
        return pool_orders(self.duration, self.eligible_mask, usd_per_chip_second)

    def run_time_s(self, job: int, pool: int) -> float:
        """Run time of ``job`` on ``pool`` [s] if it starts now (inf when the pool cannot take it); what is
        left of it for a preempted job; with failures, checkpoint saves and the restart overhead included."""
        if self.failures is not None:
            return self.failures.run_time(job, pool, self.base_run_time_s(job, pool))
        return self.base_run_time_s(job, pool)

    def base_run_time_s(self, job: int, pool: int) -> float:
        """``run_time_s`` without the failure model's checkpoint saves and restart overhead [s]."""
        full = self.duration.item(job, pool) if self.ramps is None else self.full_run_time_s(job, pool, self.now)
        if self.resumed and job in self.resumed:
            return full * self.resumed[job]
        return full

    def full_run_time_s(self, job: int, pool: int, t: float) -> float:
        """Whole run time [s] of ``job`` on ``pool`` for a start at ``t`` (ports ramping: ``sim.training.ramps``)."""
        if self.ramps is None:
            return self.duration.item(job, pool)
        return self.ramps.full_time_s(job, pool, t, self.duration)

    def earliest_release_s(self, pool: int) -> float:
        """Lower bound on when ``pool`` next frees chips: its earliest running completion (inf if none).

        Kept only for schedulers that set ``uses_release_times``; others pay nothing for it."""
        ends = self.pool_ends[pool]
        while ends and ends[0] <= self.now:
            heapq.heappop(ends)
        p = self.pools[pool]
        if not self.online[pool]:
            return p.online_from_s if p.online_from_s > self.now else math.inf  # not yet online, or left
        release = ends[0] if ends else math.inf
        pending = self.pending_deliveries[pool]
        if pending and pending[0] < release:
            release = pending[0]  # a delivery frees chips too
        if self.burst is not None:
            release = min(release, self.burst.next_online_s(pool))  # so do rented domains coming online
        return release if release < p.online_until_s else math.inf  # its jobs then leave with the pool

    # -- state changes -----------------------------------------------------------------------------
    def start(self, job: int, pool: int) -> None:
        """Start ``job`` on ``pool``; the caller has checked ``fits``."""
        if not self.try_start(job, pool):
            raise RuntimeError(f"t={self.now:.3f}s: job {job} does not fit on pool {self.pools[pool].name}")

    def try_start(self, job: int, pool: int) -> bool:
        """Start ``job`` on ``pool`` if it fits now (online, room, power cap); return whether it started."""
        if not self.online[pool]:
            return False
        busy_w = self.busy_chips[job] * self.dynamic_w[pool]
        if self.power_cap_w is not None and not self._power_fits(busy_w):
            return False
        units = self.share_units[job]
        if self.budgets is not None and self.budgets.layout.has(pool):  # a placement within its racks and rows
            chips = 1 if units else self.chips[job]
            if not units and self.slice_chips[pool] is not None:
                chips = self.slice_chips[pool](chips)
            if not units and not self.allocators[pool].can_place(chips):
                return False
            placement = self.budgets.place(job, pool, chips)
        elif units:
            placement = self.shared[pool].place(units)
        else:
            allocator, chips = self.allocators[pool], self.chips[job]
            if self.slice_chips[pool] is not None:
                chips = self.slice_chips[pool](chips)
            if not allocator.can_place(chips):
                return False
            placement = allocator.place(chips)
        if placement is None:
            return False
        self.placement[job] = placement
        self.pool_of[job] = pool
        self.start_s[job] = self.now
        self.committed_w += busy_w
        fails = self.failures
        if fails is None:
            end = self.now + self.base_run_time_s(job, pool)
        else:  # the failure model's bookkeeping of a start (``FailureProcess``), inlined: the hottest path it adds
            base = self.base_run_time_s(job, pool)
            runs, r = fails.runs, RUN_FIELDS * job  # the job's record (``FailureProcess.runs``), its base first
            runs[r] = base
            overhead = runs[r + RUN_NEXT]  # restart + restore after a preemption, else 0
            domains = fails.domain_jobs[pool]  # the index of running jobs per domain
            for domain, n in (self.shared[pool].domain_of[placement] if units else placement):
                domains[domain][job] = n
            alone = fails.save_list[job]
            if alone > 0:  # saves share the site's storage (``FailureProcess._shared_save``)
                others = fails.saving  # the running savers' sum (``_complete`` takes a run's share out; exactly 0
                save = alone * (1.0 + others)  # when none runs, so that a job alone keeps its own save time)
                runs[r + RUN_SAVE] = save
                interval = fails.fixed_interval_s
                if interval is None:  # Young/Daly with the shared save time (``intervals`` when alone: the same)
                    rate = fails.rate_list[pool] * self.busy_chips[job]
                    interval = sqrt(2.0 * save / rate) if rate > 0 else fails.config.fallback_interval_s
                    runs[r + RUN_INTERVAL] = interval  # a fixed interval is not recorded (NaN: ``intervals``)
                if overhead:  # the first run of a job has none (the array's initial 0), every run after a preemption
                    overhead += save - alone  # some: the restore reads at the same share
                    runs[r + RUN_OVERHEAD] = overhead
                share = save / (interval + save)
                self.savers[job] = share
                fails.saving = others + share
                run = base * (1.0 + save / interval) + overhead
            else:
                factor = fails.job_factor[job] if fails.job_factor is not None else fails.factor.item(job, pool)
                run = base * factor + overhead
                if overhead:
                    runs[r + RUN_OVERHEAD] = overhead
            end = self.now + run
        self.end_s[job] = end
        if end != math.inf:
            heapq.heappush(self.completions, (end, job))
            if self.track_release_times:
                heapq.heappush(self.pool_ends[pool], end)
        return True

    def _complete(self, job: int) -> int:
        pool = self.pool_of[job]
        placement = self.placement.pop(job)
        units = self.share_units[job]
        if self.domain_jobs is not None:  # with failures: the index of running jobs per domain, the savers' sum
            domains = self.domain_jobs[pool]
            for domain, _ in (self.shared[pool].domain_of[placement] if units else placement):
                del domains[domain][job]
            share = self.savers.pop(job, None)  # its share of the checkpoint storage is free again
            if share is not None:
                fails = self.failures
                fails.saving = fails.saving - share if self.savers else 0.0  # exactly 0 when no saver is left
        if units:
            self.shared[pool].release(placement, units)
        else:
            self.allocators[pool].release(placement)
        self.committed_w -= self.busy_chips[job] * self.dynamic_w[pool]
        if self.budgets is not None:
            self.budgets.ended(job)
        if self.capping is not None:
            self.capping.ended(job)
        return pool

    def _run(self):
        completions, waiting, shape = self.completions, self.waiting, self.shape
        arrival = self.arrival + [math.inf]  # sentinel: no bounds checks in the loop
        # pools coming online (delivery -1) and later deliveries joining a pool (delivery k)
        onlines = sorted([(p.online_from_s, p.index, -1) for p in self.pools if p.online_from_s > 0]
                         + [(at, p.index, k) for p in self.pools for k, (at, _) in enumerate(p.deliveries)])
        onlines.append((math.inf, -1, -1))
        # a pool leaving at the horizon or later stays to the end: its jobs then count as running
        leaves = sorted((p.online_until_s, p.index) for p in self.pools if p.online_until_s < self.horizon_s)
        leaves.append((math.inf, -1))
        # drains start (retirement k, or -1: the whole pool's online_until) and retirements take their domains
        drains = sorted([(max(0.0, at - p.drain_s), p.index, k) for p in self.pools
                         for k, (at, _) in enumerate(p.retirements)]
                        + [(max(0.0, p.online_until_s - p.drain_s), p.index, -1) for p in self.pools
                           if p.drain_s > 0 and p.online_until_s < self.horizon_s])
        drains.append((math.inf, -1, -1))
        retires = sorted((at, p.index, k) for p in self.pools for k, (at, _) in enumerate(p.retirements))
        retires.append((math.inf, -1, -1))
        next_drain = next_retire = 0
        scales = self.scaling_schedule
        burst, fails, capping, shifting = self.burst, self.failures, self.capping, self.shifting
        hold = shifting.hold if shifting is not None else None
        next_job = next_online = next_leave = next_scale = events = 0
        fire_due = False  # the failure process's timers are due (its sentinel in ``completions`` came due)
        env = self.env
        horizon, timeout, peek, scheduler = self.horizon_s, env.timeout, env.peek, self.scheduler
        admit = scheduler.admit
        capped, progress, pop, complete = self.power_cap_w is not None, self.progress, heapq.heappop, self._complete
        stale = self.stale_completions  # entries of preempted jobs left in the heap (with failures)
        while True:
            t = arrival[next_job]
            if completions and completions[0][0] < t:
                t = completions[0][0]
            if onlines[next_online][0] < t:
                t = onlines[next_online][0]
            if leaves[next_leave][0] < t:
                t = leaves[next_leave][0]
            if drains[next_drain][0] < t:
                t = drains[next_drain][0]
            if retires[next_retire][0] < t:
                t = retires[next_retire][0]
            if scales[next_scale][0] < t:
                t = scales[next_scale][0]
            if burst is not None and burst.next_s < t:
                t = burst.next_s
            if capping is not None and capping.next_s < t:
                t = capping.next_s
            if shifting is not None and shifting.next_s < t:
                t = shifting.next_s
            if t > horizon:
                break
            # fast-forward: without another process's event before t, nobody can observe the clock,
            # so the cluster advances its own time without a SimPy round trip
            if t >= peek():
                yield timeout(t - env.now)
            self.now = t
            events += 1
            freed = NOTHING_FREED
            if completions and completions[0][0] <= t:
                freed = set()
                while completions and completions[0][0] <= t:
                    entry = pop(completions)
                    if stale and entry in stale:
                        stale.remove(entry)
                        if entry[1] < 0:  # the failure process's sentinel (``FailureProcess._arm``): it is due
                            fire_due = True
                        continue
                    freed.add(complete(entry[1]))
            while onlines[next_online][0] <= t:
                freed = set(freed)
                freed.add(self._bring_online(*onlines[next_online][1:]))
                next_online += 1
            requeued = False
            while drains[next_drain][0] <= t:
                self._drain(*drains[next_drain][1:])
                next_drain += 1
            while retires[next_retire][0] <= t:
                requeued |= self._retire(*retires[next_retire][1:])
                next_retire += 1
            while leaves[next_leave][0] <= t:
                requeued |= self._leave(leaves[next_leave][1], t)
                next_leave += 1
            retry = ()  # shapes of jobs that failures requeued: tried on every pool they may use
            if fire_due:
                fire_due = False
                freed, retry = fails.fire(t, freed)
            if scales[next_scale][0] <= t:
                freed, requeued, next_scale = sharing.apply_scaling(self, t, next_scale, freed)
            if burst is not None and burst.next_s <= t:
                freed = burst.fire(t, freed)
            if capping is not None and capping.next_s <= t:
                requeued |= capping.fire(t)
                capping.after(t)  # a cap drop throttles or sheds before anything starts
            if shifting is not None and shifting.next_s <= t:
                retry = list(retry) + self._release_held(shifting.fire(t), t)
                requeued = True
            if not freed and not requeued:
                # nothing was freed: each arrival is decided on its own, in arrival order
                while arrival[next_job] <= t:
                    if shape[next_job] >= 0 and (hold is None or not hold(next_job, t)):
                        admit(next_job, shape[next_job])
                    next_job += 1
            else:
                new_shapes = list(retry)
                while arrival[next_job] <= t:
                    job_shape = shape[next_job]
                    if job_shape >= 0 and (hold is None or not hold(next_job, t)) \
                            and waiting.push(next_job, job_shape):
                        new_shapes.append(job_shape)
                    next_job += 1
                if waiting.count:
                    # under a power cap a completion frees power for every pool, not only its own; a
                    # preempted job may go to any of its pools
                    scheduler.schedule(None if capped or requeued else freed, new_shapes)
            if capping is not None and capping.after(t) and waiting.count:
                scheduler.schedule(None, [])  # shed jobs wait again: a smaller one may still fit
                capping.after(t)
            if burst is not None:
                burst.after(t, next_job, freed)
            if progress is not None and not events & 4095:
                progress(t)
        self.events = events
        if horizon > env.now:
            yield timeout(horizon - env.now)
        self.now = horizon

    def _release_held(self, jobs: list[int], t: float) -> list[int]:
        """Held deferrable jobs join the wait queue at their arrival positions (``sim.training.shifting``); a job
        whose pools have all left meanwhile is rejected. Return their shapes (tried on every pool they may use)."""
        shapes = []
        for job in jobs:
            s = self.shape[job]
            if s < 0 or all(self.pools[p].online_until_s <= t for p in self.waiting.pool_sets[s]):
                self.shape[job] = -1
                self.reject_reason[job] = STRANDED
                self.left_queue_s[job] = t
                continue
            fifo = self.waiting.fifos[s]
            if fifo and fifo[-1] > job:
                self.waiting.requeue(job, s)  # older than a job already waiting: its arrival position
            else:
                self.waiting.push(job, s)
            shapes.append(s)
        return shapes

    def _bring_online(self, pool_index: int, delivery: int = -1) -> int:
        """Pool ``pool_index`` comes online (``delivery`` -1), or its delivery ``delivery`` joins it: the
        delivered domains become free chips of the pool, for gangs of any size, alone or with older domains."""
        if delivery < 0:  # validation keeps online_from before online_until; a drain may already have begun
            pool = self.pools[pool_index]
            self.online[pool_index] = not pool.drain_s or self.now < pool.online_until_s - pool.drain_s
        else:  # validation keeps deliveries after online_from and before online_until
            self.allocators[pool_index].release(self.held[pool_index][delivery])
            self.pending_deliveries[pool_index].pop(0)
        return pool_index

    def _occupied_domains(self, pool: int) -> set[int]:
        """Domains of ``pool`` holding chips now that no training job holds (at t = 0: inference reservations
        and held deliveries)."""
        allocator = self.allocators[pool]
        return {d for d, (free, size) in enumerate(zip(allocator.free, allocator.size)) if free < size}

    def _drain(self, pool_index: int, retirement: int) -> None:
        """The drain before a retirement (``retirement`` k) or before the pool leaves (-1) starts: its domains take
        no new job from now (for the whole pool: it counts as not online); jobs there run on. A retirement takes
        the pool's highest-index full-size domains that are online (delivered), hold no inference replica (from
        t = 0 or placed by the schedule now) and are not already retiring."""
        if retirement < 0:
            self.online[pool_index] = False
            return
        pool, allocator = self.pools[pool_index], self.allocators[pool_index]
        undelivered = {d for parts in self.held[pool_index][len(pool.deliveries)
                                                            - len(self.pending_deliveries[pool_index]):]
                       for d, _ in parts}
        replicas = {d for group, placements in self.replica_placements.items()
                    if self.group_pool.get(group) == pool_index for parts in placements for d, _ in parts}
        static = self.static_domains[pool_index] - {d for parts in self.held[pool_index] for d, _ in parts}
        taken = undelivered | replicas | static | allocator.closed
        need = pool.retirements[retirement][1] // allocator.domain_chips
        domains = [d for d in range(len(allocator.size) - 1, -1, -1)
                   if allocator.size[d] == allocator.domain_chips and d not in taken][:need]
        if len(domains) < need:
            raise RuntimeError(f"t={self.now:.3f}s: pool {pool.name}: {need} domains to retire, only {len(domains)} "
                               "free of inference replicas and deliveries")
        for d in domains:
            allocator.close(d)
        self.shared[pool_index].close_domains(set(domains))
        self.retiring[(pool_index, retirement)] = domains

    def _retire(self, pool_index: int, retirement: int) -> bool:
        """Retirement ``retirement`` of pool ``pool_index`` takes its drained domains now: jobs still running on
        any of them are preempted (checkpoint semantics, ``sharing.preempt``) and the domains' idle power floor
        is released; return whether waiting jobs must be tried again."""
        domains = set(self.retiring.pop((pool_index, retirement)))
        shared = self.shared[pool_index]
        victims = []
        for job, placement in self.placement.items():
            if self.pool_of[job] != pool_index:
                continue
            parts = shared.domain_of[placement] if self.share_units[job] else placement
            if any(d in domains for d, _ in parts):
                victims.append(job)
        for job in sorted(victims):
            sharing.preempt(self, job, self.now)
        pool = self.pools[pool_index]
        chips = pool.retirements[retirement][1]
        self.retired_chips[pool_index] += chips
        self.committed_w -= chips * pool.idle_w_with_server * self.fleet.site.pue
        return bool(victims) or self.power_cap_w is not None

    def _leave(self, pool_index: int, t: float) -> bool:
        """Pool ``pool_index`` leaves at ``t``: preempt its running jobs (checkpoint semantics), release
        its idle power floor; return whether waiting jobs must be tried again (jobs requeued, or power
        freed under a cap)."""
        self.online[pool_index] = False
        victims = [job for job, pool in ((j, self.pool_of[j]) for j in self.placement) if pool == pool_index]
        for job in sorted(victims):
            sharing.preempt(self, job, t)
        if self.burst is not None:
            self.burst.pool_left(pool_index, t)
        pool = self.pools[pool_index]
        self.committed_w -= idle_facility_w([pool], self.fleet.site.pue) \
            - self.retired_chips[pool_index] * pool.idle_w_with_server * self.fleet.site.pue  # retired: released
        stranded = self._reject_stranded(t)
        return bool(victims) or stranded or self.power_cap_w is not None

    def _reject_stranded(self, t: float) -> bool:
        """Reject the jobs of every shape whose pools have all left by ``t``: those waiting now, and
        those arriving at or after ``t`` (their shape becomes -1, so the loop skips them); return whether
        a waiting job was removed (a strict-FIFO queue may then move)."""
        waiting, pools = self.waiting, self.pools
        dead = [s for s, pool_set in enumerate(waiting.pool_sets)
                if all(pools[p].online_until_s <= t for p in pool_set)]
        if not dead:
            return False
        removed = False
        for shape in dead:
            while shape in waiting.waiting_shapes:
                job = waiting.pop(shape)
                self.reject_reason[job] = STRANDED
                self.left_queue_s[job] = t
                removed = True
        first = bisect.bisect_left(self.arrival, t)
        later = np.flatnonzero(np.isin(np.asarray(self.shape[first:]), dead)) + first
        for job in later.tolist():
            self.shape[job] = -1
            self.reject_reason[job] = STRANDED
        return removed

    # -- outcome -----------------------------------------------------------------------------------
    def outcome(self) -> dict[str, np.ndarray]:
        """Per-job arrays: first start, start and end of the current (last) run, pool index, state at
        the horizon; the runs that inference or a leaving pool preempted (``segments``), the deferred jobs,
        and when a waiting job left the queue rejected (``left_queue_s``; inf for the others)."""
        run_start = np.asarray(self.start_s, dtype=np.float64)
        start = run_start.copy()
        for job, first in self.first_start_s.items():
            start[job] = first
        end = np.asarray(self.end_s, dtype=np.float64)
        pool = np.asarray(self.pool_of, dtype=np.int64)
        arrival = np.asarray(self.arrival, dtype=np.float64)
        state = np.full(len(arrival), "queued", dtype=object)
        reasons = np.asarray(self.reject_reason, dtype=object)
        state[reasons != ""] = "rejected"
        running = ~np.isnan(end)  # a preempted job waiting again has no current run
        state[running] = "running"
        state[running & (end <= self.horizon_s)] = "completed"
        state[arrival > self.horizon_s] = "beyond-horizon"
        segments = np.array(self.segments, dtype=np.float64).reshape(-1, 5)
        deferred = np.zeros(len(arrival), dtype=bool)
        deferred[list(self.deferred)] = True
        left_queue = np.full(len(arrival), np.inf)
        for job, t in self.left_queue_s.items():
            left_queue[job] = t
        return {"start_s": start, "run_start_s": run_start, "end_s": end,
                "pool": pool, "state": state, "reason": reasons,
                "segments": {"job": segments[:, 0].astype(np.int64), "pool": segments[:, 1].astype(np.int64),
                             "start_s": segments[:, 2], "end_s": segments[:, 3], "lost_chip_s": segments[:, 4]},
                "deferred": deferred, "left_queue_s": left_queue,
                **({"failures": self.failures.outcome(self.horizon_s, run_start, end, pool, self._work_by_horizon(end))}
                   if self.failures is not None else {})}

    def _work_by_horizon(self, end: np.ndarray) -> np.ndarray | None:
        """Per job, the full-speed seconds of work its current run had done by the horizon where a power cap
        slowed it (``PowerCap.work_done_s``), NaN for the others; None without capping."""
        if self.capping is None:
            return None
        work = np.full(len(end), np.nan)
        for job in np.flatnonzero(end > self.horizon_s).tolist():
            work[job] = self.capping.work_done_s(job, self.horizon_s)
        return work
