"""Deliveries joining a pool (``fleet[].deliveries``): one pool's chips grow at each delivery date, gangs span
domains of several deliveries, and everything that integrates online chips follows the step function."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted
from tests.test_inference import with_service

DAY = 86400.0


def delivered(base: dict, jobs: int = 40, chips=None) -> dict:
    """One H100 pool of 32 chips (domains of 8): 16 online at the start, 16 delivered on day 2 of the 3-day run."""
    base.update(duration="3d")
    base["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 32, "chips_per_server": 8,
                      "servers_per_rack": 2, "deliveries": [{"date": "2026-01-02", "chips": 16}]}]
    base["workloads"]["training"]["generator"].update(
        jobs=jobs, arrival_rate_per_hour=4, stacks={"cuda": 1.0}, chips=chips or {8: 0.5, 24: 0.5},
        duration_s={"lognormal": {"median": 3 * 3600, "sigma": 0.3}})
    return base


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    import copy

    from tests.conftest import BASE

    data = delivered(copy.deepcopy(BASE))
    scenario = scenario_from(data, tmp_path_factory.mktemp("deliveries"))
    return scenario, sim.run(scenario)


def test_a_gang_spans_chips_of_two_deliveries(result):
    _, results = result
    jobs = results.jobs
    big = jobs[jobs["chips"] == 24]
    assert len(big) > 0 and (big.loc[~big["start_s"].isna(), "pool"] == "gpu").all()
    assert (big["start_s"].dropna() >= DAY).all()  # 24 chips exist only once the second delivery is in
    assert (big["state"] == "completed").sum() > 0  # and then such a gang runs on old and new domains
    assert (big["state"] != "rejected").all()  # the pool can hold it once all chips are in: not rejected
    small = jobs[jobs["chips"] == 8]
    assert (small["start_s"].dropna() < DAY).any()
    assert_accounted(results)


def test_no_chip_is_used_before_its_delivery(result):
    _, results = result
    jobs = results.jobs
    started = jobs[~jobs["start_s"].isna()]
    times = np.concatenate((started["start_s"], started["end_s"].fillna(np.inf)))
    deltas = np.concatenate((started["chips"], -started["chips"]))
    order = np.lexsort((deltas, times))
    held = np.cumsum(deltas[order])
    at = times[order]
    assert held[at < DAY].max() <= 16
    assert held.max() > 16  # the delivered chips are used afterwards
    series = results.timeseries
    before = series["time_s"].to_numpy() < DAY
    assert (series.loc[before, "busy_chips.h100-sxm"] <= 16 + 1e-9).all()


def test_chip_counts_add_up(result):
    scenario, _ = result
    pool = build_fleet(scenario, builtin_catalog()).pools[0]
    assert pool.initial_chips == 16 and pool.deliveries == ((DAY, 16),)
    assert pool.chip_steps(3 * DAY) == ([0.0, DAY, 3 * DAY], [16, 32, 0])
    assert pool.chip_events(3 * DAY) == ([0.0, DAY, 3 * DAY], [16, 16, -32])
    assert pool.online_chip_seconds(0.0, 3 * DAY) == 16 * DAY + 32 * 2 * DAY
    assert pool.online_chip_seconds(DAY / 2, 1.5 * DAY) == 16 * DAY / 2 + 32 * DAY / 2
    assert pool.count == pool.initial_chips + sum(chips for _, chips in pool.deliveries)


def test_utilization_energy_cost_and_ledger_follow_the_deliveries(result):
    scenario, results = result
    pool = build_fleet(scenario, builtin_catalog()).pools[0]
    summary, series = results.summary, results.timeseries
    chip_s = 16 * DAY + 32 * 2 * DAY  # 16 chips for a day, then 32 for two
    widths = np.diff(np.append(series["time_s"].to_numpy(), 3 * DAY))
    busy_s = float((series["busy_chips.h100-sxm"].to_numpy() * widths).sum())
    assert summary["utilization_by_accelerator"]["h100-sxm"] == pytest.approx(busy_s / chip_s, rel=1e-12)
    it_j = chip_s * pool.idle_w_with_server + busy_s * (pool.busy_w_with_server - pool.idle_w_with_server)
    assert summary["it_energy_kwh"] == pytest.approx(it_j / 3.6e6, rel=1e-9)
    assert summary["fleet_cost_usd"] == pytest.approx(
        chip_s / 3600.0 * (pool.chip_cost_usd_per_hour + pool.hardware_usd_per_chip_hour), rel=1e-12)
    entries = results.ledger.entries
    capex = entries[(entries["category"] == "capex") & (entries["item"] == "chips")]
    price = pool.purchase_usd_per_chip
    assert capex["time_s"].tolist() == [0.0, DAY]  # each delivery bought at its date
    assert capex["usd"].to_numpy() == pytest.approx([16 * price, 16 * price], rel=1e-12)
    assert results.ledger.cost_usd("depreciation") + results.ledger.cost_usd("maintenance") == pytest.approx(
        summary["fleet_cost_usd"], rel=1e-12)
    assert results.ledger.online_chip_s["gpu"].sum() == pytest.approx(chip_s, rel=1e-12)
    assert results.monthly["online_chips.h100-sxm"].iloc[0] == pytest.approx(chip_s / (3 * DAY), rel=1e-12)


def scenario_amortization_h(results) -> float:
    return results.fleet.site.amortization_years * 365 * 24 if hasattr(results, "fleet") else 4 * 365 * 24


def test_each_delivery_is_bought_at_its_date(base, tmp_path):
    data = delivered(base, jobs=10, chips={8: 1.0})
    data["fleet"][0]["deliveries"] = [{"date": "2026-01-02", "chips": 8}, {"date": "2026-01-03", "chips": 8}]
    results = sim.run(scenario_from(data, tmp_path))
    entries = results.ledger.entries
    capex = entries[(entries["category"] == "capex") & (entries["item"] == "chips")]
    assert capex["time_s"].tolist() == [0.0, DAY, 2 * DAY]
    usd = capex["usd"].to_numpy()
    assert usd == pytest.approx([2 * usd[1], usd[1], usd[1]], rel=1e-12)  # 16, 8 and 8 chips
    pool = build_fleet(scenario_from(data, tmp_path), builtin_catalog()).pools[0]
    assert pool.chip_steps(3 * DAY)[1] == [16, 24, 32, 0]


def test_deliveries_change_no_figure_when_there_are_none(base, tmp_path):
    """A pool without deliveries: the same summary as before (the step function is one step)."""
    plain = sim.run(scenario_from(base, tmp_path))
    base["fleet"][0]["deliveries"] = []
    assert sim.run(scenario_from(base, tmp_path, "empty.yaml")).summary == plain.summary


@pytest.mark.parametrize("deliveries, pool_update, field, message", [
    ([{"date": "2026-01-01", "chips": 8}], {}, "fleet[0].deliveries[0].date",
     "found 2026-01-01: a delivery joins a pool already online; accepted: a date after 2026-01-01"),
    ([{"date": "2026-01-02", "chips": 8}], {"online_from": "2026-01-02"}, "fleet[0].deliveries[0].date",
     "found 2026-01-02: a delivery joins a pool already online; accepted: a date after 2026-01-02"),
    ([{"date": "2026-01-03", "chips": 8}, {"date": "2026-01-02", "chips": 8}], {}, "fleet[0].deliveries[1].date",
     "found 2026-01-02: deliveries must come in date order, one per date; accepted: a date after 2026-01-03"),
    ([{"date": "2026-01-04", "chips": 8}], {}, "fleet[0].deliveries[0].date",
     "found 2026-01-04: the chips would arrive at or after the end of the run (2026-01-04 00:00)"),
    ([{"date": "2026-01-03", "chips": 8}], {"online_until": "2026-01-03"}, "fleet[0].deliveries[0].date",
     "found 2026-01-03: the pool leaves on 2026-01-03; accepted: a date before it"),
    ([{"date": "2026-01-02", "chips": 24}, {"date": "2026-01-03", "chips": 16}], {}, "fleet[0].deliveries",
     "found 40 chips delivered in all, above the pool's count 32"),
    ([{"date": "2026-01-02", "chips": 12}], {}, "fleet[0].deliveries[0].chips",
     "found 12: a delivery joins the pool as whole scale-up domains of 8 chips in servers of 8; accepted: a "
     "multiple of 8, e.g. 8"),
    ([{"date": "2026-01-02", "chips": 0}], {}, "fleet[0].deliveries[0].chips", "found 0"),
])
def test_delivery_errors_are_located(base, tmp_path, deliveries, pool_update, field, message):
    data = delivered(base)
    data["fleet"][0].update(deliveries=deliveries, **pool_update)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "d.yaml")
    text = str(info.value)
    assert "d.yaml:" in text and field in text and message in text


def test_delivery_errors_are_reported_together(base, tmp_path):
    data = delivered(base)
    data["fleet"][0]["deliveries"] = [{"date": "2026-01-01", "chips": 12}, {"date": "2026-01-09", "chips": 8}]
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "d.yaml")
    text = str(info.value)
    assert "fleet[0].deliveries[0].date" in text and "fleet[0].deliveries[0].chips" in text
    assert "fleet[0].deliveries[1].date" in text


def test_replicas_must_fit_in_the_chips_there_from_the_start(tmp_path):
    data = with_service(duration="3d")
    pool = data["fleet"][0]
    data["workloads"]["inference"][0]["replicas"][0]["count"] = 10  # 10 one-chip replicas
    pool.update(count=24, deliveries=[{"date": "2026-01-02", "chips": 8}])
    scenario_from(data, tmp_path, "fine.yaml")  # the replicas fit in the 16 first chips
    pool["deliveries"] = [{"date": "2026-01-02", "chips": 16}]
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "r.yaml")
    text = str(info.value)
    assert "r.yaml:" in text and "workloads.inference[0].replicas[0].count" in text
    assert "serving does not follow capacity yet" in text and "has 8 chips before its later deliveries" in text


@pytest.mark.parametrize("scheduler", [{"kind": "fifo"}, {"kind": "fifo-backfill"},
                                       {"kind": "hetero-aware", "objective": "earliest-finish"},
                                       {"kind": "hetero-aware", "objective": "cheapest"}])
def test_every_scheduler_waits_for_the_delivery(base, tmp_path, scheduler):
    data = delivered(base, jobs=30)
    data["policy"]["scheduler"] = scheduler
    jobs = sim.run(scenario_from(data, tmp_path)).jobs
    big = jobs[jobs["chips"] == 24]
    assert (big["start_s"].dropna() >= DAY).all() and (big["state"] == "completed").any()


def test_a_shared_pool_grows_with_its_deliveries(tmp_path):
    """Replicas fit in the first chips of a shared pool; training gets the delivered chips, and the shared-pool
    plot draws the pool size as delivered."""
    import matplotlib.pyplot as plt

    from sim.results.plots import figures
    from tests.test_plots import stairs
    from tests.test_shared_pools import shared_scenario

    data = shared_scenario(gpu_chips=32, jobs=6, chips=16, count=2)
    data["fleet"][0]["deliveries"] = [{"date": "2026-01-02", "chips": 16}]
    results = sim.run(scenario_from(data, tmp_path))
    jobs = results.jobs
    assert (jobs["start_s"].dropna() >= DAY).all() and (jobs["state"] != "rejected").all()
    assert (jobs["state"] != "queued").any()
    ts = results.timeseries
    held = ts["inference_chips.gpu"] + ts["training_busy_chips.gpu"]
    assert (held[ts["time_s"] < DAY] <= 16 + 1e-9).all()
    fig = figures(results)["shared_pool.png"]
    try:
        size = stairs(fig.axes[0])[2].get_data().values
        assert set(size) == {16.0, 32.0} and size[0] == 16.0 and size[-1] == 32.0
    finally:
        plt.close("all")


def test_peak_power_counts_only_delivered_chips(base, tmp_path):
    """One 16-chip job on the first 16 chips, ending before the delivery: the peak is those 16 chips busy,
    with no idle power of the 16 chips still to come."""
    data = delivered(base, jobs=1, chips={16: 1.0})
    scenario = scenario_from(data, tmp_path)
    results = sim.run(scenario)
    job = results.jobs.iloc[0]
    assert job["state"] == "completed" and job["end_s"] < DAY
    pool = build_fleet(scenario, builtin_catalog()).pools[0]
    assert results.summary["peak_it_power_kw"] == pytest.approx(16 * pool.busy_w_with_server / 1e3, rel=1e-12)
