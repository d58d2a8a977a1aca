"""Failures of training capacity (scenario ``failures``): a failure stream per pool, repair, hot spares, and
checkpoint/restart of the jobs they interrupt.

What is modelled:

* **Rates.** Each chip fails at ``λ_c`` per chip-second for each component class ``c`` (gpu, memory, network,
  host, software, maintenance: ``sim/catalog/data/failures.yaml``, a profile plus the scenario's overrides, per
  accelerator type). A pool's failures are one superposed stream at ``Λ = Σ_c λ_c × count`` (every chip the
  pool will ever hold), drawn from the run's ``failures`` random stream (uniforms in blocks, turned into each
  distribution by inversion: ``_uniform``): exponential gaps (a Poisson process),
  or Weibull gaps of the same mean (a renewal process of the whole pool's stream, not of each unit). A few
  thousand events per simulated year at 10,000 chips, no per-chip timer. Each event strikes a chip drawn
  uniformly over the pool's domains; an event is dropped (thinning: the stream then has the rate of the chips
  actually there) when the pool is not online or the chip's domain is not delivered yet, draining or retired.
  Its class is drawn with probability ``λ_c / Σ λ``.
* **What it hits.** Within the domain the allocator counts chips, not their positions: the struck chip
  is in a training job's gang with probability (its chips in the domain / domain size), free otherwise, or
  held by something else (an inference replica, a held delivery, a hot spare) or away for repair: such events
  are counted as ``unavailable`` and change nothing (serving replicas' failures are drawn apart,
  ``sim.serving.failures``). A fractional (shared-chip) job counts as one chip of its domain. Every pool gets its
  stream, pools with autoscaled, windowed or serving-burst replica groups too: there the struck chips of a replica
  active now are ``unavailable`` like a fixed replica's (a serving-burst group holds its pool all run here).
* **Repairs under scheduled replicas** (rule in ``sim.training.sharing``): the schedule has precedence (serving
  was computed first). A scale-up that does not fit even with every training job of the pool preempted, because
  servers are away for repair, takes one domain, preempts the training there, takes its free chips and *books*
  the rest from the repairs there (``book``): booked chips stay out of placement until both their repair has ended
  (``_unbook_repair``: they become the replica's) and the replica has left (``replica_left``: chips still in
  repair go back to it). While booked they are the replica's (it runs at full strength, as if a server were
  swapped in): not down in availability, not in ``repair_chips`` (``_down_from``); back in their repair, down again.
* **Interruption.** A synchronous job whose gang holds the struck chip is interrupted: it is preempted with
  checkpoint semantics (``sharing.preempt``) and goes back to the wait queue at its arrival position (it is
  not restarted in place: a FIFO queue starts it first when room frees, on any pool it may use).
* **Repair.** The failed unit is one server (``chips_per_server`` chips, at most the domain), also in a domain
  larger than a server (a GB200 NVL72 rack keeps running with one tray out). Its chips leave the allocator
  (``DomainAllocator.take``) for an exponential time of the class's mean ``repair_time`` and return. Jobs
  holding the server's other chips are interrupted too: the allocator does not know which chips a job holds,
  so further jobs of the domain are preempted, most recently started first (they lose least), until the
  server's chips are free. Software failures (repair time 0) take nothing away. Planned maintenance is a class
  like the others (its rate from the planned interruptions of Llama 3, its repair time the window).
* **Burst pools** (``policy.burst``): a rented domain's servers fail like owned ones (events on domains not
  rented, or still being provisioned, are dropped: thinning). The cloud replaces the failed server after the
  class's repair time, as for an owned one; meanwhile its chips are out of placement and the domain stays rented
  (charged) until they are back and it is idle past ``min_rental``. When the pool leaves, servers still in repair
  come back at once (their rental ends). Hot spares and maintenance windows are not allowed there.
* **Hot spares** (``hot_spares``): whole servers held out of placement from the start. A failed server is
  replaced by a spare at once (its chips stay placeable; the interrupted jobs still restart); the repaired server
  becomes a spare again. Without a spare left, the failed server leaves the allocator as above.
* **Rack failures** (``rack_share``, default 0): that share of the network class's events takes the struck
  chip's whole rack (``servers_per_rack × chips_per_server`` chips, counted in domain order: the servers under
  one top-of-rack switch) for one network repair, interrupting every job holding chips there at one instant
  (cause ``network-rack``, counted after the component classes, ``EXTRA_CAUSES``). The event rate stays the
  network class's (Llama 3 counts interruptions, one per switch failure), so per-chip counts are unchanged.
  The extra draw is made only when ``rack_share > 0``: runs without it draw exactly what they drew before.
* **Maintenance windows** (``maintenance``): dated, optionally repeating; each takes whole domains out of
  placement for its length (``_window``), interrupting the jobs there (cause ``maintenance-window``), with an
  optional drain before it (the domains closed: no new job). Their chip-time is counted apart from repairs.
* **Checkpoints.** A job on pool ``p`` saves its state every ``C`` seconds of run time; a save takes
  ``s = params × train_bytes_per_param / checkpoint_storage_gb_per_s`` (the job's model; 0 for jobs without
  one) and adds to the run time (run time × (1 + s / C)). ``C`` is fixed or ``optimal`` (Young/Daly:
  ``sqrt(2 s M)`` with ``M = 1 / (Σ_c λ_c × chips)`` the gang's MTBF on that pool); with ``s = 0`` or no failure
  rate the fixed ``policy.preemption.checkpoint_interval`` is used. After any preemption the next run first
  spends ``restart_delay + s`` (the restore reads the state back at the same bandwidth) before computing.
  **Shared storage bandwidth**: ``checkpoint_storage_gb_per_s`` is the site's total. A job starting while other
  checkpointing jobs run gets ``1 / n`` of it, ``n = 1 + Σ_j s_j / (C_j + s_j)`` over those jobs (the expected
  number of saves overlapping its own: each is saving that share of its time): its save and restore take
  ``n × s`` and ``C`` (when optimal) is Young/Daly's with that save time (``_shared_save``). The share is fixed at
  each (re)start: jobs that start or end later do not change it; a job alone on the site is unchanged.
  A run preempted after ``e`` seconds keeps ``k = floor((e − o) / (C + s))`` whole periods (``o``: its restart
  overhead) and loses the rest: lost time < ``o + C + s``. The last period's save is charged although a
  finishing job would not need it.
* **Goodput** of a job = useful chip-time (its work at the pool's speed) / chip-time its gang held.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import math
from array import array
from dataclasses import dataclass
from math import sqrt

import numpy as np
import pandas as pd

from sim.scenario.failures_schema import COMPONENT_CLASSES, EXTRA_CAUSES

FAIL, REPAIR = 0, 1
WINDOW_DRAIN, WINDOW_START, WINDOW_END = 2, 3, 4  # maintenance windows (``maintenance``)
DAY_S = 86400.0
RUN_FIELDS, RUN_BASE, RUN_SAVE, RUN_INTERVAL, RUN_OVERHEAD, RUN_NEXT = 5, 0, 1, 2, 3, 4  # ``FailureProcess.runs``
UNIFORM_BLOCK = 1024  # uniform draws taken from the failures stream at once (``FailureProcess._uniform``)
# causes counted after the component classes (``EXTRA_CAUSES``) in ``events``, ``by_cause``, ...
RACK, WINDOW = len(COMPONENT_CLASSES), len(COMPONENT_CLASSES) + 1
NETWORK = COMPONENT_CLASSES.index("network")


@dataclass(frozen=True)
class FailureConfig:
    """The resolved failure model of a run (units in the names)."""

    rates_per_chip_s: np.ndarray   # P × C failures per chip-second, by pool and component class
    repair_s: tuple[float, ...]     # mean repair time per class [s]; 0: nothing leaves
    weibull_shape: float | None     # None: exponential gaps
    restart_s: float                # restart delay before the restore [s]
    save_s: np.ndarray              # per job: checkpoint save (= restore) time [s]
    interval_s: float | None        # fixed checkpoint interval [s]; None: optimal
    fallback_interval_s: float      # policy.preemption.checkpoint_interval [s]
    spare_chips: tuple[int, ...]    # hot spares per pool [chips]
    rack_share: float = 0.0         # share of network failures that take a whole rack
    rack_chips: tuple[int, ...] = ()  # chips of one rack per pool (servers_per_rack × chips_per_server)
    # maintenance windows: (pool, start [s], length [s], share of the pool's domains, repeat [s] or None, drain [s])
    maintenance: tuple[tuple[int, float, float, float, float | None, float], ...] = ()


def profile_values(catalog, config) -> tuple[dict, dict, dict, float]:
    """(class -> rate per 1,000 chip-days, accelerator -> class -> rate, class -> repair [s], restart [s]) of
    ``config`` (the scenario's ``failures`` section) over its catalog profile."""
    profile = catalog.failure_profiles[config.profile]
    rates = {c: float(profile["rates_per_1000_chip_days"][c]["value"]) for c in COMPONENT_CLASSES}
    rates.update(config.rates_per_1000_chip_days)
    by_accel = {a: {c: float(v["value"]) for c, v in classes.items()}
                for a, classes in profile.get("accelerators", {}).items()}
    if config.rates_per_1000_chip_days:  # a scenario's own rates for every chip replace per-chip profile values
        by_accel = {a: {c: v for c, v in classes.items() if c not in config.rates_per_1000_chip_days}
                    for a, classes in by_accel.items()}
    for accel, classes in config.accelerator_rates_per_1000_chip_days.items():
        by_accel[accel] = {**by_accel.get(accel, {}), **classes}
    repair = {c: float(profile["repair_time_h"][c]["value"]) * 3600.0 for c in COMPONENT_CLASSES}
    repair.update(config.repair_time)
    restart = config.restart_delay if config.restart_delay is not None else float(profile["restart_delay_s"]["value"])
    return rates, by_accel, repair, float(restart)


def resolve_failures(scenario, catalog, fleet, jobs) -> FailureConfig | None:
    """The run's ``FailureConfig`` (None without a ``failures`` section). ``jobs`` is the job table (its
    ``model`` column gives each job's state size). Every pool gets failures: training's here, inference
    replicas' from the same config (``sim.serving.failures``)."""
    config = scenario.failures
    if config is None:
        return None
    rates, by_accel, repair, restart = profile_values(catalog, config)
    per_chip_s = np.array([[by_accel.get(p.accelerator.id, {}).get(c, rates[c]) / 1000.0 / DAY_S
                            for c in COMPONENT_CLASSES] for p in fleet.pools], dtype=np.float64).reshape(-1, 6)
    bandwidth = fleet.site.checkpoint_storage_gb_per_s * 1e9
    state = {m.id: m.params * m.train_bytes_per_param for m in catalog.models.values()}
    codes, models = pd.factorize(jobs["model"])  # a few models: one look-up each, not one per job
    per_model = np.array([state.get(model, 0.0) / bandwidth for model in models] + [0.0], dtype=np.float64)
    save = per_model[codes]  # code -1 (no model) reads the trailing 0
    names = {p.name: p.index for p in fleet.pools}
    spares = [0] * len(fleet.pools)
    for name, chips in config.hot_spares.items():
        spares[names[name]] = chips
    if config.checkpoint_interval == "optimal":
        interval = None
    elif config.checkpoint_interval is None:
        interval = float(scenario.policy.preemption.checkpoint_interval)
    else:
        interval = float(config.checkpoint_interval)
    rack_share = config.rack_share
    if rack_share == "profile":
        rack_share = float(catalog.failure_profiles[config.profile]["network_rack_share"]["value"])
    origin = dt.datetime.combine(scenario.start, dt.time())
    windows = tuple((names[w.pool], window_start_s(w.start, origin), w.hours * 3600.0, w.fraction,
                     w.every_days * DAY_S if w.every_days is not None else None, w.drain_hours * 3600.0)
                    for w in config.maintenance)
    return FailureConfig(
        rates_per_chip_s=per_chip_s, repair_s=tuple(repair[c] for c in COMPONENT_CLASSES),
        weibull_shape=config.weibull_shape if config.distribution == "weibull" else None, restart_s=restart,
        save_s=save, interval_s=interval,
        fallback_interval_s=float(scenario.policy.preemption.checkpoint_interval),
        spare_chips=tuple(spares), rack_share=float(rack_share),
        rack_chips=tuple(p.chips_per_server * p.servers_per_rack for p in fleet.pools),
        maintenance=windows)


def _less(parts, chips: dict[int, int]) -> tuple:
    """``parts`` ``((domain, n), ...)`` less ``chips`` per domain (taken from the first parts of a domain)."""
    out = []
    for domain, n in parts:
        cut = min(n, chips.get(domain, 0))
        if cut:
            chips[domain] -= cut
        if n - cut:
            out.append((domain, n - cut))
    return tuple(out)


def window_start_s(start: dt.date, origin: dt.datetime) -> float:
    """Seconds from the run's start (``origin``) to a window's ``start`` (a date: its 00:00)."""
    if not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time())
    return (start - origin).total_seconds()


class FailureProcess:
    """The failure and repair timers of one run and the per-job checkpoint bookkeeping (module docstring)."""

    def __init__(self, cluster, config: FailureConfig, rng: np.random.Generator):
        from sim.training import sharing  # sharing imports nothing from here; the late import keeps it that way

        self.cluster, self.config, self.rng = cluster, config, rng
        self.uniforms: list[float] = []  # a block of uniform draws (``_uniform``) and the next one to use
        self.uniform_next = 0
        self.preempt = sharing.preempt  # read once: an import statement per interruption costs a Python call
        pools = cluster.pools
        self.rates = config.rates_per_chip_s
        self.rate_per_chip = self.rates.sum(axis=1)  # per pool [1/s]
        self.class_cdf = np.cumsum(self.rates, axis=1) / np.where(self.rate_per_chip > 0, self.rate_per_chip,
                                                                   1.0)[:, None]
        self.domain_starts = [np.cumsum([0] + a.size) for a in cluster.allocators]
        # the same as Python lists, and each pool's mean gap between failures [s]: a failure event reads them with
        # ``bisect`` and plain floats, not NumPy scalar calls (same values, same draws)
        self.starts_list = [starts.tolist() for starts in self.domain_starts]
        self.cdf_list = self.class_cdf.tolist()
        self.gap_mean = [1.0 / (rate * pool.count) if rate * pool.count > 0 else math.inf
                         for rate, pool in zip(self.rate_per_chip.tolist(), pools)]
        # per pool, per domain: training jobs running there -> their chips there, in start order (of their current
        # runs): ``Cluster.try_start`` files a run, ``Cluster._complete`` (completion or preemption) removes it
        self.domain_jobs: list[list[dict[int, int]]] = [[{} for _ in a.size] for a in cluster.allocators]
        self.timers: list[tuple] = []
        self.sequence = 0
        n = len(cluster.arrival)
        # per job, its current (last) run: ``RUN_FIELDS`` raw doubles side by side (written on every start: one
        # place in memory per job, no float object kept alive): its run time without checkpoints [s], its save
        # time (``_shared_save``; NaN for a job that saves nothing) and its Young/Daly interval with it (NaN: a fixed
        # interval, ``intervals``) [s], the restart + restore at its start [s], and the restart + restore before
        # its next run (set when it is preempted; 0 before) [s]
        self.runs = array("d", [0.0, math.nan, math.nan, 0.0, 0.0]) * n
        # counters in Python containers (an interruption updates several: NumPy scalar updates cost a microsecond
        # each), NumPy arrays in ``outcome``
        self.interruptions = array("q", bytes(8 * n))
        self.failure_lost_chip_s = array("d", bytes(8 * n))
        self.useful_chip_s = array("d", bytes(8 * n))
        self.held_chip_s = array("d", bytes(8 * n))
        self.preempted_runs: list[tuple] = []  # (job, pool, useful chip-s, held chip-s) of each preempted run
        classes = len(COMPONENT_CLASSES) + len(EXTRA_CAUSES)
        self.events = [[0] * classes for _ in pools]        # failures of training or free chips, per pool and cause
        self.hit_jobs = [[0] * classes for _ in pools]      # ... that interrupted a training job
        self.unavailable = [0] * len(pools)
        self.by_cause = [[0] * classes for _ in pools]      # interruptions (jobs) by cause
        self.lost_by_cause = [[0.0] * classes for _ in pools]  # their lost chip-seconds
        self.down_chip_s = np.zeros(len(pools))
        self.down_since: dict[int, tuple] = {}   # repair timer sequence -> (pool, start, chips)
        self.repairs = np.zeros(len(pools), dtype=np.int64)
        self.spares_free = [0] * len(pools)
        self.spare_domains: list[set[int]] = [set() for _ in pools]  # domains holding hot spares
        for p, chips in enumerate(config.spare_chips):
            server = min(pools[p].chips_per_server, cluster.allocators[p].domain_chips) or 1
            for _ in range(chips // server):
                parts = cluster.allocators[p].place(server)
                if parts is None:
                    raise RuntimeError(f"pool {pools[p].name}: no room for {chips} chips of hot spares")
                self.spare_domains[p].update(d for d, _ in parts)
                self.spares_free[p] += 1
        self.spare_servers = list(self.spares_free)
        # logs for the time series: (pool, start, end, chips) of chips away (repair and windows), and (time, pool,
        # cause) of every interruption
        self.down_log: list[tuple] = []
        self.interrupt_log: list[tuple] = []
        # maintenance windows: (window, repeat) -> [pool, domains, [(parts, since), ...] held away, whether it has
        # started, domains it closed for its drain]; per pool, domain -> that key
        self.windows: dict[tuple, list] = {}
        self.in_window: list[dict[int, tuple]] = [{} for _ in pools]
        self.window_chip_s = np.zeros(len(pools))
        self.windows_opened = np.zeros(len(pools), dtype=np.int64)
        self.intervals = self._intervals()  # N × P checkpoint interval [s]
        self.factor = 1.0 + config.save_s[:, None] / self.intervals  # run time with saves / without
        # a fixed interval gives one factor per job, whatever the pool: read from a list (no call per start)
        self.job_factor = self.factor[:, 0].tolist() if config.interval_s is not None and self.factor.size else None
        # shared checkpoint bandwidth (``_shared_save``): running savers' share of time spent saving, their sum,
        # and per job the save time and interval of its current (last) run where sharing changed them
        # running savers -> their share; a run leaves it when it completes or is preempted (``Cluster._complete``)
        self.saver_share: dict[int, float] = {}
        self.saving = 0.0
        self.save_list = array("d", np.asarray(config.save_s, dtype=np.float64).tobytes())  # per job [s]
        self.rate_list = self.rate_per_chip.tolist()
        self.busy_chips = cluster.busy_chips
        self.fixed_interval_s = config.interval_s
        # repair sequence -> [[sequence, domain, chips, replica], ...]: chips away for repair booked to inference
        # replicas of the reservation schedule (``sharing.book_replica``); replicas placed that way, per pool
        self.booked: dict[int, list[list]] = {}
        self.booked_replicas = [0] * len(pools)
        for p, pool in enumerate(pools):
            if self.rate_per_chip[p] > 0 and pool.count > 0:
                self._push(self._gap(p), FAIL, p, None)
        for w, (p, start, _, _, _, drain) in enumerate(config.maintenance):
            self._push(max(0.0, start - drain), WINDOW_DRAIN if drain > 0 else WINDOW_START, p, (w, 0))
        self._arm()

    # -- timers -------------------------------------------------------------------------------------
    def _gap(self, pool: int) -> float:
        mean = self.gap_mean[pool]
        shape = self.config.weibull_shape
        if shape is None:
            return -mean * math.log1p(-self._uniform())
        return (-math.log1p(-self._uniform())) ** (1.0 / shape) * mean / math.gamma(1.0 + 1.0 / shape)

    def _uniform(self) -> float:
        """The next uniform draw in [0, 1) of the run's failures stream. Every draw of the failure process is one
        (gaps, struck chip, class, rack share, repair times: turned into their distributions by inversion), taken
        from blocks of ``UNIFORM_BLOCK`` drawn at once: a NumPy call per draw cost several microseconds."""
        k = self.uniform_next
        if k == len(self.uniforms):
            self.uniforms, k = self.rng.random(UNIFORM_BLOCK).tolist(), 0
        self.uniform_next = k + 1
        return self.uniforms[k]

    def _exponential(self, mean: float) -> float:
        """An exponential draw of ``mean`` (inversion of one uniform)."""
        return -mean * math.log1p(-self._uniform())

    def _push(self, at: float, kind: int, pool: int, payload) -> None:
        self.sequence += 1
        heapq.heappush(self.timers, (at, self.sequence, kind, pool, payload))

    def _arm(self) -> None:
        """Set ``next_s``, the earliest timer, and put it in the cluster's completion heap as a *sentinel*
        ``(next_s, -1)``, marked stale: the cluster's loop finds its next instant and whether the failure process
        is due without a test of its own on every event (it fires when it pops the sentinel). One sentinel is
        pending at a time: ``fire`` handles every timer due at its instant, so the next one is always later."""
        self.next_s = self.timers[0][0] if self.timers else math.inf
        if self.next_s < math.inf:
            sentinel = (self.next_s, -1)
            heapq.heappush(self.cluster.completions, sentinel)
            self.cluster.stale_completions.add(sentinel)

    def fire(self, t: float, freed) -> tuple[object, list[int]]:
        """Apply the failures and repairs due at ``t``; returns (freed pools, shapes of the jobs requeued).

        A pool where a job was interrupted counts as freed; the requeued jobs' shapes are to be tried on every
        pool they may use (as new arrivals are): no other pool gained chips, so other waiting shapes need not be
        tried there again."""
        timers, requeued = self.timers, []
        while timers and timers[0][0] <= t:
            _, sequence, kind, pool, payload = heapq.heappop(timers)
            if kind >= WINDOW_DRAIN:
                if self._window(kind, pool, payload, t, requeued):
                    freed = set(freed)
                    freed.add(pool)
                continue
            if kind == REPAIR:
                if payload is not None and sequence not in self.down_since:
                    continue  # returned early: its burst pool left (``pool_left``)
                self.repairs[pool] += 1
                if payload is None:
                    self.spares_free[pool] += 1  # a repaired server becomes a spare again
                else:
                    _, since, chips = self.down_since.pop(sequence)  # chips down (those booked are not)
                    if chips:
                        self.down_chip_s[pool] += (t - since) * chips
                        self.down_log.append((pool, since, t, chips))
                    if self.booked and sequence in self.booked:  # chips booked to a replica stay with it
                        payload = self._unbook_repair(sequence, payload)
                    self.cluster.allocators[pool].release(payload)
                    if self.in_window[pool]:
                        self._keep_in_window(pool, payload, t)
                    freed = set(freed)
                    freed.add(pool)
            else:
                if self._fail(pool, t, requeued):
                    freed = set(freed)
                    freed.add(pool)
                self._push(t + self._gap(pool), FAIL, pool, None)
        self._arm()
        return freed, requeued

    def _fail(self, pool: int, t: float, requeued: list[int]) -> bool:
        """One failure event of ``pool`` at ``t``; returns whether a job was interrupted (their shapes are
        appended to ``requeued``)."""
        cluster = self.cluster
        if not cluster.online[pool]:
            return False
        allocator = cluster.allocators[pool]
        starts = self.starts_list[pool]
        chip = min(int(self._uniform() * starts[-1]), starts[-1] - 1)
        domain = bisect.bisect_right(starts, chip) - 1
        if allocator.closed and domain in allocator.closed or domain in self._undelivered(pool):
            return False
        cls = min(bisect.bisect_right(self.cdf_list[pool], self._uniform()), len(COMPONENT_CLASSES) - 1)
        offset = chip - starts[domain]
        here = self._running_in(pool, domain)
        victim, used = None, 0
        for job, chips in here.items():
            used += chips
            if offset < used:
                victim = job
                break
        if victim is None and offset >= used + allocator.free[domain]:
            self.unavailable[pool] += 1  # away for repair, or held by inference, a spare or a delivery
            return False
        if cls == NETWORK and self.config.rack_share > 0 and self._uniform() < self.config.rack_share:
            return self._fail_rack(pool, chip, t, requeued)
        self.events[pool][cls] += 1
        if victim is not None:
            self.hit_jobs[pool][cls] += 1
            self._interrupt(victim, pool, cls, t, requeued)
        repair = self.config.repair_s[cls]
        if repair <= 0:
            return victim is not None
        duration = self._exponential(repair)
        if self.spares_free[pool] > 0:
            self.spares_free[pool] -= 1
            self._push(t + duration, REPAIR, pool, None)
            return victim is not None
        server = min(cluster.pools[pool].chips_per_server, allocator.size[domain])
        others = sorted((cluster.start_s[j], j) for j in here if j != victim) if allocator.free[domain] < server else ()
        while allocator.free[domain] < server and others:
            self._interrupt(others.pop()[1], pool, cls, t, requeued)
            victim = victim if victim is not None else -1
        chips = min(allocator.free[domain], server)
        if chips:
            parts = allocator.take(domain, chips)
            self._push(t + duration, REPAIR, pool, parts)
            self.down_since[self.sequence] = (pool, t, chips)
        return victim is not None

    def _interrupt(self, job: int, pool: int, cls: int, t: float, requeued: list[int]) -> None:
        cluster = self.cluster
        self.preempt(cluster, job, t)
        requeued.append(cluster.shape[job])
        lost = cluster.segments[-1][4]
        self.interruptions[job] += 1
        self.failure_lost_chip_s[job] += lost
        self.by_cause[pool][cls] += 1
        self.lost_by_cause[pool][cls] += lost
        self.interrupt_log.append((t, pool, cls))

    # -- rack failures and maintenance windows ------------------------------------------------------
    def _fail_rack(self, pool: int, chip: int, t: float, requeued: list[int]) -> bool:
        """A network failure of the rack holding ``chip`` (its top-of-rack switch): the rack is the pool's chips
        ``[r × R, (r + 1) × R)`` in domain order (``R = servers_per_rack × chips_per_server``: several domains,
        or part of one larger domain such as a TPU pod). Every training job holding chips of that range (by the
        allocator's chip counting: the jobs of a domain first, then its free chips) is interrupted at once,
        cause ``network-rack``, and the rack's free chips leave for one repair of the network class (hot spares
        are not used: they are servers, not racks). Undelivered, draining or retired domains of the rack are
        left alone. Returns whether a job was interrupted."""
        cluster, allocator = self.cluster, self.cluster.allocators[pool]
        starts, size = self.domain_starts[pool], self.config.rack_chips[pool]
        low = chip // size * size
        high = min(low + size, int(starts[-1]))
        first = int(np.searchsorted(starts, low, side="right")) - 1
        undelivered = self._undelivered(pool)
        self.events[pool][RACK] += 1
        hit, taken = False, []
        for domain in range(first, len(starts) - 1):
            begin = int(starts[domain])
            if begin >= high:
                break
            if domain in allocator.closed or domain in undelivered:
                continue
            lo, hi = max(low, begin) - begin, min(high, int(starts[domain + 1])) - begin
            used = 0
            for job, chips in self._running_in(pool, domain).items():
                if used < hi and used + chips > lo and job in cluster.placement:
                    self._interrupt(job, pool, RACK, t, requeued)
                    hit = True
                used += chips
            chips = min(allocator.free[domain], hi - lo)
            if chips:
                taken.append((domain, chips))
        if hit:
            self.hit_jobs[pool][RACK] += 1
        repair = self.config.repair_s[NETWORK]
        if repair > 0 and taken:
            parts = tuple(part for domain, chips in taken for part in allocator.take(domain, chips))
            self._push(t + self._exponential(repair), REPAIR, pool, parts)
            self.down_since[self.sequence] = (pool, t, sum(chips for _, chips in taken))
        return hit

    def _window(self, kind: int, pool: int, key: tuple, t: float, requeued: list[int]) -> bool:
        """A maintenance window's drain begins (``WINDOW_DRAIN``), the window opens (``WINDOW_START``) or closes.

        Its first event chooses the domains: the pool's eligible ones (full size, delivered, not draining or
        retired, holding no inference replica, hot spare or other window: ``_maintainable``), highest index
        first, ``ceil(fraction × their number)`` of them, the k-th repeat taking the next ones in turn (wrapping
        round), and schedules the next repeat (within the run). A pool not online then, or without an eligible
        domain, skips this repeat. A drain (``drain_hours``) closes the domains (``DomainAllocator.close``): no
        job starts there, jobs there run on. Opening: every training job still there is interrupted (cause
        ``maintenance-window``) and the domains' free chips leave placement; chips back from repair during the
        window stay out with them. Closing: the chips return and drained domains reopen. Returns whether a job
        was interrupted or chips returned (waiting jobs are then tried again)."""
        cluster, allocator = self.cluster, self.cluster.allocators[pool]
        if kind == WINDOW_END:
            _, domains, held, _, drained = self.windows.pop(key)
            for domain in domains:
                del self.in_window[pool][domain]
            for parts, since in held:
                chips = sum(n for _, n in parts)
                self.window_chip_s[pool] += (t - since) * chips
                self.down_log.append((pool, since, t, chips))
                allocator.release(parts)
            for domain in drained:
                allocator.reopen(domain)
            return bool(held) or bool(drained)
        w, repeat = key
        _, start, length, fraction, every, drain = self.config.maintenance[w]
        state = self.windows.get(key)
        if state is None:  # the first event of this repeat: choose its domains, schedule the next repeat
            following = start + (repeat + 1) * every if every is not None else math.inf
            if following < cluster.horizon_s:
                self._push(max(0.0, following - drain), WINDOW_DRAIN if drain > 0 else WINDOW_START, pool,
                           (w, repeat + 1))
            eligible = self._maintainable(pool) if cluster.online[pool] else []
            if not eligible:
                return False
            n = min(len(eligible), math.ceil(fraction * len(eligible) - 1e-9))
            domains = [eligible[(repeat * n + i) % len(eligible)] for i in range(n)]
            state = self.windows[key] = [pool, domains, [], False, []]
            for domain in domains:
                self.in_window[pool][domain] = key
            if kind == WINDOW_DRAIN:
                for domain in domains:
                    allocator.close(domain)
                state[4] = domains
                self._push(start + repeat * (every or 0.0), WINDOW_START, pool, key)
                return False
        hit, held = False, state[2]
        for domain in state[1]:
            for job in self._running_in(pool, domain):
                if job in cluster.placement:  # a gang over several of these domains is interrupted once
                    self._interrupt(job, pool, WINDOW, t, requeued)
                    hit = True
            if allocator.free[domain]:
                held.append((allocator.take(domain, allocator.free[domain]), t))
        state[3] = True
        self.windows_opened[pool] += 1
        self._push(t + length, WINDOW_END, pool, key)
        return hit

    def _maintainable(self, pool: int) -> list[int]:
        """Domains of ``pool`` a window may take now, highest index first: full size, delivered, not closed
        (draining or retired), not holding inference replicas (from t = 0 or placed by the scaling schedule) or
        hot spares, not in another window."""
        cluster, allocator = self.cluster, self.cluster.allocators[pool]
        held = {d for parts in cluster.held[pool] for d, _ in parts}
        replicas = {d for group, placements in cluster.replica_placements.items()
                    if cluster.group_pool.get(group) == pool for parts in placements for d, _ in parts}
        taken = (self._undelivered(pool) | replicas | (cluster.static_domains[pool] - held) | allocator.closed
                 | self.spare_domains[pool] | set(self.in_window[pool]))
        return [d for d in range(len(allocator.size) - 1, -1, -1)
                if allocator.size[d] == allocator.domain_chips and d not in taken]

    def _keep_in_window(self, pool: int, parts, t: float) -> None:
        """Chips back from repair (``parts``, just released) into a domain under maintenance leave again until
        the window closes."""
        allocator = self.cluster.allocators[pool]
        for domain, chips in parts:
            key = self.in_window[pool].get(domain)
            if key is not None and self.windows[key][3]:  # during a drain they stay in the closed domain
                self.windows[key][2].append((allocator.take(domain, chips), t))

    def _undelivered(self, pool: int) -> set[int]:
        """Domains of ``pool`` not there now: deliveries still to come and, on a burst pool, domains not rented."""
        burst = self.cluster.burst
        state = burst.by_pool.get(pool) if burst is not None else None
        absent = set() if state is None else set(range(len(state.sizes))) - set(state.rented)
        pending = len(self.cluster.pending_deliveries[pool])
        if not pending:
            return absent
        held = self.cluster.held[pool]
        return absent | {d for parts in held[len(held) - pending:] for d, _ in parts}

    def pool_left(self, pool: int, t: float) -> None:
        """A burst pool leaves at ``t``: its servers still in repair come back now (the cloud's, not ours: the
        rental ends with them), so that its domains can be given back; their late repair timers are ignored."""
        for at, sequence, kind, p, parts in self.timers:
            if kind == REPAIR and p == pool and parts is not None and sequence in self.down_since:
                _, since, chips = self.down_since.pop(sequence)
                if chips:
                    self.down_chip_s[pool] += (t - since) * chips
                    self.down_log.append((pool, since, t, chips))
                if self.booked and sequence in self.booked:
                    parts = self._unbook_repair(sequence, parts)
                self.cluster.allocators[pool].release(parts)

    # -- repairs booked to inference replicas (``sim.training.sharing.book_replica``) ------------------
    def in_repair(self, pool: int) -> bool:
        """Whether any chip of ``pool`` is away for repair now."""
        return any(entry[0] == pool for entry in self.down_since.values())

    def _repairs(self, pool: int) -> list[tuple]:
        """``(end [s], sequence, parts)`` of ``pool``'s repairs under way, earliest end first."""
        down = self.down_since
        return sorted((at, sequence, parts) for at, sequence, kind, p, parts in self.timers
                      if kind == REPAIR and p == pool and parts is not None and sequence in down)

    def _booked_in(self, sequence: int, domain: int) -> int:
        return sum(record[2] for record in self.booked.get(sequence, ()) if record[1] == domain)

    def repair_chips(self, pool: int) -> dict[int, int]:
        """Chips of ``pool`` away for repair and not booked to a replica, per domain."""
        chips: dict[int, int] = {}
        for _, sequence, parts in self._repairs(pool):
            for domain, n in parts:
                chips[domain] = chips.get(domain, 0) + n - self._booked_in(sequence, domain)
        return chips

    def _down_from(self, sequence: int, t: float, change: int) -> None:
        """Repair ``sequence`` has ``change`` more chips down from ``t`` (fewer: booked to a replica; more: handed
        back by one): the chip-time down so far is counted and logged, and a new segment starts."""
        pool, since, chips = self.down_since[sequence]
        if t > since and chips:
            self.down_chip_s[pool] += (t - since) * chips
            self.down_log.append((pool, since, t, chips))
        self.down_since[sequence] = (pool, t, chips + change)

    def book(self, pool: int, domain: int, chips: int, replica) -> None:
        """Book ``chips`` of ``domain`` away for repair to ``replica`` (a ``sharing.BookedReplica``), from the
        repairs ending first: they stay out of placement until both the repair has ended and the replica has left,
        and count as the replica's (not down) meanwhile."""
        for _, sequence, parts in self._repairs(pool):
            if not chips:
                break
            there = sum(n for d, n in parts if d == domain) - self._booked_in(sequence, domain)
            if there > 0:
                record = [sequence, domain, min(there, chips), replica]
                self.booked.setdefault(sequence, []).append(record)
                replica.bookings.append(record)
                self._down_from(sequence, self.cluster.now, -record[2])
                chips -= record[2]
        if chips:
            raise RuntimeError(f"pool {self.cluster.pools[pool].name}: {chips} chips of domain {domain} to book are "
                               "not away for repair")
        self.booked_replicas[pool] += 1

    def _unbook_repair(self, sequence: int, parts) -> tuple:
        """Repair ``sequence`` ends: its chips booked to replicas stay with them (their chips from now on); returns
        the rest of ``parts``, to release."""
        booked: dict[int, int] = {}
        for record in self.booked.pop(sequence):
            record[3].bookings[:] = [r for r in record[3].bookings if r is not record]
            booked[record[1]] = booked.get(record[1], 0) + record[2]
        return _less(parts, booked)

    def replica_left(self, replica) -> tuple:
        """A replica with booked chips leaves: those still in repair go back to their repair (released at its
        end); returns the rest of its placement, to release."""
        booked: dict[int, int] = {}
        for record in replica.bookings:
            records = self.booked[record[0]]
            records[:] = [r for r in records if r is not record]
            if not records:
                del self.booked[record[0]]
            booked[record[1]] = booked.get(record[1], 0) + record[2]
            self._down_from(record[0], self.cluster.now, record[2])  # down again until the repair ends
        replica.bookings = []
        return _less(tuple(replica), booked)

    # -- jobs -----------------------------------------------------------------------------------------
    def _intervals(self) -> np.ndarray:
        """Checkpoint interval of every job on every pool [s] (fixed, or Young/Daly)."""
        config, cluster = self.config, self.cluster
        shape = (len(cluster.arrival), len(cluster.pools))
        if config.interval_s is not None:
            return np.full(shape, config.interval_s)
        rate = self.rate_per_chip[None, :] * cluster.busy_chips_array[:, None]
        save = np.broadcast_to(config.save_s[:, None], shape)
        usable = (save > 0) & (rate > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            optimal = np.sqrt(2.0 * save / np.where(usable, rate, 1.0))
        return np.where(usable, optimal, config.fallback_interval_s)

    def interval_s(self, job: int, pool: int) -> float:
        """Checkpoint interval of ``job`` on ``pool`` [s]."""
        return self.intervals.item(job, pool)

    def run_time(self, job: int, pool: int, base_s: float) -> float:
        """Run time of what is left of ``job`` on ``pool`` with checkpoint saves and, after a preemption, the
        restart and restore [s]; ``base_s`` is the run time without them."""
        overhead = self.runs[RUN_FIELDS * job + RUN_NEXT]
        if self.saver_share and self.save_list[job] > 0:
            save, interval = self._shared_save(job, pool)
            restore = save - self.save_list[job]  # the restore reads at the same share
            return base_s * (1.0 + save / interval) + (overhead + restore if overhead else 0.0)
        return base_s * self.factor.item(job, pool) + overhead

    def _shared_save(self, job: int, pool: int) -> tuple[float, float]:
        """(save time [s], checkpoint interval [s]) of ``job`` if it (re)started on ``pool`` now, the site's
        checkpoint storage bandwidth shared with the jobs saving at the same time.

        Model: a running job that saves ``s_j`` every ``C_j`` is saving a share ``s_j / (C_j + s_j)`` of the
        time; the expected number of jobs whose saves overlap ours is ``n = 1 + Σ_j s_j / (C_j + s_j)`` over the
        other running jobs that checkpoint (their values fixed at their own start), and each gets ``1 / n`` of
        ``checkpoint_storage_gb_per_s``: the save (and the restore after a preemption) takes ``n × s``. The
        optimal interval is Young/Daly's with that save time. Fixed for the run: jobs starting or ending later do
        not change it (a job alone on the site is unchanged). The sum ``saving`` is kept as runs start and end:
        ``Cluster.try_start`` adds a run's share (the same computation, inlined there: it runs on every start)
        and ``Cluster._complete`` takes it out when the run completes or is preempted. O(1) per start."""
        alone = self.save_list[job]
        others = self.saving - self.saver_share.get(job, 0.0)  # a running job's own share is not an other's
        if alone <= 0 or others <= 0:
            return alone, self.intervals.item(job, pool)
        save = alone * (1.0 + others)
        if self.fixed_interval_s is not None:
            return save, self.fixed_interval_s
        rate = self.rate_list[pool] * self.busy_chips[job]
        return save, (sqrt(2.0 * save / rate) if rate > 0 else self.config.fallback_interval_s)

    def _forget_saver(self, job: int) -> None:
        share = self.saver_share.pop(job)
        self.saving = self.saving - share if self.saver_share else 0.0

    def _running_in(self, pool: int, domain: int) -> dict[int, int]:
        """Training jobs running in ``domain`` of ``pool`` now -> their chips there, in the order their runs
        started (a copy: interrupting them changes the index)."""
        return dict(self.domain_jobs[pool][domain])

    def _run_field(self, field: int) -> np.ndarray:
        """One field of ``runs`` for every job (a view)."""
        return np.frombuffer(self.runs, dtype=np.float64).reshape(-1, RUN_FIELDS)[:, field]

    @property
    def run_base(self) -> np.ndarray:
        return self._run_field(RUN_BASE)

    @property
    def run_save(self) -> np.ndarray:
        return self._run_field(RUN_SAVE)

    @property
    def run_interval(self) -> np.ndarray:
        return self._run_field(RUN_INTERVAL)

    @property
    def run_overhead(self) -> np.ndarray:
        return self._run_field(RUN_OVERHEAD)

    def preempted(self, job: int, elapsed_s: float) -> tuple[float, float]:
        """``job`` was stopped after ``elapsed_s`` of its run: returns (run seconds kept, base run seconds of
        progress); the next run starts with the restart delay and the restore. The caller counts the run
        (``count_run``) once it knows the work that progress did at the clock the run had."""
        runs, r = self.runs, RUN_FIELDS * job
        pool, overhead = self.cluster.pool_of[job], runs[r + RUN_OVERHEAD]
        interval, save = self.intervals.item(job, pool), self.save_list[job]
        if job in self.saver_share:  # ``Cluster._complete`` has dropped it already (kept for direct callers)
            self._forget_saver(job)
        if runs[r + RUN_SAVE] == runs[r + RUN_SAVE]:  # not NaN: a shared save
            save = runs[r + RUN_SAVE]
            if runs[r + RUN_INTERVAL] == runs[r + RUN_INTERVAL]:  # not NaN: Young/Daly with it (else fixed)
                interval = runs[r + RUN_INTERVAL]
        periods = math.floor(max(0.0, elapsed_s - overhead) / (interval + save))
        kept = periods * (interval + save)  # the restart overhead of this run is lost with the rest
        runs[r + RUN_NEXT] = self.config.restart_s + self.save_list[job]  # restore: at the next start
        return min(kept, elapsed_s), periods * interval

    def count_run(self, job: int, pool: int, work_s: float, elapsed_s: float) -> None:
        """A preempted run of ``job`` on ``pool`` held its gang ``elapsed_s`` and kept ``work_s`` full-speed
        seconds of work (its progress to its last checkpoint; less than its compute time when a power cap slowed its
        clock): its useful and held chip-seconds."""
        busy = self.cluster.busy_chips[job]
        self.useful_chip_s[job] += work_s * busy
        self.held_chip_s[job] += elapsed_s * busy
        self.preempted_runs.append((job, pool, work_s * busy, elapsed_s * busy))

    def outcome(self, horizon_s: float, start: np.ndarray | None = None, end: np.ndarray | None = None,
                pool: np.ndarray | None = None, work_s: np.ndarray | None = None) -> dict:
        """Per-job and per-pool results (``sim.results.failures``). ``start``, ``end`` and ``pool``: the cluster's
        per-job start and end of the current run and pool index as arrays, when the caller has them already (each
        conversion of a 100k-entry list costs a few ms). ``work_s``: per job, the full-speed seconds of work its
        current run had done by the horizon where a power cap slowed it (``PowerCap.work_done_s``; NaN or None:
        its wall time), so that an unfinished throttled run's useful time is its work, not its wall time."""
        cluster = self.cluster
        useful, held = np.array(self.useful_chip_s, dtype=np.float64), np.array(self.held_chip_s, dtype=np.float64)
        if start is None:
            start = np.asarray(cluster.start_s, dtype=np.float64)
        if end is None:
            end = np.asarray(cluster.end_s, dtype=np.float64)
        if pool is None:
            pool = np.asarray(cluster.pool_of, dtype=np.int64)
        busy = cluster.busy_chips_array
        jobs = np.flatnonzero(~np.isnan(start))  # the current (last) run of every job that has one
        pool, start, end, busy = pool[jobs], start[jobs], end[jobs], busy[jobs]
        overhead = self.run_overhead[jobs]
        base = self.run_base[jobs]
        intervals, saves = self.intervals, self.config.save_s
        run_save = self.run_save
        shared = np.flatnonzero(~np.isnan(run_save))
        if len(shared):  # the save time and interval of runs that shared the checkpoint bandwidth
            intervals, saves = intervals.copy(), saves.copy()
            saves[shared] = run_save[shared]
            run_interval = self.run_interval
            optimal = shared[~np.isnan(run_interval[shared])]  # a fixed interval is not recorded
            intervals[optimal, np.asarray(cluster.pool_of, dtype=np.int64)[optimal]] = run_interval[optimal]
        interval, save = intervals[jobs, pool], saves[jobs]
        done = end <= horizon_s
        ran = np.where(done, end, horizon_s) - start
        worked = ran if work_s is None else np.where(np.isnan(work_s[jobs]), ran, work_s[jobs])
        run_useful = np.where(done, base, np.maximum(0.0, worked - overhead) * interval / (interval + save)) * busy
        useful[jobs] += run_useful
        held[jobs] += ran * busy
        # every run (preempted ones, then the current ones) with its pool: per-pool and per-accelerator goodput
        preempted = np.array(self.preempted_runs, dtype=np.float64).reshape(-1, 4)
        runs = {"job": np.concatenate((preempted[:, 0].astype(np.int64), jobs)),
                "pool": np.concatenate((preempted[:, 1].astype(np.int64), pool)),
                "useful_chip_s": np.concatenate((preempted[:, 2], run_useful)),
                "held_chip_s": np.concatenate((preempted[:, 3], ran * busy))}
        down = self.down_chip_s.copy()
        down_log = list(self.down_log)
        for on, since, chips in self.down_since.values():
            if chips:  # (all booked to replicas: none down)
                down[on] += (horizon_s - since) * chips
                down_log.append((on, since, horizon_s, chips))
        windows = self.window_chip_s.copy()
        for on, _, away, _, _ in self.windows.values():  # windows open at the horizon
            for parts, since in away:
                chips = sum(n for _, n in parts)
                windows[on] += (horizon_s - since) * chips
                down_log.append((on, since, horizon_s, chips))
        return {"interruptions": np.array(self.interruptions, dtype=np.int64),
                "failure_lost_chip_s": np.array(self.failure_lost_chip_s, dtype=np.float64),
                "useful_chip_s": useful, "held_chip_s": held, "runs": runs,
                "events": np.array(self.events, dtype=np.int64),
                "hit_jobs": np.array(self.hit_jobs, dtype=np.int64),
                "unavailable": np.array(self.unavailable, dtype=np.int64),
                "by_cause": np.array(self.by_cause, dtype=np.int64),
                "lost_by_cause": np.array(self.lost_by_cause, dtype=np.float64),
                "down_chip_s": down, "repairs": self.repairs, "spare_servers": self.spare_servers,
                "window_chip_s": windows,
                "windows_opened": self.windows_opened,
                "rack_events": self.config.rack_share > 0, "windows": bool(self.config.maintenance),
                "down_log": down_log, "interrupt_log": self.interrupt_log,
                # checkpoint timing, for the power dips of saves and restarts (``sim.results.checkpoints``)
                "save_s": saves, "interval_s": intervals, "restart_s": self.config.restart_s}
