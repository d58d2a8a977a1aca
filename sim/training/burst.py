"""Cloud burst for training (``policy.burst``): rent whole scale-up domains of an on-demand pool while jobs wait.

What is modelled, per burst pool (a rented, on-demand pool, ``ResolvedPool.burst``):

* **Nothing is online until rented.** At the start every domain of the pool is withdrawn from its allocator
  (``DomainAllocator.withdraw``); ``count`` is only the most the cloud could give, ``quota_chips`` the most
  rented at once (domains being provisioned included).
* **Request.** When the oldest waiting training job that may use the pool has waited ``queue_wait_threshold``
  since its arrival (a *crossing*; the jobs are taken in arrival order, so every waiting job crosses in turn),
  the cluster asks for whole domains for every job that may use the pool and has waited that long: the
  chips of their gangs (a gang larger than a domain counts its whole domains; smaller gangs are summed and
  rounded up to whole domains: a packing estimate, fragmentation aside), less the free chips of rented
  domains and the chips being provisioned, up to the quota. A gang larger than the quota is left out (no
  rental can hold it). Requests are made only while the pool is within its own window [online_from,
  online_until) and the chips would come online before it ends.
* **Online.** ``provisioning_delay`` after the request the domain comes online: its chips join the pool's
  allocator, and waiting jobs are tried at that instant. Rented chips are charged (the pool's on-demand
  rate), draw idle power and count in utilization from then on; provisioning is free.
* **Release.** A domain that has been online for ``min_rental`` and has no job on it is released at once,
  at the first instant both hold (``min_rental`` expiring, or its last job ending). When the pool leaves
  (``online_until``) every rented domain goes with it.

Timers are added only when state changes: a crossing (the next waiting job's arrival + threshold, recomputed
at each instant from a cursor over jobs in arrival order, so no timer is ever stale), a provisioning finishing,
a ``min_rental`` expiring. The site's power floor counts every chip of a burst pool idle from t = 0, as it
does for pools not yet online (admission control stays conservative). An inference SLO never triggers a
rental here: serving bursts through its own replica group (``sim.serving.burst``).

The run's rentals are ``events``: (time [s], pool index, ``request`` | ``online`` | ``release``, chips,
domain); ``realised_steps`` turns them into the online chips over time that ``ResolvedPool.chip_steps``
then reports after the run.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

ONLINE, EXPIRE = 0, 1


@dataclass
class BurstPool:
    """State of one burst pool: domains held back, being provisioned, rented; the crossing cursor."""

    pool: int
    quota: int
    threshold_s: float
    delay_s: float
    min_rental_s: float
    from_s: float
    until_s: float
    sizes: list[int]
    held: list[int] = field(default_factory=list)  # domains not rented, in index order
    provisioning: dict[int, float] = field(default_factory=dict)  # domain -> online time [s]
    rented: dict[int, float] = field(default_factory=dict)  # domain -> online since [s]
    expired: set[int] = field(default_factory=set)  # rented domains past min_rental, still busy
    cursor: int = 0  # jobs before it have crossed, started or may not use the pool
    crossing_s: float = math.inf  # when the next waiting job crosses the threshold
    waiting_on: int = -1  # that job (-1: none)

    def rentable(self, gang: int) -> bool:
        """Whether a gang of ``gang`` chips fits in the quota (a gang larger than a domain takes whole domains)."""
        domain = self.sizes[0]
        return (math.ceil(gang / domain) * domain if gang > domain else gang) <= self.quota

    def committed_chips(self) -> int:
        return sum(self.sizes[d] for d in self.rented) + sum(self.sizes[d] for d in self.provisioning)


class Burst:
    """The burst pools of one run; the cluster calls ``fire`` for due timers, ``after`` at the end of each
    instant, and ``pool_left`` when a pool leaves."""

    def __init__(self, cluster, policies):
        self.cluster = cluster
        self.pools: list[BurstPool] = []
        self.by_pool: dict[int, BurstPool] = {}
        self.timers: list[tuple[float, int, int, int, int]] = []  # (time, sequence, kind, pool, domain)
        self.sequence = 0
        self.events: list[tuple[float, int, str, int, int]] = []
        self.expiries = False  # a min_rental expired at this instant
        for pool_index, policy in policies:
            p = cluster.pools[pool_index]
            allocator = cluster.allocators[pool_index]
            state = BurstPool(pool=pool_index, quota=policy.quota_chips, threshold_s=float(policy.queue_wait_threshold),
                              delay_s=float(policy.provisioning_delay), min_rental_s=float(policy.min_rental),
                              from_s=p.online_from_s, until_s=p.online_until_s, sizes=list(allocator.size))
            for domain in range(len(allocator.size)):
                allocator.withdraw(domain)
                state.held.append(domain)
            self.pools.append(state)
            self.by_pool[pool_index] = state
        self.next_s = math.inf

    # -- timers ------------------------------------------------------------------------------------
    def _push(self, at: float, kind: int, pool: int, domain: int) -> None:
        self.sequence += 1
        heapq.heappush(self.timers, (at, self.sequence, kind, pool, domain))

    def fire(self, t: float, freed):
        """Apply the timers due at ``t``: domains coming online (their pool counts as freed) and
        ``min_rental`` expiring; returns the freed pools."""
        timers = self.timers
        while timers and timers[0][0] <= t:
            _, _, kind, pool, domain = heapq.heappop(timers)
            state = self.by_pool[pool]
            if kind == ONLINE:
                if state.provisioning.pop(domain, None) is None or t >= state.until_s:
                    continue  # the pool left meanwhile
                self.cluster.allocators[pool].release(((domain, state.sizes[domain]),))
                state.rented[domain] = t
                self.events.append((t, pool, "online", state.sizes[domain], domain))
                self._push(t + state.min_rental_s, EXPIRE, pool, domain)
                freed = set(freed)
                freed.add(pool)
            elif domain in state.rented:
                state.expired.add(domain)
                self.expiries = True
        return freed

    def next_online_s(self, pool: int) -> float:
        """When the next domain of ``pool`` being provisioned comes online (inf if none): a release time
        for schedulers that wait for a faster pool."""
        state = self.by_pool.get(pool)
        return min(state.provisioning.values(), default=math.inf) if state is not None else math.inf

    # -- decisions at the end of an instant ----------------------------------------------------------
    def after(self, t: float, arrived: int, freed) -> None:
        """At the end of instant ``t`` (jobs before index ``arrived`` have arrived; ``freed``: the pools that
        gained chips): release idle domains past ``min_rental``, request domains when a waiting job's wait
        crossed the threshold, and set the next crossing timer."""
        cluster = self.cluster
        start_s, reason = cluster.start_s, cluster.reject_reason
        expiries, self.expiries = self.expiries, False
        for state in self.pools:
            if state.expired and (expiries or state.pool in freed):  # a domain can only have become idle then
                self._release_idle(state, t)
            j = state.waiting_on
            if j >= 0 and t < state.crossing_s and start_s[j] != start_s[j] and not reason[j]:
                continue  # the oldest job not yet past the threshold still waits: its timer stands
            if not cluster.online[state.pool]:
                state.crossing_s, state.waiting_on = math.inf, -1  # not yet in its window, or left
                continue
            if self._scan(state, t, arrived):
                self._request(state, t)
        next_s = self.timers[0][0] if self.timers else math.inf
        for state in self.pools:
            if state.crossing_s < next_s:
                next_s = state.crossing_s
        self.next_s = next_s

    def _release_idle(self, state: BurstPool, t: float) -> None:
        allocator = self.cluster.allocators[state.pool]
        for domain in sorted(state.expired):
            if allocator.free[domain] == state.sizes[domain]:
                allocator.withdraw(domain)
                self._give_back(state, domain, t)

    def _give_back(self, state: BurstPool, domain: int, t: float) -> None:
        del state.rented[domain]
        state.expired.discard(domain)
        state.held.append(domain)
        state.held.sort()
        self.events.append((t, state.pool, "release", state.sizes[domain], domain))

    def _scan(self, state: BurstPool, t: float, arrived: int) -> bool:
        """Move the cursor over jobs in arrival order; return whether a waiting job that may use the pool
        has crossed the threshold since the last scan, and set the next crossing time."""
        c = self.cluster
        start_s, reason, shape, arrival, chips = c.start_s, c.reject_reason, c.shape, c.arrival, c.chips
        eligible, pool, threshold, rentable = c.eligible_mask, state.pool, state.threshold_s, state.rentable
        crossed, job = False, state.cursor
        state.crossing_s, state.waiting_on = math.inf, -1
        while job < arrived:
            waits = start_s[job] != start_s[job] and shape[job] >= 0 and not reason[job]  # NaN: not running
            if waits and eligible[job, pool] and rentable(chips[job]):
                if arrival[job] + threshold > t:
                    state.crossing_s, state.waiting_on = arrival[job] + threshold, job
                    break
                crossed = True
            job += 1
        state.cursor = job
        return crossed

    def _request(self, state: BurstPool, t: float) -> None:
        """Request whole domains for the jobs waiting past the threshold (module docstring)."""
        if t + state.delay_s >= state.until_s or not state.held:
            return
        c = self.cluster
        allocator, waiting, pool = c.allocators[state.pool], c.waiting, state.pool
        room = state.quota - state.committed_chips()
        have = allocator.free_chips + sum(state.sizes[d] for d in state.provisioning)
        domain_chips = state.sizes[0]  # the first domain is full-size; only the last may be partial
        limit = have + room
        small = big = 0
        fifos, arrival, chips = waiting.fifos, c.arrival, c.chips
        shapes = sorted((s for s in waiting.waiting_shapes if pool in waiting.pool_sets[s]), key=lambda s: fifos[s][0])
        for shape in shapes:
            fifo = fifos[shape]
            gang = chips[fifo[0]]
            if not state.rentable(gang):
                continue
            for job in fifo:
                if arrival[job] + state.threshold_s > t:
                    break
                if gang > domain_chips:
                    big += math.ceil(gang / domain_chips) * domain_chips
                else:
                    small += gang
                if big + math.ceil(small / domain_chips) * domain_chips >= limit:
                    break
            if big + math.ceil(small / domain_chips) * domain_chips >= limit:
                break
        deficit = big + math.ceil(small / domain_chips) * domain_chips - have
        held = state.held
        k = 0
        while deficit > 0 and k < len(held):
            domain = held[k]
            size = state.sizes[domain]
            if size > room:
                k += 1
                continue
            held.pop(k)
            state.provisioning[domain] = t + state.delay_s
            self.events.append((t, pool, "request", size, domain))
            self._push(t + state.delay_s, ONLINE, pool, domain)
            deficit -= size
            room -= size

    def pool_left(self, pool: int, t: float) -> None:
        """The burst pool leaves at ``t`` (its jobs were preempted): every rented domain goes, requests lapse."""
        state = self.by_pool.get(pool)
        if state is None:
            return
        if self.cluster.failures is not None:  # servers in repair come back first: only a free domain leaves
            self.cluster.failures.pool_left(pool, t)
        allocator = self.cluster.allocators[pool]
        for domain in sorted(state.rented):
            allocator.withdraw(domain)
            self._give_back(state, domain, t)
        state.held.extend(state.provisioning)
        state.held.sort()
        state.provisioning.clear()


def realised_steps(events, pool: int, start_s: float, end_s: float) -> tuple[list[float], list[int]]:
    """A burst pool's online chips over [start_s, end_s] as ``ResolvedPool.chip_steps`` returns them, from the
    run's ``online`` and ``release`` events."""
    times, counts = [start_s], [0]
    for t, p, kind, chips, _ in events:
        if p != pool or kind == "request":
            continue
        delta = chips if kind == "online" else -chips
        if t == times[-1]:
            counts[-1] += delta
        else:
            times.append(t)
            counts.append(counts[-1] + delta)
    times.append(max(end_s, times[-1]))
    counts.append(0)
    return times, counts
