"""Rack and row power budgets (``fleet[].rack_budget_kw``, ``racks_per_row``, ``row_budget_kw``): the layout
(``sim.fleet.budgets``), the committed power per budget (``sim.training.budgets``) and the capping policies acting
per budget (``sim.training.capping``)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import sim
import sim.training.capping as capping_module
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.fleet.allocation import DomainAllocator
from sim.fleet.budgets import (
    BudgetLayout,
    _whole_rank,
    budget_layout,
    find_placement,
    find_whole_placement,
    reserved_w,
    whole_index,
)
from sim.policies.capping import power_frac
from sim.results.capping import budget_series
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted

TOLERANCE = 1e-9  # relative, as sim.fleet.build.CAP_TOLERANCE

# 64 H100 in 4 racks of 16 chips (2 rows of 2 racks) and 32 TPU v6e in 4 racks of 8 chips, whose 16-chip scale-up
# domains span 2 racks each; a chat service holds 4 H100 at full load from the start.
SITE = {
    "schema_version": 1, "name": "budgets", "seed": 3, "start": "2026-01-01", "duration": "2d",
    "site": {"pue": 1.25, "power_cap_mw": 0.08},
    "fleet": [
        {"name": "h100", "accelerator": "h100-sxm", "count": 64, "chips_per_server": 8, "servers_per_rack": 2,
         "rack_budget_kw": 12.0, "racks_per_row": 2, "row_budget_kw": 22.0},
        {"name": "tpu", "accelerator": "tpu-v6e", "count": 32, "chips_per_server": 4, "servers_per_rack": 2,
         "scale_up_domain_chips": 16, "rack_budget_kw": 3.2},
    ],
    "workloads": {
        "training": {"generator": {
            "jobs": 150, "arrival_rate_per_hour": 5, "chips": {1: 0.4, 4: 0.3, 8: 0.2, 16: 0.1},
            "models": {"resnet50": 0.6, "bert-large": 0.4}, "stacks": {"portable": 0.7, "xla": 0.3},
            "duration_s": {"lognormal": {"median": 7200, "sigma": 1.0}}, "reference_accelerator": "h100-sxm"}},
        "inference": [{
            "name": "chat", "model": "llama3-8b", "stack": "portable", "fidelity": "fluid",
            "replicas": [{"pool": "h100", "count": 4, "chips_per_replica": 1}],
            "traffic": {"generator": {"rate_per_s": 2, "prompt_tokens": {"lognormal": {"median": 500, "sigma": 0.5}},
                                      "output_tokens": {"exponential": {"mean": 100}}}}}],
    },
    "policy": {"scheduler": {"kind": "fifo-backfill"}, "power_cap": {"kind": "throttle"}},
}


def site(**changes) -> dict:
    data = copy.deepcopy(SITE)
    for path, value in changes.items():
        *keys, last = path.split("__")
        node = data
        for key in keys:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def recomputed_w(cluster) -> list[float]:
    """Each budget's committed IT power from the cluster's state alone: idle chips, the replicas the engine placed at
    the start (at full load), every running job's chips split over its domains' racks at its clock."""
    layout = budget_layout(cluster.pools)
    fleet = cluster.fleet
    held: list = []
    drawn = [idle + inference for idle, inference in zip(layout.idle_w, reserved_w(layout, fleet.new_allocators(held),
                                                                                   held))]
    for job, placement in cluster.placement.items():
        pool = cluster.pool_of[job]
        if not layout.has(pool):
            continue
        parts = cluster.shared[pool].domain_of[placement] if cluster.share_units[job] else placement
        placed = sum(n for _, n in parts)
        clock = cluster.capping._clock(job)
        per_chip = cluster.busy_chips[job] / placed * layout.busy_increment_w[pool] * power_frac(clock)
        for b, w in layout.job_shares(pool, parts, per_chip).items():
            drawn[b] += w
    for group, placements in cluster.replica_placements.items():  # replicas the schedule placed (windows)
        pool = cluster.group_pool[group]
        for parts in placements:
            for b, w in layout.job_shares(pool, parts, layout.busy_increment_w[pool]).items():
                drawn[b] += w
    return drawn


@pytest.fixture
def every_event(monkeypatch):
    """After every event of a run: each budget's power recomputed from scratch, against its limit and against
    the cluster's incremental count. Yields the list of (largest committed / limit) per event."""
    seen = []
    original = capping_module.PowerCap.after

    def after(self, t):
        shed = original(self, t)
        layout, loads = self.budgets.layout, self.budgets
        drawn = recomputed_w(self.cluster)
        assert drawn == pytest.approx(loads.drawn, rel=1e-9, abs=1e-6)
        c = self.cluster  # the site's committed power, kept incrementally, is the recount to the last bit
        recount = c.committed_w - math.fsum(self._job_w(j) * (1.0 - power_frac(self._clock(j))) for j in c.placement)
        assert self.committed_w() == recount
        seen.append(max(w / limit for w, limit in zip(drawn, layout.limit_w)))
        return shed

    monkeypatch.setattr(capping_module.PowerCap, "after", after)
    return seen


WINDOWED = {"pool": "h100", "count": 24, "chips_per_replica": 1}


@pytest.fixture
def budget_states(monkeypatch):
    """After every event of a run: (time [s], {budget name: committed power recomputed from scratch / limit})."""
    states = []
    original = capping_module.PowerCap.after

    def after(self, t):
        shed = original(self, t)
        names, limits = self.budgets.layout.names, self.budgets.layout.limit_w
        states.append((t, {n: w / limit for n, w, limit in zip(names, recomputed_w(self.cluster), limits)}))
        return shed

    monkeypatch.setattr(capping_module.PowerCap, "after", after)
    return states


def expected_bin_max(states, edges, kind: str, pool: str) -> np.ndarray:
    """Per bin from the first event's bin on (NaN before): the highest utilisation of any ``kind`` budget of
    ``pool`` after any event in the bin or carried into it from the last event before it (the states after
    events at the bin's start count as the bin's; those just before it do not)."""
    prefix = f"{kind}:{pool}:"
    times = np.array([t for t, _ in states])
    peaks = np.array([max(u for n, u in state.items() if n.startswith(prefix)) for _, state in states])
    out = np.full(len(edges) - 1, np.nan)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        before = np.flatnonzero(times <= lo)  # the last is the state holding at the bin's start
        if not len(before):
            continue
        inside = peaks[(times >= lo) & (times < hi)]
        out[i] = max(peaks[before[-1]], inside.max(initial=0.0))
    return out


def assert_budget_series(results, states) -> None:
    """The time series' budget columns: the exact bin maxima of the recomputed utilisations, within 1 every bin."""
    ts = results.timeseries
    columns = sorted(c for c in ts.columns if "budget" in c)
    assert columns == ["rack_budget_util_max.h100", "rack_budget_util_max.tpu", "row_budget_kw.h100",
                       "row_budget_util_max.h100"]
    assert (ts["row_budget_kw.h100"] == 2 * 22.0).all()
    edges = np.append(ts["time_s"].to_numpy(), results.summary["horizon_s"])
    budgets = results.summary["power_capping"]["budgets"]
    for kind, pool in (("rack", "h100"), ("rack", "tpu"), ("row", "h100")):
        column = ts[f"{kind}_budget_util_max.{pool}"].to_numpy()
        expected = expected_bin_max(states, edges, kind, pool)
        known = ~np.isnan(expected)
        assert known.sum() >= len(edges) - 2
        assert column[known] == pytest.approx(expected[known], rel=1e-9)
        assert (column <= 1.0 + TOLERANCE).all() and (column > 0).all()
    assert max(ts["rack_budget_util_max.h100"].max(), ts["rack_budget_util_max.tpu"].max()) == pytest.approx(
        budgets["rack"]["peak_utilisation"], rel=1e-12)
    assert ts["row_budget_util_max.h100"].max() == pytest.approx(budgets["row"]["peak_utilisation"], rel=1e-12)
    assert ts["row_budget_util_max.h100"].max() > 0.9  # the budgets bind: the test could fail


def test_budget_series_takes_the_exact_bin_maximum_of_the_trace():
    """A spike inside a bin is that bin's maximum though its mean is lower; a state carried over whole bins fills
    them; a change at a bin's start belongs to that bin; racks and rows of a pool are kept apart."""
    names, kinds = ["rack:a:0", "rack:a:1", "row:a:0"], ["rack", "rack", "row"]
    trace = [(0.0, 0, 0.2), (0.0, 1, 0.1), (0.0, 2, 0.3), (10.0, 0, 0.9), (11.0, 0, 0.4), (20.0, 1, 0.7),
             (35.0, 2, 0.5), (40.0, 0, 0.6)]
    times, budgets, utils = zip(*trace)
    out = budget_series(names, kinds, [1e3, 1e3, 1.5e3], times, budgets, utils, np.array([0.0, 10.0, 20.0, 30.0,
                                                                                          40.0, 45.0]))
    assert list(out) == ["rack_budget_util_max.a", "row_budget_util_max.a", "row_budget_kw.a"]
    assert out["rack_budget_util_max.a"] == pytest.approx([0.2, 0.9, 0.7, 0.7, 0.7])
    assert out["row_budget_util_max.a"] == pytest.approx([0.3, 0.3, 0.3, 0.5, 0.5])
    assert out["row_budget_kw.a"] == pytest.approx([1.5] * 5)


@pytest.mark.parametrize("kind", ["throttle", "shed", "admission"])
def test_every_rack_and_row_budget_holds_after_every_event(tmp_path, every_event, budget_states, kind):
    """Inference included: 4 replicas from the start and, under throttle and shed, 24 more from day 1 that the
    schedule places among the running training (where their racks and rows hold them once the training there is
    slowed or shed; admission control never stops a running job, so it would let them take a rack over)."""
    data = site(policy__power_cap__kind=kind)
    if kind != "admission":
        data["workloads"]["inference"][0]["replicas"].append(dict(WINDOWED, active_from="2026-01-02"))
    results = sim.run(scenario_from(data, tmp_path))
    assert len(every_event) > 100
    assert max(every_event) <= 1.0 + TOLERANCE
    budgets = results.summary["power_capping"]["budgets"]
    assert {"site", "rack", "row"} <= set(budgets)
    assert budgets["rack"]["peak_utilisation"] <= 1.0 + TOLERANCE
    assert budgets["row"]["peak_utilisation"] <= 1.0 + TOLERANCE
    assert max(every_event) == pytest.approx(max(budgets["rack"]["peak_utilisation"],
                                                 budgets["row"]["peak_utilisation"]), rel=1e-9)
    assert budgets["rack"]["budgets"] == 8 and budgets["row"]["budgets"] == 2
    assert budgets["row"]["peak_utilisation"] > 0.9  # the budgets bind: the test could fail
    assert_accounted(results)
    assert_budget_series(results, budget_states)
    if kind == "shed":  # the replicas arriving on day 1 take power that training in their racks or rows held
        assert budgets["rack"]["shed_events"] + budgets["row"]["shed_events"] > 0
    if kind == "throttle":
        rows = results.capping
        acted = set(rows.loc[rows["action"] == "throttle", "budget"].str.split(":").str[0])
        assert acted == {"site", "rack", "row"}  # every level slows jobs in this run
        assert budgets["rack"]["throttle_events"] + budgets["row"]["throttle_events"] + \
            budgets["site"]["throttle_events"] == results.summary["power_capping"]["throttle_events"]
        assert set(rows["budget"]) >= {"rack:tpu:0", "row:h100:0"}


def test_a_job_runs_at_the_lowest_clock_of_its_budgets(tmp_path):
    """Throttled by a row alone (no site cap, no rack budget): every throttle row names a row, and the site's
    committed power is not what slowed them; a clock at the minimum of site and row keeps both within."""
    data = site(site__power_cap_mw=None, fleet__0__rack_budget_kw=None, fleet__1__rack_budget_kw=None)
    results = sim.run(scenario_from(data, tmp_path))
    rows = results.capping
    throttled = rows[rows["action"] == "throttle"]
    assert len(throttled) > 0 and throttled["budget"].str.startswith("row:h100:").all()
    assert results.summary["power_capping"]["budgets"]["row"]["peak_utilisation"] <= 1.0 + TOLERANCE
    # with a site cap too, a job slowed by both runs at the lower clock: both levels act, both hold
    data["site"]["power_cap_mw"] = 0.07
    both = sim.run(scenario_from(data, tmp_path, "both.yaml"))
    capping = both.summary["power_capping"]
    assert capping["budgets"]["site"]["throttle_events"] > 0 and capping["budgets"]["row"]["throttle_events"] > 0
    assert capping["max_committed_over_cap_w"] <= 0.07e6 * TOLERANCE
    assert capping["budgets"]["row"]["peak_utilisation"] <= 1.0 + TOLERANCE


@pytest.mark.parametrize("kind", ["throttle", "admission"])
def test_a_tighter_row_budget_never_finishes_the_workload_earlier(tmp_path, kind):
    makespans, completed = [], []
    for k, row_kw in enumerate((31.7, 24.0, 20.0, 16.0)):  # 31.7 kW: above the row's 31.68 kW peak
        data = site(site__power_cap_mw=None, fleet__0__rack_budget_kw=None, fleet__0__row_budget_kw=row_kw,
                    duration="6d", policy__power_cap__kind=kind)
        data["fleet"] = data["fleet"][:1]  # one pool: the makespan is the row's
        data["workloads"]["training"]["generator"]["stacks"] = {"portable": 1.0}
        results = sim.run(scenario_from(data, tmp_path, f"r{k}.yaml"))
        completed.append(results.summary["jobs"]["completed"])
        makespans.append(results.jobs["end_s"].max())
        assert results.summary["power_capping"]["budgets"]["row"]["peak_utilisation"] <= 1.0 + TOLERANCE
    assert completed == [150] * 4
    assert makespans == sorted(makespans) and makespans[-1] > makespans[0]


def test_oversubscription_is_reported(tmp_path):
    results = sim.run(scenario_from(site(policy__power_cap__kind="admission"), tmp_path))
    budgets = results.summary["power_capping"]["budgets"]
    # row: 2 racks of 16 H100 at 990 W each (700 W TDP + 30 % server share + 80 W switch share) over 22 kW;
    # rack: 8 TPU v6e at 512 W (+ 5 W switch share)
    assert budgets["row"]["oversubscription"] == pytest.approx(2 * 16 * 990 / 22e3)
    assert budgets["rack"]["oversubscription"] == pytest.approx(max(16 * 990 / 12e3, 8 * 512 / 3.2e3))
    out = results.save(tmp_path / "out", plots=False, report=False)
    assert (out / "capping.csv").read_text().splitlines()[0].endswith(",cap_w,priority,budget")


def test_budgets_follow_racks_and_split_domains_that_span_them(tmp_path):
    fleet = build_fleet(scenario_from(site(), tmp_path), builtin_catalog())
    layout = budget_layout(fleet.pools)
    assert layout.names[:6] == [f"rack:h100:{k}" for k in range(4)] + ["row:h100:0", "row:h100:1"]
    # h100: 8-chip domains, 16-chip racks: domain 3 is all in rack 1, row 0
    assert dict(layout.shares[0][3]) == {1: 1.0, 4: 1.0}
    # tpu: each 16-chip domain spans two 8-chip racks, half in each
    assert dict(layout.shares[1][1]) == {8: 0.5, 9: 0.5}
    # a search on the h100 may stop once its 4 racks (or 2 rows) refused; not on the tpu, whose domains span racks
    assert layout.groups[0][1] == [4, 2] and layout.groups[1] is None
    assert layout.idle_w[6] == pytest.approx(8 * fleet.pools[1].idle_w_with_server)
    # the chat replicas (4 chips, one domain) count in rack 0 at full load
    held: list = []
    inference = reserved_w(layout, fleet.new_allocators(held), held)
    assert sum(inference[:4]) == pytest.approx(4 * layout.busy_increment_w[0]) and sum(inference[6:]) == 0


def test_placement_passes_over_a_domain_whose_rack_has_no_room():
    allocator = DomainAllocator([8, 8, 8, 8])
    shares = [((0, 1.0),), ((0, 1.0),), ((1, 1.0),), ((1, 1.0),)]
    room = {0: 100.0, 1: 700.0}  # [W]; 8 chips at 50 W take 400 W
    assert find_placement(allocator, shares, 8, 50.0, room.__getitem__)[0][0] in (2, 3)
    assert find_placement(allocator, shares, 16, 50.0, room.__getitem__) is None  # 800 W: no rack takes both
    room[1] = 800.0
    parts = find_placement(allocator, shares, 16, 50.0, room.__getitem__)
    assert sorted(d for d, _ in parts) == [2, 3]


def test_whole_domain_count_matches_the_greedy_search_in_any_order():
    """``_whole_rank`` (what ``find_placement`` uses to give up early) counts the whole domains the greedy search
    takes: racks of 2 domains in rows of 2 racks, random headrooms, every gang size, domains tried in 3 orders."""
    import numpy as np

    rng = np.random.default_rng(5)
    shares = [((d // 2, 1.0), (8 + d // 4, 1.0)) for d in range(16)]  # racks 0-7, rows 8-11
    groups = ({b: int(b >= 8) for b in range(12)}, [8, 4])
    for _ in range(40):
        room = dict(enumerate(rng.uniform(0.0, 2000.0, 12).tolist()))
        free = {int(d) for d in np.flatnonzero(rng.random(16) < 0.7)}
        for needed in range(1, len(free) + 1):
            counts = set()
            for order in (sorted(free), sorted(free, reverse=True), rng.permutation(sorted(free)).tolist()):
                added, taken = {}, 0
                for d in order:
                    if taken < needed and all(added.get(b, 0.0) + 400.0 <= room[b] for b, _ in shares[d]):
                        for b, _ in shares[d]:
                            added[b] = added.get(b, 0.0) + 400.0
                        taken += 1
                counts.add(taken)
            assert counts == {_whole_rank(shares, free, 400.0, room.__getitem__, {}, groups, needed)}


def whole_layout(kinds: tuple[str, ...]) -> BudgetLayout:
    """16 domains of 8 chips, 2 per rack, racks 2 per row: budgets of ``kinds`` (racks 0-7 then rows, or one)."""
    names, shares = [], [[] for _ in range(16)]
    for kind, per in (("rack", 2), ("row", 4)):
        if kind in kinds:
            first = len(names)
            names += [f"{kind}:p:{k}" for k in range(16 // per)]
            for d in range(16):
                shares[d].append((first + d // per, 1.0))
    layout = BudgetLayout(names, [n.split(":")[0] for n in names], [1e4] * len(names), [0.0] * len(names),
                          [0.0] * len(names), [[tuple(e) for e in shares]], [700.0])
    groups = {b: sorted(kinds).index(layout.kinds[b]) for b in range(len(names))}
    layout.groups = [(groups, [layout.kinds.count(k) for k in sorted(kinds)])]
    return layout


@pytest.mark.parametrize("kinds", [("rack", "row"), ("rack",), ("row",)])
def test_the_whole_domain_search_finds_what_the_general_one_finds(kinds):
    """``find_whole_placement`` (the search on pools whose domains are whole in their racks and rows) returns the
    very placement ``find_placement`` returns, for random free chips, closed domains and headrooms, every gang."""
    rng = np.random.default_rng(11)
    layout = whole_layout(kinds)
    shares, groups, index = layout.shares[0], layout.groups[0], whole_index(layout, 0)
    assert index is not None
    found = 0
    for _ in range(150):
        allocator = DomainAllocator([8] * 16)
        for d in range(16):
            used = int(rng.choice([0, 0, 0, 2, 5, 8]))
            if used:
                allocator.take(d, used)
        for d in rng.choice(16, int(rng.integers(0, 3)), replace=False).tolist():
            allocator.close(d)
        head = rng.uniform(-200.0, 3000.0, len(layout.names)).tolist()
        eff = list(head)
        for r, o in enumerate(index.outer):
            eff[index.first + r] = head[index.first + r] if o < 0 else min(head[index.first + r], head[o])
        for chips in (1, 2, 3, 5, 8, 16, 20, 24, 40):
            for w in (50.0, 150.0, 400.0):
                expected = find_placement(allocator, shares, chips, w, head.__getitem__, groups)
                assert find_whole_placement(allocator, shares, chips, w, head, eff, groups, index) == expected
                found += expected is not None
    assert 0.2 < found / (150 * 27) < 0.8  # both outcomes are common: the comparison could fail


def test_domains_that_span_racks_keep_the_general_search():
    layout = whole_layout(("rack",))
    layout.groups = [None]  # as a pool whose domains span racks (``budget_layout``)
    assert whole_index(layout, 0) is None


@pytest.mark.parametrize("kind", ["admission", "shed"])
def test_placement_shortcuts_change_no_outcome(tmp_path, monkeypatch, kind):
    """A run with the whole-domain search, its early refusals and the narrowed room of the wait queue gives the
    jobs table of a run with the general search everywhere; the queue's room is narrowed in it, and never below a
    gang the general search places. The budgets over their limit (``shed``: replicas arriving from day 1) are
    kept as the count changes, as a scan of every budget finds them."""
    import sim.training.budgets as loads_module
    import sim.training.cluster as cluster_module

    data = site(policy__power_cap__kind=kind, site__power_cap_mw=None, duration="4d")
    data["workloads"]["training"]["generator"].update(jobs=800, arrival_rate_per_hour=12)
    if kind == "shed":
        data["workloads"]["inference"][0]["replicas"].append(dict(WINDOWED, active_from="2026-01-02"))
    over, original_after = [], capping_module.PowerCap.after

    def after(self, t):
        loads = self.budgets
        over.append(loads.over_now is None or  # kept from the first call that asks (shed)
                    loads.over_now == {b for b, members in enumerate(loads.members)
                                       if members and loads.drawn[b] > loads.limit[b] * (1.0 + TOLERANCE)})
        over.append(bool(loads.over_now))
        return original_after(self, t)

    monkeypatch.setattr(capping_module.PowerCap, "after", after)
    narrowed, original_room = [], cluster_module.Cluster.room

    def room(self, pools):
        out = original_room(self, pools)
        loads, full = self.budgets, [a.largest_gang() for a in self.allocators]
        for pool, (g, top) in enumerate(zip(out, full)):
            if loads.whole[pool] is None or pools is not None and pool not in pools or g == top:
                continue
            narrowed.append(pool)
            per_chip_w = loads.low * loads.layout.busy_increment_w[pool]
            for chips in range(g + 1, top + 1):
                assert find_placement(self.allocators[pool], loads.layout.shares[pool], chips, per_chip_w,
                                      loads._headroom, loads.layout.groups[pool]) is None
        assert loads.head == [loads._headroom(b) for b in range(len(loads.head))]  # kept exact as power moves
        return out

    monkeypatch.setattr(cluster_module.Cluster, "room", room)
    fast = sim.run(scenario_from(data, tmp_path)).jobs
    assert len(narrowed) > 20 and set(narrowed) == {0}
    assert all(over[0::2]) and any(over[1::2]) == (kind == "shed")
    monkeypatch.setattr(cluster_module.Cluster, "room", original_room)
    monkeypatch.setattr(loads_module, "whole_index", lambda layout, pool: None)
    general = sim.run(scenario_from(data, tmp_path, "general.yaml")).jobs
    assert (fast["state"] == "completed").sum() > 50
    assert fast.equals(general)


def test_clocks_without_a_site_cap_are_each_budgets_lowest(tmp_path, monkeypatch):
    """Without a site cap, ``BudgetLoads.clocks`` keeps each job's lowest clock across calls (``_merge``): after
    every call, the clocks and binding budgets are those of lowering 1s budget by budget from scratch (every
    budget with training over it at full clock, in budget order, the first lowest kept)."""
    import sim.training.budgets as loads_module
    from sim.fleet.budgets import within
    from sim.policies.capping import clocks_within

    checked, original = [], loads_module.BudgetLoads.clocks

    def clocks(self, key, out, binding, min_clock):
        start = dict(out)
        victim = original(self, key, out, binding, min_clock)
        expected, named = dict(start), {}
        for b, members in enumerate(self.members):
            if not members or within(self.floor[b] + self.full[b], self.limit[b]):
                continue
            jobs = sorted(members, key=key)
            fs = clocks_within(self.limit[b] * (1.0 + 1e-12) - self.floor[b], [members[j] for j in jobs], min_clock)
            if fs is None:
                assert victim == (jobs[-1], self.layout.names[b])
                return victim
            for job, f in zip(jobs, fs):
                if f < expected.get(job, 1.0):
                    expected[job], named[job] = f, self.layout.names[b]
        assert victim is None and out == expected and binding == named
        checked.append(len(named))
        return victim

    monkeypatch.setattr(loads_module.BudgetLoads, "clocks", clocks)
    data = site(site__power_cap_mw=None, duration="4d")
    data["workloads"]["training"]["generator"].update(jobs=800, arrival_rate_per_hour=12)
    data["workloads"]["inference"][0]["replicas"].append(dict(WINDOWED, active_from="2026-01-02"))
    results = sim.run(scenario_from(data, tmp_path))
    assert len(checked) > 100 and max(checked) > 5  # jobs were slowed: the comparison could fail
    assert results.summary["power_capping"]["throttle_events"] > 0


def test_a_job_no_rack_could_hold_is_rejected(tmp_path):
    data = site(policy__power_cap__kind="admission")
    data["workloads"]["training"]["generator"]["stacks"] = {"xla": 1.0}  # TPU only: 16 chips span 2 racks
    results = sim.run(scenario_from(data, tmp_path))
    jobs = results.jobs
    big = jobs[jobs["chips"] == 16]
    assert len(big) > 0 and (big["state"] == "rejected").all()
    assert big["reason"].str.contains("over-rack-or-row-budget").all()
    assert (jobs.loc[jobs["chips"] < 16, "state"] != "rejected").all()


def test_without_budgets_nothing_changes(tmp_path):
    plain = sim.run(scenario_from(site(fleet__0__rack_budget_kw=None, fleet__0__racks_per_row=None,
                                       fleet__0__row_budget_kw=None, fleet__1__rack_budget_kw=None), tmp_path))
    assert "budgets" not in plain.summary["power_capping"]
    assert (plain.capping["budget"] == "site").all()
    ts = plain.timeseries
    assert not [c for c in ts.columns if "budget" in c]
    by_type = sorted(c for c in ts.columns if c.startswith("it_power_kw.by_type."))
    assert by_type == ["it_power_kw.by_type.h100-sxm", "it_power_kw.by_type.tpu-v6e"]  # every run has these
    assert ts["it_power_kw.by_type.h100-sxm"].to_numpy() == pytest.approx(ts["it_power_kw.h100"].to_numpy())
    assert ts[by_type].sum(axis=1).to_numpy() == pytest.approx(ts["it_power_kw"].to_numpy())


def errors_of(tmp_path, data) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "bad.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("changes, field, words", [
    ({"fleet__0__rack_budget_kw": 0}, "fleet[0].rack_budget_kw", "found 0"),
    ({"fleet__0__row_budget_kw": -5}, "fleet[0].row_budget_kw", "found -5"),
    ({"fleet__0__racks_per_row": 0}, "fleet[0].racks_per_row", "found 0"),
    ({"fleet__0__rack_budget_kw": 1.2}, "fleet[0].rack_budget_kw", "2.736 kW idle"),
    ({"fleet__0__row_budget_kw": 2.5}, "fleet[0].row_budget_kw", "5.472 kW idle"),
    ({"fleet__0__racks_per_row": None}, "fleet[0].racks_per_row", "row_budget_kw is set"),
    ({"fleet__0__rack_budget_kw": 4.5}, "fleet[0].rack_budget_kw", "inference replicas placed in rack 0"),
])
def test_bad_budgets_are_located(tmp_path, changes, field, words):
    (error,) = errors_of(tmp_path, site(**changes))
    assert "bad.yaml:" in error and field in error and words in error


def test_a_row_longer_than_the_pool_is_checked_against_the_racks_it_holds(tmp_path):
    # 64 H100 (4 racks of 16) in rows of up to 100 racks: the one row holds 4 racks (10.94 kW idle), so a 22 kW
    # row budget is feasible (the check used to demand 100 racks' idle power, 273.6 kW)
    results = sim.run(scenario_from(site(fleet__0__racks_per_row=100), tmp_path))
    row = results.summary["power_capping"]["budgets"]["row"]
    assert row["budgets"] == 1
    assert row["oversubscription"] == pytest.approx(4 * 16 * 990 / 22e3)
    (error,) = errors_of(tmp_path, site(fleet__0__racks_per_row=100, fleet__0__row_budget_kw=5.0))
    assert "fleet[0].row_budget_kw" in error and "64 chips in 100 racks or fewer" in error and "10.94 kW idle" in error


@pytest.mark.parametrize("seed", [2, 7])
def test_a_cached_refusal_holds_only_in_the_state_it_was_found_in(tmp_path, monkeypatch, seed):
    """The search cache answers "no placement" again only in the very state where a search found none (the free
    chips of every domain, the closed domains, the budgets' power): failures take servers away and bring them back
    (chips moving between domains without a job starting or ending) and maintenance windows close and reopen
    domains. Before the allocator counted those moves, these seeds reused refusals in other states. Every refusal
    also agrees with a fresh search."""
    import sim.training.budgets as loads_module

    data = site(policy__power_cap__kind="admission", site__power_cap_mw=None, duration="6d", seed=seed)
    data["workloads"]["training"]["generator"].update(jobs=600, arrival_rate_per_hour=8)
    profile = builtin_catalog().failure_profiles["llm-cluster-typical"]["rates_per_1000_chip_days"]
    data["failures"] = {"rates_per_1000_chip_days": {c: 400 * v["value"] for c, v in profile.items()},
                        "repair_time": {"gpu": 7200, "memory": 7200, "network": 3600, "host": 3600},
                        "maintenance": [{"pool": "h100", "start": "2026-01-02", "hours": 5, "fraction": 0.25,
                                         "every_days": 1, "drain_hours": 1}]}
    original, found_in, reused, fresh_agrees = loads_module.BudgetLoads._search, {}, [], []

    def search(self, pool, chips, per_chip_w):
        allocator, key = self.cluster.allocators[pool], (pool, chips, per_chip_w)
        state = (tuple(allocator.free), frozenset(allocator.closed), self.version[pool])
        from_cache = key in self.refused and self.refused[key] == self._stamp(pool)
        plan = original(self, pool, chips, per_chip_w)
        if from_cache:
            reused.append(found_in[key] == state)
        elif plan is None:
            found_in[key] = state
        if plan is None:
            index = self.whole[pool]
            if index is not None:
                fresh = loads_module.find_whole_placement(allocator, self.layout.shares[pool], chips, per_chip_w,
                                                          self.head, self.eff, self.layout.groups[pool], index)
            else:
                fresh = find_placement(allocator, self.layout.shares[pool], chips, per_chip_w, self._headroom,
                                       self.layout.groups[pool])
            fresh_agrees.append(fresh is None)
        return plan

    monkeypatch.setattr(loads_module.BudgetLoads, "_search", search)
    results = sim.run(scenario_from(data, tmp_path))
    assert results.summary["failures"]["repairs_by_pool"]["h100"] > 20
    assert len(reused) > 100 and all(reused)
    assert all(fresh_agrees)
