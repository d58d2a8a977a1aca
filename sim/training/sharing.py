"""Shared pools: inference replicas scale up and down on chips that training uses in between.

The same schedule places and releases the replicas of windowed groups (``active_from`` / ``active_until``,
``sim.fleet.windows``) on any pool: a scale-up at the window's start, a scale-down at its end.

The cluster applies the reservation schedule of ``sim.serving.autoscale`` as its fourth event source
(after completions and pools coming online, before arrivals, at one instant):

* **Scale-down** releases the most recently placed replicas of the group; their pool counts as freed,
  so waiting jobs that may use it are tried at that instant.
* **Scale-up** places each replica inside one scale-up domain (``DomainAllocator.place``, as
  ``allocation.reserve`` does at t = 0). If no domain has room, running training jobs on that pool are
  preempted, **most recently started first** (they have the least work since their start to lose), one
  at a time until the replica fits. This may preempt a job in another domain than the one finally used:
  the allocator counts free chips per domain, not which job holds which chip.
* **Preemption.** A job checkpoints every ``policy.preemption.checkpoint_interval`` (``C``) of run time,
  counted from the start of its current run. Preempted after running ``e`` seconds, it keeps
  ``floor(e / C) · C`` seconds of progress and loses the rest (``lost chip-seconds = (e − saved) × busy
  chips``). It goes back to the wait queue at its arrival position with a remaining fraction of its
  work, so its next run takes ``run time on that pool × remaining fraction``. Restarting costs nothing
  beyond the lost work; a checkpoint costs no time. With a ``failures`` section the intervals are per job and
  saves, restart delay and restore cost time (``sim.training.failures``).
* **Deferred jobs**: a job is counted deferred when it was waiting, for a pool it may use, at an instant
  when a scale-up placed a replica there in chips that were free (no preemption was needed): inference
  took capacity that job was waiting for. It is not a claim that the job would have started.
* **Chips away for repair** (with ``failures``, ``sim.training.failures``): serving was computed first and assumes
  its replicas run on schedule, so the schedule has precedence and a replica never waits. When a scale-up does not
  fit even with every training job of the pool preempted because servers are away for repair, the replica takes the
  domain (validation keeps a replica inside one) whose free, training and repair chips hold it with the most chips
  free or held by training (ties: most free, then lowest index), preempts the training jobs there (most recently
  started first) until the free chips cover it or none is left, takes the free chips, and **books**
  the rest from the repairs in that domain (earliest repair end first): those chips count as the replica's, not as
  placeable, until both the repair has ended and the replica has left (a replica leaving first gives them back to
  their repair, which returns them at its end). Nothing else is preempted, and repairs are booked only for what free
  and training chips cannot give. Simplification: the replica is served at full strength meanwhile (as if the
  operator swapped a server in from stock); serving's own replica failures are drawn apart
  (``sim.serving.failures``), and so a booked chip counts as the replica's (``inference_chips``, up in
  availability), not in ``repair_chips``, from the booking until the replica leaves or the repair ends. Hot
  spares and maintenance windows are refused on pools with scheduled replicas (validation), so no spare stands in.

Validation allows one replica size per shared pool, or pool with a windowed group (``sim.validation.checks``), so a
replica always fits where another one left; should a replica still find no room with every training job of the pool
preempted (and every chip away for repair booked), the run stops with an error naming the time and pool.
"""

from __future__ import annotations

import heapq
import math

NOT_RUNNING = math.nan


def apply_scaling(cluster, t: float, index: int, freed) -> tuple[set, bool, int]:
    """Apply every schedule entry at ``t`` from ``index``; returns (freed pools, whether jobs were
    requeued, next index)."""
    schedule, requeued = cluster.scaling_schedule, False
    freed = set(freed)
    while schedule[index][0] <= t:
        _, group, pool, chips, delta = schedule[index]
        index += 1
        placements = cluster.replica_placements.setdefault(group, [])
        if delta < 0:
            for _ in range(-delta):
                parts = placements.pop()
                if cluster.budgets is not None:  # its racks and rows count it no more (sim.training.budgets)
                    cluster.budgets.replica(pool, parts, -1)
                if type(parts) is BookedReplica:  # chips still in repair go back to their repair
                    parts = cluster.failures.replica_left(parts)
                cluster.allocators[pool].release(parts)
            freed.add(pool)
        else:
            for _ in range(delta):
                requeued |= place_replica(cluster, t, pool, chips, placements)
    return freed, requeued, index


def place_replica(cluster, t: float, pool: int, chips: int, placements: list) -> bool:
    """Place one replica on ``pool``, preempting training there if needed (with chips away for repair making the
    shortfall: ``book_replica``); True if any job was preempted."""
    allocator = cluster.allocators[pool]
    if allocator.can_place(chips):
        note_deferred(cluster, pool)
        placements.append(_place(cluster, pool, chips))
        return False
    if cluster.failures is not None and cluster.failures.in_repair(pool) \
            and not fits_without_training(cluster, pool, chips):
        return book_replica(cluster, t, pool, chips, placements)
    pool_of, start_s = cluster.pool_of, cluster.start_s
    victims = sorted((start_s[job], job) for job in cluster.placement if pool_of[job] == pool)
    while not allocator.can_place(chips):
        if not victims:
            raise RuntimeError(f"t={t:.3f}s: pool {cluster.pools[pool].name}: no room for a {chips}-chip replica "
                               "even with every training job preempted (replica sizes fragment the domains)")
        preempt(cluster, victims.pop()[1], t)
    placements.append(_place(cluster, pool, chips))
    return True


class BookedReplica(tuple):
    """A replica's placement ``((domain, chips), ...)`` that holds chips booked from repairs (``book_replica``):
    ``bookings`` lists its ``[repair sequence, domain, chips, replica]`` records still in repair."""

    def __new__(cls, parts):
        replica = super().__new__(cls, parts)
        replica.bookings = []
        return replica


def training_chips(cluster, pool: int) -> dict[int, int]:
    """Chips of ``pool`` held by training now, per domain (whole gangs' parts, and each open shared chip once)."""
    held: dict[int, int] = {}
    pool_of, share_units = cluster.pool_of, cluster.share_units
    for job, parts in cluster.placement.items():
        if pool_of[job] == pool and not share_units[job]:
            for domain, n in parts:
                held[domain] = held.get(domain, 0) + n
    for parts in cluster.shared[pool].domain_of.values():
        for domain, n in parts:
            held[domain] = held.get(domain, 0) + n
    return held


def fits_without_training(cluster, pool: int, chips: int) -> bool:
    """Whether a replica of ``chips`` would fit on ``pool`` with every training job there preempted (what
    ``DomainAllocator.can_place`` would say then; closed domains take nothing)."""
    allocator = cluster.allocators[pool]
    held = training_chips(cluster, pool)
    return any(free + held.get(d, 0) >= chips for d, free in enumerate(allocator.free) if d not in allocator.closed)


def book_replica(cluster, t: float, pool: int, chips: int, placements: list) -> bool:
    """Place one replica on ``pool`` where chips away for repair make the shortfall (module docstring, *Chips away
    for repair*); True if any job was preempted."""
    allocator, failures = cluster.allocators[pool], cluster.failures
    held = training_chips(cluster, pool)
    repair = failures.repair_chips(pool)
    rank = {d: (free + held.get(d, 0), free, -d) for d, free in enumerate(allocator.free)
            if d not in allocator.closed and free + held.get(d, 0) + repair.get(d, 0) >= chips}
    if not rank:
        raise RuntimeError(f"t={t:.3f}s: pool {cluster.pools[pool].name}: no room for a {chips}-chip replica even "
                           "with every training job preempted and every chip away for repair booked")
    domain = max(rank, key=rank.__getitem__)
    preempted = False
    victims = sorted((cluster.start_s[job], job) for job in failures._running_in(pool, domain))
    while allocator.free[domain] < chips and victims:
        preempt(cluster, victims.pop()[1], t)
        preempted = True
    replica = BookedReplica(((domain, chips),))
    taken = min(allocator.free[domain], chips)
    if taken:
        allocator.take(domain, taken)
    failures.book(pool, domain, chips - taken, replica)
    if cluster.budgets is not None:  # its racks and rows count it (sim.training.budgets)
        cluster.budgets.replica(pool, replica, +1)
    if not preempted:
        note_deferred(cluster, pool)
    placements.append(replica)
    return preempted


def _place(cluster, pool: int, chips: int) -> tuple:
    """One replica's chips; with rack or row budgets on the pool, placed and counted by them
    (``sim.training.budgets``: where its racks and rows have room)."""
    if cluster.budgets is not None and cluster.budgets.layout.has(pool):
        return cluster.budgets.place_replica(pool, chips)
    return cluster.allocators[pool].place(chips)


def note_deferred(cluster, pool: int) -> None:
    """Mark every job waiting for ``pool`` (among others) as deferred."""
    waiting = cluster.waiting
    for shape in waiting.waiting_shapes:
        if pool in waiting.pool_sets[shape]:
            cluster.deferred.update(waiting.fifos[shape])


def preempt(cluster, job: int, t: float) -> None:
    """Stop ``job`` at ``t``: free its chips and power, keep its progress up to its last checkpoint, and
    queue it again (module docstring)."""
    pool = cluster._complete(job)
    run_start = cluster.start_s[job]
    elapsed = t - run_start
    if cluster.failures is None:
        saved = progress = math.floor(elapsed / cluster.checkpoint_s) * cluster.checkpoint_s
    else:  # per-job intervals, save and restart times (``sim.training.failures``)
        saved, progress = cluster.failures.preempted(job, elapsed)
    if cluster.capping is not None:  # a throttled run does less work than its wall time (sim.training.capping)
        progress = cluster.capping.work_done_s(job, run_start + progress) if progress > 0 else 0.0
    if cluster.failures is not None:  # useful chip-time: the work kept, at the clock the run had
        cluster.failures.count_run(job, pool, progress, elapsed)
    full = cluster.full_run_time_s(job, pool, run_start)
    remaining = cluster.resumed.get(job, 1.0)
    if math.isfinite(full):
        remaining -= progress / full
    cluster.resumed[job] = remaining
    cluster.segments.append((job, pool, run_start, t, (elapsed - saved) * cluster.busy_chips[job]))
    cluster.first_start_s.setdefault(job, run_start)
    end = cluster.end_s[job]
    if math.isfinite(end):
        if cluster.failures is None:
            _remove_from_heap(cluster.completions, (end, job))
        else:  # with failures (thousands of preemptions a year) the entry stays, marked stale: the cluster skips
            cluster.stale_completions.add((end, job))  # it when it comes due (no O(n) search of a large heap)
        if cluster.track_release_times:
            _remove_from_heap(cluster.pool_ends[pool], end)
    cluster.end_s[job] = NOT_RUNNING
    cluster.start_s[job] = NOT_RUNNING
    cluster.waiting.requeue(job, cluster.shape[job])


def _remove_from_heap(heap: list, item) -> None:
    """Remove one ``item`` from a heap in place (the engine's loop holds a reference to the list)."""
    try:
        heap.remove(item)
    except ValueError:  # a release time already popped as past (only possible for the same instant)
        return
    heapq.heapify(heap)
