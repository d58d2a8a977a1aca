"""Rack and row power budgets (``fleet[].rack_budget_kw``, ``racks_per_row``, ``row_budget_kw``): where they are,
what they hold idle, and a placement that keeps every budget a gang touches within it.

Layout: a pool's chips are numbered in order, servers of ``chips_per_server`` chips, racks of ``servers_per_rack``
servers (rack ``r`` holds chips ``r·R`` to ``(r+1)·R − 1``, ``R`` chips per rack; the last rack may be partial), rows
of ``racks_per_row`` racks in rack order. Scale-up domains are laid out the same way (domain ``d`` holds chips from
``d·D``): a domain inside one rack (an HGX server, an NVL72 rack) is in that rack; one that spans racks (a TPU slice)
is split over them by the chips each holds. The allocator counts free chips per domain, not which chip is free, so a
job's chips in a domain are split over the domain's racks in that same proportion (fractional chips: the budgets see
a share of the job's power, never a chip that is not there).

Budgets are IT power at the rack or row feed [W]: each chip's idle power with its server share
(``idle_w_with_server``) and its busy increment (``busy_w_with_server − idle_w_with_server``) at the clock the
capping policy sets (``sim.policies.capping.power_frac``). PUE is not in them (the site cap is facility power).
A budget below its racks' full load is oversubscription: ``oversubscription`` = full-load IT power of the chips in
the budget / budget (for a row, Σ rack peaks / row budget).

Every budget gets one index: a pool's racks, then its rows, pool after pool; ``shares[pool][domain]`` lists
``(budget, fraction of the domain's chips)`` for the rack(s) and row(s) the domain is in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.fleet.build import CAP_TOLERANCE


@dataclass
class BudgetLayout:
    names: list[str]  # "rack:POOL:k" or "row:POOL:k"
    kinds: list[str]  # "rack" or "row"
    limit_w: list[float]  # the budget [W, IT]
    idle_w: list[float]  # its chips idling, server share included [W]
    peak_w: list[float]  # its chips at full load [W]
    shares: list[list[tuple]]  # per pool, per domain: ((budget, fraction of the domain's chips), ...); [] no budget
    busy_increment_w: list[float]  # per pool: one chip from idle to full load [W, IT]
    # per pool, when every domain is whole in one rack and one row: (budget -> index of its kind, budgets per
    # kind), so a search can stop once every rack (or every row) has refused; None otherwise
    groups: list = None

    def __post_init__(self):
        if self.groups is None:
            self.groups = []

    def has(self, pool: int) -> bool:
        return bool(self.shares[pool])

    def job_shares(self, pool: int, parts, busy_w_per_chip: float) -> dict[int, float]:
        """Budget -> power [W] of a job holding ``parts`` ((domain, chips), ...) of ``pool`` at ``busy_w_per_chip``
        per placed chip."""
        out: dict[int, float] = {}
        shares = self.shares[pool]
        for domain, chips in parts:
            for budget, frac in shares[domain]:
                out[budget] = out.get(budget, 0.0) + chips * frac * busy_w_per_chip
        return out

    def oversubscription(self) -> dict[str, float]:
        """Per kind, the largest full-load power / budget of its budgets."""
        out: dict[str, float] = {}
        for kind, peak, limit in zip(self.kinds, self.peak_w, self.limit_w):
            out[kind] = max(out.get(kind, 0.0), peak / limit)
        return out


def budget_layout(pools) -> BudgetLayout | None:
    """The rack and row budgets of ``pools`` (``ResolvedPool``), None when no pool has one."""
    if not any(p.rack_budget_w is not None or p.row_budget_w is not None for p in pools):
        return None
    layout = BudgetLayout([], [], [], [], [], [], [])
    for p in pools:
        layout.busy_increment_w.append(p.busy_w_with_server - p.idle_w_with_server)
        if p.rack_budget_w is None and p.row_budget_w is None:
            layout.shares.append([])
            continue
        rack_chips = p.chips_per_server * p.servers_per_rack
        racks = math.ceil(p.count / rack_chips) if p.count else 0
        rack_ids = rows_ids = None
        if p.rack_budget_w is not None:
            rack_ids = _add(layout, p, "rack", racks, p.rack_budget_w,
                            [min(rack_chips, p.count - r * rack_chips) for r in range(racks)])
        if p.row_budget_w is not None:
            rows = math.ceil(racks / p.racks_per_row)
            per_row = rack_chips * p.racks_per_row
            rows_ids = _add(layout, p, "row", rows, p.row_budget_w,
                            [min(per_row, p.count - k * per_row) for k in range(rows)])
        pool_shares, first = [], 0
        for size in p.domain_sizes:
            by_rack: dict[int, float] = {}
            for r in range(first // rack_chips, (first + size - 1) // rack_chips + 1):
                overlap = min(first + size, (r + 1) * rack_chips) - max(first, r * rack_chips)
                by_rack[r] = overlap / size
            entries = []
            if rack_ids is not None:
                entries += [(rack_ids + r, f) for r, f in by_rack.items()]
            if rows_ids is not None:
                by_row: dict[int, float] = {}
                for r, f in by_rack.items():
                    by_row[r // p.racks_per_row] = by_row.get(r // p.racks_per_row, 0.0) + f
                entries += [(rows_ids + k, f) for k, f in by_row.items()]
            pool_shares.append(tuple(entries))
            first += size
        layout.shares.append(pool_shares)
    for pool, pool_shares in enumerate(layout.shares):
        whole = bool(pool_shares) and all(f == 1.0 for entries in pool_shares for _, f in entries)
        budgets = sorted({b for entries in pool_shares for b, _ in entries})
        kinds = sorted({layout.kinds[b] for b in budgets})
        layout.groups.append(({b: kinds.index(layout.kinds[b]) for b in budgets},
                              [sum(layout.kinds[b] == k for b in budgets) for k in kinds]) if whole else None)
    return layout


def _add(layout: BudgetLayout, pool, kind: str, count: int, limit_w: float, chips: list[int]) -> int:
    first = len(layout.names)
    for k in range(count):
        layout.names.append(f"{kind}:{pool.name}:{k}")
        layout.kinds.append(kind)
        layout.limit_w.append(limit_w)
        layout.idle_w.append(chips[k] * pool.idle_w_with_server)
        layout.peak_w.append(chips[k] * pool.busy_w_with_server)
    return first


def reserved_w(layout: BudgetLayout, allocators, held=None) -> list[float]:
    """Per budget, the full-load increment of the chips held in ``allocators`` before any job (inference replicas
    placed by ``sim.fleet.allocation.reserve``), leaving out ``held`` deliveries (per pool, their placements) [W]."""
    out = [0.0] * len(layout.names)
    for pool, allocator in enumerate(allocators):
        if not layout.has(pool):
            continue
        used = [size - free for size, free in zip(allocator.size, allocator.free)]
        for parts in (held[pool] if held is not None else ()):
            for domain, chips in parts:
                used[domain] -= chips
        for budget, w in layout.job_shares(pool, [(d, n) for d, n in enumerate(used) if n > 0],
                                           layout.busy_increment_w[pool]).items():
            out[budget] += w
    return out


def find_placement(allocator, shares, chips: int, per_chip_w: float, headroom, groups=None) -> tuple | None:
    """Where ``chips`` may go now so that every budget they touch keeps ``per_chip_w`` per placed chip within
    ``headroom(budget)`` [W]; None when nowhere. As ``DomainAllocator.place``: a gang of at most a domain in one
    domain, best fit first (the fewest free chips that hold it), among the domains whose budgets take it; a
    larger gang on wholly free domains, each taken when its budgets still take it with the domains already
    chosen (greedy). Reads the allocator only: ``take`` the parts to place them. ``groups`` (``BudgetLayout``)
    lets the search stop as soon as every budget of one kind has refused."""
    room: dict[int, float] = {}  # headroom of the budgets asked so far (it does not change during a search)
    if chips <= allocator.domain_chips:
        need = chips * per_chip_w
        refused: dict[int, float] = {}  # budget -> the smallest power it refused
        dead = [0] * len(groups[1]) if groups is not None else None
        mask, level = allocator.mask >> chips, chips
        while mask:
            if mask & 1:
                for domain in allocator.buckets[level]:
                    for b, f in shares[domain]:
                        w = need * f
                        if b in refused and w >= refused[b]:
                            break
                        h = room.get(b)
                        if h is None:
                            h = room[b] = headroom(b)
                        if w > h:
                            if dead is not None and b not in refused:
                                kind = groups[0][b]
                                dead[kind] += 1
                                if dead[kind] == groups[1][kind]:
                                    return None  # every rack (or every row) of the pool refused
                            refused[b] = w
                            break
                    else:
                        return ((domain, chips),)
            mask >>= 1
            level += 1
        return None
    full = allocator.domain_chips
    if full == 0 or len(allocator.buckets[full]) * full < chips:
        return None
    if groups is not None and chips % full == 0 and \
            _whole_rank(shares, allocator.buckets[full], full * per_chip_w, headroom, room, groups,
                        chips // full) < chips // full:
        return None  # the greedy below could not find enough domains, whatever order it tries them in
    return _greedy(allocator, shares, chips, per_chip_w, headroom, groups, room)


def _greedy(allocator, shares, chips: int, per_chip_w: float, headroom, groups, room: dict) -> tuple | None:
    """The search of ``find_placement`` for a gang larger than a domain: wholly free domains in the allocator's
    order, each taken when its budgets still take it with the domains already chosen."""
    full = allocator.domain_chips
    parts, left, added = [], chips, {}
    free = allocator.buckets[full]
    needed, seen = math.ceil(chips / full), 0
    refused: set[int] = set()  # budgets that refused a whole domain (what they hold only grows: they refuse again)
    dead = [0] * len(groups[1]) if groups is not None else None
    for domain in free:
        if len(parts) + len(free) - seen < needed:
            return None  # too few free domains left to try
        seen += 1
        n = min(full, left)
        entries = shares[domain]
        if n == full and refused and any(b in refused for b, _ in entries):
            continue
        adds = [(b, n * f * per_chip_w) for b, f in entries]
        ok = True
        for b, w in adds:
            h = room.get(b)
            if h is None:
                h = room[b] = headroom(b)
            if added.get(b, 0.0) + w > h:
                ok = False
                if n == full and groups is not None and b not in refused:
                    refused.add(b)
                    dead[groups[0][b]] += 1
                    if dead[groups[0][b]] == groups[1][groups[0][b]]:
                        return None  # every rack (or every row) of the pool refused a whole domain
        if ok:
            for b, w in adds:
                added[b] = added.get(b, 0.0) + w
            parts.append((domain, n))
            left -= n
            if not left:
                return tuple(parts)
    return None


def _whole_rank(shares, free, w: float, headroom, room: dict, groups, needed: int) -> int:
    """How many of the wholly free domains ``free`` the greedy search of ``find_placement`` takes (at most
    ``needed``), each whole domain adding ``w`` to its rack and row, when every domain is whole in one rack and one
    row (``groups``). Budget ``b`` takes whole domains while the sum of ``w`` it holds plus ``w`` is within its
    headroom: its first ``k_b`` ones. Racks nested in rows with such limits make a laminar matroid, so the greedy
    takes the same number of domains in any order: Σ over rows of min(k_row, Σ over its racks of min(k_rack, free
    domains there)). Counts the free domains per rack and row once (no budget checks per domain)."""
    from collections import Counter

    caps: dict[int, int] = {}

    def cap(b: int) -> int:
        if b not in caps:
            h = room.get(b)
            if h is None:
                h = room[b] = headroom(b)
            if w > h:  # a full budget (the common case): no loop
                caps[b] = 0
                return 0
            m, added = 0, 0.0
            while m < needed and added + w <= h:
                added += w
                m += 1
            caps[b] = m
        return caps[b]

    kind = groups[0]
    outer: dict = {}  # row (or the single kind's budget) -> whole domains its racks take
    for entries, n in Counter(map(shares.__getitem__, free)).items():
        inner = [b for b, _ in entries if kind[b] == 0]
        rows = [b for b, _ in entries if kind[b] == 1]
        if rows:
            outer[rows[0]] = outer.get(rows[0], 0) + min(cap(inner[0]), n)
        else:
            outer[inner[0]] = outer.get(inner[0], 0) + n
    return min(needed, sum(min(cap(b), n) for b, n in outer.items()))


@dataclass
class WholeIndex:
    """A pool whose domains are whole in one rack and one row (``BudgetLayout.groups``), by its inner budgets
    (racks; rows when it has no rack budget), for ``find_whole_placement``: budget ids ``first`` to ``first +
    len(outer) - 1``, each one's outer budget (its row, -1 when none) and domains."""
    first: int
    outer: list[int]
    domains: list[tuple[int, ...]]
    rows: tuple[int, int] | None  # the outer budgets' ids run from rows[0] to rows[1] - 1; None without
    racks: list[tuple[int, ...]]  # per outer budget (rows[0] + k), its inner ones (local indices)


def whole_index(layout: BudgetLayout, pool: int) -> WholeIndex | None:
    """The ``WholeIndex`` of ``pool``; None when its domains are not whole in their racks and rows (or it has no
    budget), or its inner budgets are not numbered in one run."""
    groups = layout.groups[pool]
    if groups is None:
        return None
    kind = groups[0]
    inner = sorted(b for b, k in kind.items() if k == 0)
    if inner != list(range(inner[0], inner[0] + len(inner))):
        return None
    outer, domains = [-1] * len(inner), [[] for _ in inner]
    for domain, entries in enumerate(layout.shares[pool]):
        rack = next(b for b, _ in entries if kind[b] == 0) - inner[0]
        outer[rack] = next((b for b, _ in entries if kind[b] == 1), -1)
        domains[rack].append(domain)
    rows = sorted(b for b, k in kind.items() if k == 1)
    if rows and rows != list(range(rows[0], rows[0] + len(rows))):
        return None
    racks = [tuple(r for r, o in enumerate(outer) if o == row) for row in rows]
    return WholeIndex(inner[0], outer, [tuple(d) for d in domains], (rows[0], rows[-1] + 1) if rows else None,
                      racks)


def _open_domains(index: WholeIndex, w: float, eff: list[float]) -> list[int]:
    """Local indices of the inner budgets that hold ``w`` more with their outer budget (``eff``: per inner budget,
    the smaller headroom of the two [W])."""
    inner = eff[index.first:index.first + len(index.outer)]
    if max(inner) < w:
        return []  # no rack holds it: the common case where the budgets bind
    return [r for r, h in enumerate(inner) if h >= w]


def find_whole_placement(allocator, shares, chips: int, per_chip_w: float, head: list[float], eff: list[float],
                         groups, index: WholeIndex) -> tuple | None:
    """``find_placement(allocator, shares, chips, per_chip_w, head.__getitem__, groups)`` on a pool with a
    ``WholeIndex``, the same answer found faster: the racks whose rack and row have room are found first from
    ``eff`` (per inner budget, ``min(head[inner], head[outer])``; ``head``: headroom per budget [W]), then only
    their domains are looked for in the allocator's buckets (a gang of at most a domain), or counted among the
    wholly free domains (a larger one, as ``_whole_rank``: the greedy search runs only when it finds enough). Most
    searches on a pool whose budgets bind end at the first step."""
    full = allocator.domain_chips
    if chips <= full:
        need = chips * per_chip_w
        racks = _open_domains(index, need, eff)
        if not racks:
            return None
        domains = index.domains
        ok = {d for r in racks for d in domains[r]}
        mask, level = allocator.mask >> chips, chips
        while mask:
            if mask & 1:
                bucket = allocator.buckets[level]
                if not ok.isdisjoint(bucket):
                    for domain in bucket:  # the first in the bucket's order, as ``find_placement``
                        if domain in ok:
                            return ((domain, chips),)
            mask >>= 1
            level += 1
        return None
    if full == 0 or len(allocator.buckets[full]) * full < chips:
        return None
    if chips % full == 0:
        needed, w = chips // full, full * per_chip_w
        free = allocator.buckets[full]
        outer: dict[int, int] = {}
        for r in _open_domains(index, w, eff):
            n = sum(d in free for d in index.domains[r])
            if n:
                o = index.outer[r]
                outer[o] = outer.get(o, 0) + min(_whole_cap(head[index.first + r], w, needed), n)
        taken = sum(n if o < 0 else min(_whole_cap(head[o], w, needed), n) for o, n in outer.items())
        if taken < needed:
            return None
    return _greedy(allocator, shares, chips, per_chip_w, head.__getitem__, groups, {})


def _whole_cap(h: float, w: float, needed: int) -> int:
    """How many whole domains of ``w`` a budget with headroom ``h`` takes (at most ``needed``), summed as
    ``_whole_rank`` sums them."""
    m, added = 0, 0.0
    while m < needed and added + w <= h:
        added += w
        m += 1
    return m


def within(power_w: float, limit_w: float) -> bool:
    """Whether ``power_w`` respects a budget, up to rounding (as the site cap, ``within_cap``)."""
    return power_w <= limit_w * (1.0 + CAP_TOLERANCE)
