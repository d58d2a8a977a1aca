"""Retirements and drain (``fleet[].retirements``, ``fleet[].drain``): a pool's chips leave by whole scale-up
domains at dates; before each date the leaving domains drain (no new job, running ones finish if they can) and
what still runs there at the date is preempted with checkpoint semantics."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.money.ledger import YEAR_S, capex_items_usd, retired_by_tranche
from sim.training.cluster import Cluster
from tests.conftest import BASE, scenario_from
from tests.test_engine import assert_accounted
from tests.test_inference import with_service

DAY = 86400.0
DRAIN_FROM, RETIRE_AT = 2 * DAY - 4 * 3600, 2 * DAY


def retiring(base: dict, jobs: int = 200, drain: str | None = "4h", **pool) -> dict:
    """One H100 pool of 32 chips (domains of 8) in a 3-day run; 16 chips retire on day 2 after a 4-hour drain."""
    base.update(duration="3d")
    base["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 32, "chips_per_server": 8,
                      "servers_per_rack": 2, "retirements": [{"date": "2026-01-03", "chips": 16}], **pool}]
    if drain is not None:
        base["fleet"][0]["drain"] = drain
    base["workloads"]["training"]["generator"].update(
        jobs=jobs, arrival_rate_per_hour=4, stacks={"cuda": 1.0}, chips={8: 1.0},
        duration_s={"lognormal": {"median": 6 * 3600, "sigma": 0.5}})
    return base


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A run with the cluster's placements recorded: (time, job, domains) per start, and the retiring domains."""
    starts, retiring_domains = [], {}
    original_start, original_drain = Cluster.try_start, Cluster._drain

    def try_start(self, job, pool):
        started = original_start(self, job, pool)
        if started:
            starts.append((self.now, job, {d for d, _ in self.placement[job]}))
        return started

    def drain(self, pool, retirement):
        original_drain(self, pool, retirement)
        retiring_domains.update({key: set(domains) for key, domains in self.retiring.items()})

    scenario = scenario_from(retiring(copy.deepcopy(BASE)), tmp_path_factory.mktemp("retire"))
    patch = pytest.MonkeyPatch()
    patch.setattr(Cluster, "try_start", try_start)
    patch.setattr(Cluster, "_drain", drain)
    try:
        results = sim.run(scenario)
    finally:
        patch.undo()
    return scenario, results, starts, retiring_domains[(0, 0)]


def test_online_chips_drop_at_the_retirement(traced):
    scenario, results, _, _ = traced
    pool = build_fleet(scenario, builtin_catalog()).pools[0]
    assert pool.retirements == ((RETIRE_AT, 16),) and pool.drain_s == 4 * 3600
    assert pool.chip_steps(3 * DAY) == ([0.0, RETIRE_AT, 3 * DAY], [32, 16, 0])
    assert pool.online_chip_seconds(0.0, 3 * DAY) == 32 * 2 * DAY + 16 * DAY
    series = results.timeseries
    t = series["time_s"].to_numpy()
    online = series["online_chips.h100-sxm"].to_numpy()
    assert (online[t < RETIRE_AT] == 32).all() and (online[t >= RETIRE_AT] == 16).all()
    assert (series.loc[t >= RETIRE_AT, "busy_chips.h100-sxm"] <= 16 + 1e-9).all()
    assert results.monthly["online_chips.h100-sxm"].iloc[0] == pytest.approx((32 * 2 + 16) / 3, rel=1e-12)
    assert results.ledger.online_chip_s["gpu"].sum() == pytest.approx(32 * 2 * DAY + 16 * DAY, rel=1e-12)
    widths = np.diff(np.append(t, 3 * DAY))
    busy_s = float((series["busy_chips.h100-sxm"].to_numpy() * widths).sum())
    assert results.summary["utilization_by_accelerator"]["h100-sxm"] == pytest.approx(
        busy_s / (32 * 2 * DAY + 16 * DAY), rel=1e-12)


def test_the_highest_domains_retire(traced):
    *_, domains = traced
    assert domains == {2, 3}  # four domains of 8 chips: the two of highest index


def test_no_job_starts_on_draining_domains_and_jobs_there_finish(traced):
    _, results, starts, domains = traced
    jobs = results.jobs
    during = [(t, job, ds) for t, job, ds in starts if t >= DRAIN_FROM]
    assert during and not any(ds & domains for _, _, ds in during)  # jobs start, elsewhere
    assert any(ds & domains for t, _, ds in starts if t < DRAIN_FROM)  # the domains were used before
    ends = jobs.set_index("job_id")["end_s"] if "job_id" in jobs.columns else jobs["end_s"]
    there = [job for t, job, ds in starts if t < DRAIN_FROM and ds & domains]
    finished = [job for job in there if DRAIN_FROM <= ends.iloc[job] < RETIRE_AT]
    assert finished  # jobs already there when the drain began ran to their end


def test_jobs_still_running_at_the_date_are_preempted_and_requeued(traced):
    _, results, starts, domains = traced
    jobs = results.jobs
    preempted = jobs[jobs["preemptions"] > 0]
    assert len(preempted) > 0 and results.summary["training"]["preempted_jobs"] == len(preempted)
    on_retired = {job for t, job, ds in starts if t < RETIRE_AT and ds & domains}
    assert set(preempted.index) <= on_retired  # only jobs on the retiring domains
    assert (preempted["lost_chip_s"] < 3600 * preempted["chips"] + 1e-6).all()  # at most one checkpoint lost
    restarted = [job for t, job, ds in starts if t >= RETIRE_AT and job in set(preempted.index)]
    assert restarted and not any(ds & domains for t, _, ds in starts if t >= RETIRE_AT)
    assert set(preempted["state"]) <= {"completed", "running", "queued"}  # none lost
    assert_accounted(results)


def test_without_a_drain_nothing_runs_on_retiring_domains_after_the_date(base, tmp_path):
    results = sim.run(scenario_from(retiring(base, drain=None), tmp_path))
    series = results.timeseries
    t = series["time_s"].to_numpy()
    assert (series.loc[t < RETIRE_AT, "busy_chips.h100-sxm"] > 16).any()  # no drain: all 32 chips busy before
    assert (series.loc[t >= RETIRE_AT, "busy_chips.h100-sxm"] <= 16 + 1e-9).all()
    assert results.summary["training"]["preempted_jobs"] > 0
    assert_accounted(results)


def test_a_whole_pool_drains_before_it_leaves(base, tmp_path):
    base["fleet"][1].update(online_until="2026-01-02", drain="6h")
    base["workloads"]["training"]["generator"].update(jobs=200, arrival_rate_per_hour=10)
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    on_tpu = jobs[jobs["pool"] == "tpu"]
    assert len(on_tpu) and (on_tpu["start_s"].dropna() < DAY - 6 * 3600).all()
    base["fleet"][1]["drain"] = 0
    undrained = sim.run(scenario_from(base, tmp_path, "undrained.yaml")).jobs
    late = undrained[(undrained["pool"] == "tpu") & (undrained["start_s"] >= DAY - 6 * 3600)]
    assert len(late) > 0  # without the drain jobs start there in that window


def test_a_drain_without_any_retirement_changes_nothing(base, tmp_path):
    plain = sim.run(scenario_from(base, tmp_path))
    base["fleet"][0]["drain"] = "1d"
    base["fleet"][0]["retirements"] = []
    assert sim.run(scenario_from(base, tmp_path, "drain.yaml")).summary == plain.summary


def test_retired_chips_write_off_their_book_value(traced):
    scenario, results, _, _ = traced
    fleet = build_fleet(scenario, builtin_catalog())
    pool, site = fleet.pools[0], fleet.site
    life = site.amortization_years * YEAR_S
    value = sum(capex_items_usd(pool, site, 1, pool.purchase_usd_per_chip).values())
    entries = results.ledger.entries
    write_off = entries[entries["category"] == "write_off"]
    assert write_off["time_s"].tolist() == [RETIRE_AT]
    assert write_off["usd"].sum() == pytest.approx(16 * value * (1 - RETIRE_AT / life), rel=1e-12)
    depreciation = results.ledger.cost_usd("depreciation")
    assert depreciation == pytest.approx((32 * 2 * DAY + 16 * DAY) * value / life, rel=1e-12)
    maintenance = results.ledger.cost_usd("maintenance")
    assert maintenance == pytest.approx(
        (32 * 2 * DAY + 16 * DAY) * pool.purchase_usd_per_chip * site.maintenance_frac_per_year / YEAR_S, rel=1e-12)


def test_retirements_take_the_oldest_tranches_first(base, tmp_path):
    assert retired_by_tranche([(0.0, 16, 1.0), (DAY, 16, 1.0)], [(2 * DAY, 24)]) == [[(2 * DAY, 16)], [(2 * DAY, 8)]]
    assert retired_by_tranche([(0.0, 16, 1.0), (DAY, 16, 1.0)], [(DAY / 2, 8), (2 * DAY, 16)]) == \
        [[(DAY / 2, 8), (2 * DAY, 8)], [(2 * DAY, 8)]]
    data = retiring(base, jobs=10, deliveries=[{"date": "2026-01-02", "chips": 16}])
    data["fleet"][0]["retirements"] = [{"date": "2026-01-03", "chips": 24}]
    scenario = scenario_from(data, tmp_path)
    fleet = build_fleet(scenario, builtin_catalog())
    pool, site = fleet.pools[0], fleet.site
    assert pool.chip_steps(3 * DAY) == ([0.0, DAY, RETIRE_AT, 3 * DAY], [16, 32, 8, 0])
    life = site.amortization_years * YEAR_S
    first = sum(capex_items_usd(pool, site, 1, pool.purchase_usd_per_chip).values())
    second = sum(capex_items_usd(pool, site, 1, pool.delivery_usd_per_chip[0]
                                 if pool.delivery_usd_per_chip else pool.purchase_usd_per_chip).values())
    entries = sim.run(scenario).ledger.entries
    write_off = entries[entries["category"] == "write_off"]
    assert write_off["usd"].sum() == pytest.approx(
        16 * first * (1 - RETIRE_AT / life) + 8 * second * (1 - (RETIRE_AT - DAY) / life), rel=1e-12)


def test_capacity_plot_marks_retirements(traced):
    from sim.results.plots import _pool_changes

    scenario, *_ = traced
    assert _pool_changes(scenario, 3 * DAY) == [(RETIRE_AT, "\u221216 gpu")]


@pytest.mark.parametrize("retirements, pool_update, field, message", [
    ([{"date": "2026-01-01", "chips": 8}], {}, "fleet[0].retirements[0].date",
     "found 2026-01-01: a retirement takes chips from a pool already online; accepted: a date after 2026-01-01"),
    ([{"date": "2026-01-03", "chips": 8}, {"date": "2026-01-02", "chips": 8}], {}, "fleet[0].retirements[1].date",
     "found 2026-01-02: retirements must come in date order, one per date; accepted: a date after 2026-01-03"),
    ([{"date": "2026-01-04", "chips": 8}], {}, "fleet[0].retirements[0].date",
     "found 2026-01-04: the chips would leave at or after the end of the run (2026-01-04 00:00)"),
    ([{"date": "2026-01-03", "chips": 8}], {"online_until": "2026-01-03"}, "fleet[0].retirements[0].date",
     "found 2026-01-03: the whole pool leaves on 2026-01-03; accepted: a date before it"),
    ([{"date": "2026-01-02", "chips": 12}], {}, "fleet[0].retirements[0].chips",
     "found 12: a retirement takes whole scale-up domains of 8 chips in servers of 8 from the pool; accepted: a "
     "multiple of 8, e.g. 8"),
    ([{"date": "2026-01-02", "chips": 24}, {"date": "2026-01-03", "chips": 16}], {},
     "fleet[0].retirements[1].chips", "found 16: pool 'gpu' has 8 chips online on 2026-01-02 20:00"),
    ([{"date": "2026-01-02", "chips": 32}], {}, "fleet[0].retirements[0].chips",
     "found 32: pool 'gpu' would keep no chip"),
    ([{"date": "2026-01-02", "chips": 0}], {}, "fleet[0].retirements[0].chips", "found 0"),
    ([], {"drain": "-1h"}, "fleet[0].drain", "found"),
])
def test_retirement_errors_are_located(base, tmp_path, retirements, pool_update, field, message):
    data = retiring(base)
    data["fleet"][0].update(retirements=retirements, **pool_update)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "r.yaml")
    text = str(info.value)
    assert "r.yaml:" in text and field in text and message in text


def test_a_retirement_may_not_take_chips_of_active_replicas(tmp_path):
    data = with_service(duration="3d")
    pool = data["fleet"][0]
    data["workloads"]["inference"][0]["replicas"][0]["count"] = 10  # 10 one-chip replicas
    pool.update(count=32, retirements=[{"date": "2026-01-02", "chips": 16}])
    scenario_from(data, tmp_path, "fine.yaml")  # 16 chips left hold the 10 replicas
    pool["retirements"] = [{"date": "2026-01-02", "chips": 24}]
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "r.yaml")
    text = str(info.value)
    assert "r.yaml:" in text and "fleet[0].retirements[0].chips" in text
    assert "replica group workloads.inference[0].replicas[0]" in text and "holds 10 chips" in text


def test_a_drain_longer_than_the_window_keeps_the_pool_closed(base, tmp_path):
    """The drain before online_until begins before the pool comes online: it never takes a job."""
    base["fleet"][1].update(online_from="2026-01-02", online_until="2026-01-03", drain="2d")
    base["workloads"]["training"]["generator"].update(jobs=100, arrival_rate_per_hour=10)
    results = sim.run(scenario_from(base, tmp_path))
    assert (results.jobs["pool"] != "tpu").all()
    base["fleet"][1]["drain"] = "12h"  # the drain begins while it is online: jobs run there before it
    jobs = sim.run(scenario_from(base, tmp_path, "half.yaml")).jobs
    on_tpu = jobs[jobs["pool"] == "tpu"]
    assert len(on_tpu) and (on_tpu["start_s"].dropna() < 1.5 * DAY).all()
