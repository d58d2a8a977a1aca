"""Committed IT power of every rack and row budget while training runs (``sim.fleet.budgets`` has the layout).

Kept incrementally, one change per event that moves power: a job starting (its share of each budget it touches
at full clock), ending or preempted (its share at its clock leaves), a clock change (``set_clock``), an inference
replica placed or released by the reservation schedule (``replica``, at full load: budgets always count replicas
at full load, while under ``throttle``/``shed`` the site cap counts inference at the power it draws per bin).
``floor`` is a budget's idle chips and the inference replicas in it at full load; ``full`` its training jobs at
full load; ``drawn`` the committed power now (floor + training at the clocks the capping policy set).

A start is admitted when every budget its placement touches holds the job with the running jobs there at the
lowest clock the policy may set (``low``: the minimum clock's power under ``throttle``, full load otherwise), as
the site cap admits (``sim.training.capping``); the placement is budget-aware (``find_placement``): a domain whose
rack or row has no room is passed over for one that has. Fractional jobs (GPU sharing) take the chip the shared
allocator gives them, and do not start when its rack or row has no room.

Simplification: inference replicas placed later (autoscaling on a shared pool, windowed groups) land where the
allocator puts them: a replica that takes a rack over its budget with no training job there to slow or shed
leaves it over until it scales down (``peak_utilisation`` shows it); those placed at t = 0 are checked by
validation. Retired domains and pools that leave keep their idle power in their racks (conservative).
"""

from __future__ import annotations

from array import array

from sim.fleet.budgets import find_placement, find_whole_placement, reserved_w, whole_index, within
from sim.policies.capping import power_frac

TOLERANCE = 1e-9  # relative, as ``sim.fleet.build.CAP_TOLERANCE``


class BudgetLoads:
    def __init__(self, cluster, layout, low: float = 1.0):
        self.cluster = cluster
        self.layout = layout
        self.low = low
        self.limit = layout.limit_w
        self.floor = [idle + inference for idle, inference
                      in zip(layout.idle_w, reserved_w(layout, cluster.allocators, cluster.held))]
        self.full = [0.0] * len(self.limit)
        self.drawn = list(self.floor)
        self.members: list[dict[int, float]] = [{} for _ in self.limit]  # budget -> {job: full-load power [W]}
        # budgets with training in them over their limit now (``_check``), and at full clock (``_refresh``): kept
        # from the first call that asks (``shed``: ``over``, ``any_over``; ``throttle``: ``clocks``), None before
        self.over_now: set[int] | None = None
        self.tight: set[int] | None = None
        # ``clocks`` without a site cap: per job, the lowest clock of its budgets and the budget's name, and the
        # budgets' answers they were merged from (``_merge``)
        self._lowest: dict[int, float] = {}
        self._lowest_by: dict[int, str] = {}
        self._used: dict[int, dict] = {}
        # headroom of each budget for a start (``_headroom``), kept as floor and full change; pools whose domains
        # are whole in their racks and rows search with it (``find_whole_placement``), the others call ``_headroom``
        self.head = [self._headroom(b) for b in range(len(self.limit))]
        self.whole = [whole_index(layout, pool) if layout.has(pool) else None for pool in range(len(layout.shares))]
        # on those pools, per rack (inner budget): the headroom of its rack and row together (the smaller), kept
        # with ``head``; ``affects[b]``: the racks whose ``eff`` moves with budget ``b``
        self.eff = list(self.head)
        self.best = [0.0] * len(layout.shares)  # ``_best`` per pool, computed at state ``best_at``
        self.best_at = [-1] * len(layout.shares)
        self.outer_of = [-1] * len(self.limit)
        self.affects: list[tuple[int, ...]] = [()] * len(self.limit)
        for index in self.whole:
            if index is None:
                continue
            for r, o in enumerate(index.outer):
                self.outer_of[index.first + r] = o
                self.affects[index.first + r] = (index.first + r,)
            for k, racks in enumerate(index.racks):
                self.affects[index.rows[0] + k] = tuple(index.first + r for r in racks)
            for r in range(index.first, index.first + len(index.outer)):
                self._refresh(r)
        self.jobs: dict[int, list] = {}  # job -> [((budget, full-load power [W]), ...), power fraction now, pool]
        self.dirty: set[int] = set(range(len(self.limit)))
        self.peak = [0.0] * len(self.limit)  # highest drawn / limit after any event
        # searches that found no place: (pool, chips, W per chip) -> the pool's state then (``_stamp``); the same
        # search in the same state is not made again (shapes of one gang size, events on other pools)
        self.version = [0] * len(layout.shares)  # per pool: bumped at every power change in its budgets
        self.refused: dict[tuple, tuple] = {}
        self.failed: dict[int, tuple] = {}  # pool -> (its state, [(chips, W per chip) of searches that failed in it])
        # what ``clocks`` reads of a budget (its floor, members and their full-load power) changes: per budget and
        # in all, bumped at each start, end and replica; ``clocks`` keeps each budget's answer until its count moves
        self.changed = [0] * len(self.limit)
        self.generation = 0
        self._clocks: dict[int, tuple] = {}  # budget -> (its count then, its members in order, their clocks or None)
        # utilisation trace for the time series (``record``): (time [s], budget, drawn / limit) per change
        self.trace_s, self.trace_budget, self.trace_util = array("d"), array("l"), array("d")
        self.last_util = [float("nan")] * len(self.limit)
        self.record(0.0)

    # -- admission and placement ---------------------------------------------------------------------------
    def _headroom(self, budget: int) -> float:
        return self.limit[budget] * (1.0 + TOLERANCE) - self.floor[budget] - self.low * self.full[budget]

    def _refresh(self, budget: int) -> None:
        """``budget``'s floor or full load moved: its ``head``, and the ``eff`` of the racks it bounds."""
        head = self.head
        head[budget] = self._headroom(budget)
        if self.tight is not None:
            if self.members[budget] and not within(self.floor[budget] + self.full[budget], self.limit[budget]):
                self.tight.add(budget)
            else:
                self.tight.discard(budget)
        if self.over_now is not None:
            self._check(budget)
        for r in self.affects[budget]:
            o = self.outer_of[r]
            self.eff[r] = head[r] if o < 0 else min(head[r], head[o])

    def _check(self, budget: int) -> None:
        """``budget``'s committed power or members moved: whether it is in ``over_now``."""
        if self.members[budget] and not within(self.drawn[budget], self.limit[budget]):
            self.over_now.add(budget)
        else:
            self.over_now.discard(budget)

    def _best(self, pool: int) -> float:
        """The most headroom of one rack and row together on a pool with a ``WholeIndex`` [W] (kept per state)."""
        if self.best_at[pool] != self.version[pool]:
            index = self.whole[pool]
            self.best[pool] = max(self.eff[index.first:index.first + len(index.outer)])
            self.best_at[pool] = self.version[pool]
        return self.best[pool]

    def narrow(self, room: list[int]) -> None:
        """Lower ``room`` (per pool, the largest gang the allocator places now, ``Cluster.room``) to the largest
        whole-chip gang whose budgets may take it, on pools whose domains are whole in their racks and rows and
        hold no TPU slices: every gang puts at least one domain's worth (at most its size) of chips at the lowest
        clock's power in one rack and row (``find_whole_placement``), so a larger one cannot start. A necessary
        test only (the wait queue skips shapes whose gang exceeds it); chip shares (gang -1) are not narrowed."""
        for pool, index in enumerate(self.whole):
            if index is None or room[pool] < 1 or self.cluster.slice_chips[pool] is not None:
                continue
            per_chip_w = self.low * self.layout.busy_increment_w[pool]  # as ``_search``: busy / placed = 1
            best = self._best(pool)
            domain = self.cluster.allocators[pool].domain_chips
            if per_chip_w <= 0.0 or domain * per_chip_w <= best:
                continue  # a whole domain fits somewhere: no narrower bound
            g = min(room[pool], domain - 1, int(best / per_chip_w) + 1) if best >= 0.0 else 0
            while g > 0 and g * per_chip_w > best:  # the product the search compares
                g -= 1
            room[pool] = g

    def _per_chip_w(self, job: int, pool: int, placed: int) -> float:
        return self.cluster.busy_chips[job] / placed * self.layout.busy_increment_w[pool]

    def can_start(self, job: int, pool: int, chips: int) -> bool:
        """Whether ``job`` (``chips`` placed) has a placement on ``pool`` whose budgets take it now."""
        c = self.cluster
        if c.share_units[job]:
            placement = self.place(job, pool, chips)
            if placement is None:
                return False
            self._remove(job)
            c.shared[pool].release(placement, c.share_units[job])
            return True
        return self._search(pool, chips, self.low * self._per_chip_w(job, pool, chips)) is not None

    def _stamp(self, pool: int) -> tuple:
        """The pool's state for the search cache: its budgets' power (``version``), its free chips, the free counts
        levels that have a domain (``mask``) and the moves of chips other than by gangs (``DomainAllocator.moves``:
        servers taken for repair, domains withdrawn, closed or reopened). A change of the free chips per domain that
        keeps the count and the mask (a repair back in one domain as a server leaves another) shows in ``moves``
        or, for gangs and replicas placed or released, in ``version``."""
        allocator = self.cluster.allocators[pool]
        return self.version[pool], allocator.free_chips, allocator.mask, allocator.moves

    def _search(self, pool: int, chips: int, per_chip_w: float):
        """``find_placement`` on ``pool``, unless the same search found nothing in the same state."""
        allocator = self.cluster.allocators[pool]
        if self.whole[pool] is not None and \
                (chips if chips < allocator.domain_chips else allocator.domain_chips) * per_chip_w > self._best(pool):
            return None  # its first domain's chips fit in no rack and row (``find_whole_placement``)
        key = (pool, chips, per_chip_w)
        stamp = (self.version[pool], allocator.free_chips, allocator.mask, allocator.moves)  # ``_stamp``, inlined
        if self.refused.get(key) == stamp:
            return None
        # a search that found nothing also rules out every larger one in the same state (more chips, more W per
        # chip): one domain: fewer domains hold it, and each budget must hold more; whole domains on a layout whose
        # domains are whole in their racks and rows: fewer of them fit (``_whole_rank``)
        monotone = chips <= allocator.domain_chips or (
            self.layout.groups[pool] is not None and chips % allocator.domain_chips == 0)
        failed = self.failed.get(pool)
        if monotone and failed is not None and failed[0] == stamp and \
                any(c <= chips and w <= per_chip_w for c, w in failed[1]):
            return None
        index = self.whole[pool]
        if index is not None:
            plan = find_whole_placement(allocator, self.layout.shares[pool], chips, per_chip_w, self.head,
                                        self.eff, self.layout.groups[pool], index)
        else:
            plan = find_placement(allocator, self.layout.shares[pool], chips, per_chip_w, self._headroom,
                                  self.layout.groups[pool])
        if plan is None:
            self.refused[key] = stamp
            if monotone:
                if failed is None or failed[0] != stamp:
                    failed = self.failed[pool] = (stamp, [])
                failed[1].append((chips, per_chip_w))
        return plan

    def place(self, job: int, pool: int, chips: int):
        """Place ``job`` on ``pool`` within its budgets and count its power; the placement, or None."""
        c = self.cluster
        units = c.share_units[job]
        if units:
            chip = c.shared[pool].place(units)
            if chip is None:
                return None
            shares = self.layout.job_shares(pool, c.shared[pool].domain_of[chip], self._per_chip_w(job, pool, 1))
            if not all(self.low * w <= self._headroom(b) for b, w in shares.items()):
                c.shared[pool].release(chip, units)
                return None
            self._add(job, pool, shares)
            return chip
        allocator = c.allocators[pool]
        plan = self._search(pool, chips, self.low * self._per_chip_w(job, pool, chips))
        if plan is None:
            return None
        placement = tuple(part for domain, n in plan for part in allocator.take(domain, n))
        self._add(job, pool, self.layout.job_shares(pool, placement, self._per_chip_w(job, pool, chips)))
        return placement

    # -- power changes -------------------------------------------------------------------------------------
    def _add(self, job: int, pool: int, shares: dict[int, float]) -> None:
        for b, w in shares.items():
            self.full[b] += w
            self.drawn[b] += w
            self.members[b][job] = w
            self.changed[b] += 1
            self._refresh(b)
        self.generation += 1
        self.dirty.update(shares)
        self.jobs[job] = [tuple(shares.items()), 1.0, pool]
        self.version[pool] += 1

    def _remove(self, job: int) -> None:
        entry = self.jobs.pop(job, None)
        if entry is None:
            return
        shares, frac, pool = entry
        self.version[pool] += 1
        for b, w in shares:
            self.full[b] -= w
            self.drawn[b] -= w * frac
            del self.members[b][job]
            self.changed[b] += 1
            self._refresh(b)
            self.dirty.add(b)
        self.generation += 1

    def ended(self, job: int) -> None:
        """``job`` completed or was preempted: its power leaves its budgets."""
        self._remove(job)

    def set_clock(self, job: int, f: float) -> None:
        """``job`` runs at clock fraction ``f`` from now."""
        entry = self.jobs.get(job)
        if entry is None:
            return
        new = power_frac(f)
        self.version[entry[2]] += 1
        for b, w in entry[0]:
            self.drawn[b] += w * (new - entry[1])
            self.dirty.add(b)
            if self.over_now is not None:
                self._check(b)
        entry[1] = new

    def place_replica(self, pool: int, chips: int):
        """Place an inference replica of ``chips`` on ``pool`` (the reservation schedule), budget-aware: where its
        budgets hold it with the training there as it runs now, else where they hold it once the training there is
        slowed or shed, else where the allocator puts it (over its budget until it leaves); the placement."""
        allocator = self.cluster.allocators[pool]
        per_chip = self.layout.busy_increment_w[pool]
        shares = self.layout.shares[pool]
        groups = self.layout.groups[pool]
        plan = (find_placement(allocator, shares, chips, per_chip, self._room_now, groups)
                or find_placement(allocator, shares, chips, per_chip, self._room_without_training, groups))
        parts = tuple(p for d, n in plan for p in allocator.take(d, n)) if plan else allocator.place(chips)
        self.replica(pool, parts, +1)
        return parts

    def _room_now(self, budget: int) -> float:
        return self.limit[budget] * (1.0 + TOLERANCE) - self.drawn[budget]

    def _room_without_training(self, budget: int) -> float:
        return self.limit[budget] * (1.0 + TOLERANCE) - self.floor[budget]

    def replica(self, pool: int, parts, sign: int) -> None:
        """An inference replica holding ``parts`` of ``pool`` is placed (+1) or released (−1)."""
        if not self.layout.has(pool):
            return
        self.version[pool] += 1
        for b, w in self.layout.job_shares(pool, parts, self.layout.busy_increment_w[pool]).items():
            self.floor[b] += sign * w
            self.drawn[b] += sign * w
            self.changed[b] += 1
            self._refresh(b)
            self.dirty.add(b)
        self.generation += 1

    # -- the policies' view ----------------------------------------------------------------------------------
    def clocks(self, key, clocks: dict, binding: dict, min_clock: float) -> tuple[int, str] | None:
        """Lower ``clocks`` (job -> clock, 1 when absent) to what every budget allows its members (``clocks_within``
        in the order of ``key``, kept first) and name the budget in ``binding``; return a job to shed (the last of a
        budget that even the minimum clock does not hold) and that budget's name, or None."""
        from sim.policies.capping import clocks_within

        alone = self.cluster.power_cap_w is None  # ``clocks`` then holds only 1s (``PowerCap._throttle``)
        if self.tight is None:
            self.tight = {b for b, members in enumerate(self.members)
                          if members and not within(self.floor[b] + self.full[b], self.limit[b])}
        tight = sorted(self.tight)  # the others: nothing to slow, or every member fits at full clock
        for b in tight:
            cached = self._clocks.get(b)
            if cached is not None and cached[0] == self.changed[b] and cached[3] == min_clock:
                _, jobs, slowed, _ = cached
            else:
                members = self.members[b]
                jobs = sorted(members, key=key)
                fs = clocks_within(self.limit[b] * (1.0 + 1e-12) - self.floor[b], [members[j] for j in jobs],
                                   min_clock)
                # the members it slows, in keep order (a clock of 1 lowers none)
                slowed = None if fs is None else {job: f for job, f in zip(jobs, fs) if f < 1.0}
                self._clocks[b] = (self.changed[b], jobs, slowed, min_clock)
            if slowed is None:
                return jobs[-1], self.layout.names[b]
            if not alone:
                for job, f in slowed.items():
                    if f < clocks.get(job, 1.0):
                        clocks[job] = f
                        binding[job] = self.layout.names[b]
        if alone:
            self._merge(tight)
            clocks.update(self._lowest)
            binding.update(self._lowest_by)
        return None

    def _merge(self, tight: list[int]) -> None:
        """Bring ``_lowest`` (job -> the lowest clock its budgets in ``tight`` give it) and ``_lowest_by`` (the
        first budget, in budget order, that gives it) up to the budgets' answers in ``_clocks``, redoing only the
        jobs of budgets whose answer changed since the last merge (the same as lowering 1s budget by budget)."""
        used = self._used
        now = {b: self._clocks[b][2] for b in tight}
        affected: set[int] = set()
        for b in set(used) | set(now):
            new, old = now.get(b), used.get(b)
            if new is old:
                continue
            affected.update(old or ())
            affected.update(new or ())
            if new is None:
                del used[b]
            else:
                used[b] = new
        lowest, lowest_by, names = self._lowest, self._lowest_by, self.layout.names
        for job in affected:
            f, by = 1.0, -1
            entry = self.jobs.get(job)
            if entry is not None:
                for b in sorted(b for b, _ in entry[0]):
                    slowed = used.get(b)
                    if slowed is not None and job in slowed and slowed[job] < f:
                        f, by = slowed[job], b
            if by < 0:
                lowest.pop(job, None)
                lowest_by.pop(job, None)
            else:
                lowest[job] = f
                lowest_by[job] = names[by]

    def over(self, key) -> tuple[int, str] | None:
        """A job to shed and the budget it is shed for: the last in the order of ``key`` (kept first) of a budget
        over its limit (one with training in it); None when every budget holds."""
        if not self._over():
            return None
        b = min(self.over_now)  # the first in budget order
        return max(self.members[b], key=key), self.layout.names[b]

    def any_over(self) -> bool:
        """Whether a budget with training in it is over its limit."""
        return bool(self._over())

    def _over(self) -> set[int]:
        """``over_now``, from a scan of every budget at the first call."""
        if self.over_now is None:
            self.over_now = set()
            for b in range(len(self.limit)):
                self._check(b)
        return self.over_now

    def record(self, t: float) -> None:
        """At the end of the event at ``t`` (before ``observe``): append (t, budget, drawn / limit) for each budget
        whose utilisation changed since its last entry. The trace grows by one entry (20 bytes, compact arrays) per
        budget per event that moves it, nothing for events elsewhere; ``sim.results.capping.budget_series`` takes the
        exact per-bin maximum from it."""
        last = self.last_util
        for b in self.dirty:
            u = self.drawn[b] / self.limit[b]
            if u != last[b]:
                last[b] = u
                self.trace_s.append(t)
                self.trace_budget.append(b)
                self.trace_util.append(u)

    def observe(self) -> None:
        """After an event: the peak utilisation of the budgets that changed."""
        for b in self.dirty:
            u = self.drawn[b] / self.limit[b]
            if u > self.peak[b]:
                self.peak[b] = u
        self.dirty.clear()

    def outcome(self) -> dict:
        """Per kind (rack, row): budgets, oversubscription (largest full-load / budget) and peak utilisation
        (largest committed / budget after any event)."""
        layout = self.layout
        over = layout.oversubscription()
        out = {}
        for kind in ("rack", "row"):
            idx = [b for b, k in enumerate(layout.kinds) if k == kind]
            if idx:
                out[kind] = {"budgets": len(idx), "oversubscription": over[kind],
                             "peak_utilisation": max(self.peak[b] for b in idx)}
        return out
