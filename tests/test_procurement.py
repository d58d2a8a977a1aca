"""Procurement orders, supply shocks and price schedules (``procurement:``, ``supply:``): orders resolve into
dated deliveries of their pool (lead time, installation batches, burn-in), shocks delay, cut or raise the price of
the orders they hit, and everything downstream (allocation, ledger, results) sees only what arrived."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.fleet.build import scenario_orders
from sim.fleet.procurement import WEEK_S, PoolLayout, resolve_orders
from sim.rng import streams
from sim.scenario.procurement_schema import Order, Shock
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted

DAY = 86400.0
CATALOG = builtin_catalog()


def ordered(base: dict, jobs: int = 40, gangs=None, **order) -> dict:
    """One H100 pool of 16 chips (domains and servers of 8, racks of 16 chips) and an order of 16 more placed at
    the start with a fixed lead time of 3 days, in a 10-day run of 8- and 24-chip training jobs."""
    base.update(duration="10d")
    base["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8,
                      "servers_per_rack": 2}]
    base["workloads"]["training"]["generator"].update(
        jobs=jobs, arrival_rate_per_hour=1, stacks={"cuda": 1.0}, chips=gangs or {8: 0.5, 24: 0.5},
        duration_s={"lognormal": {"median": 3 * 3600, "sigma": 0.3}})
    base["procurement"] = {"orders": [{"pool": "gpu", "chips": 16, "order_date": "2026-01-01",
                                       "lead_time": {"fixed": "3d"}, **order}]}
    return base


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    import copy

    from tests.conftest import BASE

    scenario = scenario_from(ordered(copy.deepcopy(BASE)), tmp_path_factory.mktemp("orders"))
    return scenario, sim.run(scenario)


def test_no_capacity_before_the_order_arrives(result):
    _, results = result
    series = results.timeseries
    before = series["time_s"].to_numpy() < 3 * DAY
    assert (series.loc[before, "online_chips.h100-sxm"] == 16).all()
    assert (series.loc[~before, "online_chips.h100-sxm"] == 32).all()
    assert (series.loc[before, "busy_chips.h100-sxm"] <= 16 + 1e-9).all()
    assert series.loc[~before, "busy_chips.h100-sxm"].max() > 16  # the ordered chips are used once there


def test_a_gang_spans_chips_of_the_pool_and_of_an_order(result):
    _, results = result
    jobs = results.jobs
    big = jobs[jobs["chips"] == 24]
    assert len(big) > 0 and (big["start_s"].dropna() >= 3 * DAY).all()  # 24 chips exist only with the order
    assert (big["state"] == "completed").sum() > 0 and (big["state"] != "rejected").all()
    assert_accounted(results)


def test_results_report_each_order(result, tmp_path):
    scenario, results = result
    assert results.summary["procurement"] == {"orders": 1, "chips_ordered": 16, "chips_delivered": 16,
                                              "chips_after_run": 0, "shortfall_chips": 0,
                                              "capex_usd": 16 * CATALOG.accelerators["h100-sxm"].price_usd}
    results.save(tmp_path / "out", plots=False)
    table = pd.read_csv(tmp_path / "out" / "procurement.csv", keep_default_na=False)
    row = table.iloc[0]
    assert len(table) == 1 and row["pool"] == "gpu" and row["chips_delivered"] == 16
    assert row["lead_time_days"] == 3.0 and row["first_delivery"] == row["last_delivery"] == "2026-01-04"
    assert row["shocks"] == ""


def test_capacity_plot_marks_each_orders_first_delivery(result):
    from sim.results.plots import _pool_changes

    scenario, results = result
    assert _pool_changes(scenario, 10 * DAY, results.procurement) == [(3 * DAY, "+16 gpu (order)")]
    assert _pool_changes(scenario, 10 * DAY) == []


def test_capex_equals_delivered_chips_times_unit_price(base, tmp_path):
    """Two orders at their own prices (one given, one from the price schedule at its order date); the ledger
    buys each delivered batch at its order's price, and nothing of a batch after the run."""
    data = ordered(base, jobs=5, gangs={8: 1.0}, unit_price_usd=1000.0, install_racks_per_week=0.5)
    data["procurement"]["orders"].append({"pool": "gpu", "chips": 32, "order_date": "2026-01-02",
                                          "lead_time": {"fixed": "1d"}, "install_racks_per_week": 1})
    data["procurement"]["price_schedule"] = [{"accelerator": "h100-sxm", "date": "2025-06-01", "usd_per_chip": 7e3},
                                             {"accelerator": "h100-sxm", "date": "2026-01-02", "usd_per_chip": 5e3},
                                             {"accelerator": "h100-sxm", "date": "2026-01-03", "usd_per_chip": 9e3}]
    results = sim.run(scenario_from(data, tmp_path))
    entries = results.ledger.entries
    capex = entries[(entries["category"] == "capex") & (entries["item"] == "chips")]  # servers and racks apart
    pool_price = CATALOG.accelerators["h100-sxm"].price_usd
    # first 16 chips at the catalog price; order 0: 8 chips on days 3 and 10 at 1000; order 1: 16 chips on day 2
    # at 5000 (the schedule on its order date), the second 16 on day 9
    assert capex["time_s"].tolist() == [0.0, 2 * DAY, 3 * DAY, 9 * DAY]
    assert capex["usd"].to_numpy() == pytest.approx([16 * pool_price, 16 * 5e3, 8 * 1e3, 16 * 5e3])
    assert results.summary["procurement"]["capex_usd"] == pytest.approx(8 * 1e3 + 32 * 5e3)
    assert results.summary["procurement"]["chips_after_run"] == 8  # order 0's second batch: day 10, the end
    assert results.summary["money"]["capex_by_item_usd"]["chips"] == pytest.approx(capex["usd"].sum())


def test_a_fixed_delivery_is_priced_at_the_schedule_on_its_date(base, tmp_path):
    data = ordered(base, jobs=5, gangs={8: 1.0})
    data["fleet"][0].update(count=24, deliveries=[{"date": "2026-01-05", "chips": 8}])
    data["procurement"]["price_schedule"] = [{"accelerator": "h100-sxm", "date": "2026-01-04", "usd_per_chip": 2e3}]
    pool = build_fleet(scenario_from(data, tmp_path), CATALOG).pools[0]
    price = CATALOG.accelerators["h100-sxm"].price_usd
    # the order (placed before the schedule starts) at the catalog price; the fixed delivery at the schedule's
    assert pool.purchases() == [(0.0, 16, price), (3 * DAY, 16, price), (4 * DAY, 8, 2e3)]
    assert pool.count == 40 and pool.initial_chips == 16


def _layout(**change) -> dict[str, PoolLayout]:
    fields = dict(index=0, name="gpu", accelerator="h100-sxm", vendor="nvidia", owner="owned", unit_chips=8,
                  rack_chips=16, usd_per_chip=100.0, online_from_s=0.0, online_until_s=np.inf)
    return {"gpu": PoolLayout(**{**fields, **change})}


def _order(**change) -> Order:
    return Order(**{"pool": "gpu", "chips": 64, "order_date": dt.date(2026, 1, 1), "lead_time": {"fixed": "10d"},
                    **change})


def _resolve(orders, shocks=(), seed=0, horizon=365 * DAY, schedule=(), **layout):
    return resolve_orders(orders, shocks, schedule, dt.date(2026, 1, 1), horizon, _layout(**layout),
                          streams(seed)["supply"])


def test_installation_rate_spreads_batches_a_week_apart():
    (whole,) = _resolve([_order()])
    assert whole.batches == ((10 * DAY, 64),)
    (weekly,) = _resolve([_order(install_racks_per_week=1)])  # one rack of 16 chips a week
    assert weekly.batches == tuple((10 * DAY + k * WEEK_S, 16) for k in range(4))
    (half,) = _resolve([_order(install_racks_per_week=0.7)])  # 11.2 chips: rounded down to one domain of 8
    assert [chips for _, chips in half.batches] == [8] * 8 and half.batches[1][0] - half.batches[0][0] == WEEK_S
    (tiny,) = _resolve([_order(install_racks_per_week=0.01)])  # less than a domain: still one domain a week
    assert [chips for _, chips in tiny.batches] == [8] * 8


def test_burn_in_delays_each_batch_online():
    (plain,) = _resolve([_order(install_racks_per_week=2)])
    (burnt,) = _resolve([_order(install_racks_per_week=2, burn_in="3d")])
    assert [at + 3 * DAY for at, _ in plain.batches] == [at for at, _ in burnt.batches]
    assert [c for _, c in plain.batches] == [c for _, c in burnt.batches] == [32, 32]


def test_batches_after_the_horizon_or_before_the_pool_are_not_delivered_then():
    (late,) = _resolve([_order(install_racks_per_week=1)], horizon=10 * DAY + WEEK_S + 1)
    assert late.batches == ((10 * DAY, 16), (10 * DAY + WEEK_S, 16)) and late.delivered_chips == 32
    (early,) = _resolve([_order()], online_from_s=20 * DAY)  # arrived before the pool is online: joins it then
    assert early.batches == ((20 * DAY, 64),)
    (gone,) = _resolve([_order()], online_until_s=5 * DAY)
    assert gone.batches == () and gone.shortfall_chips == 0


def test_same_seed_same_deliveries_different_seed_different():
    orders = [_order(lead_time={"lognormal": {"median": "30d", "sigma": 0.5}}),
              _order(lead_time={"empirical": ["20d", "40d", "60d", "80d"]}, install_racks_per_week=1)]
    first, again, other = _resolve(orders, seed=3), _resolve(orders, seed=3), _resolve(orders, seed=4)
    assert first == again
    assert [o.batches for o in first] != [o.batches for o in other]
    assert first[1].lead_time_s / DAY in (20, 40, 60, 80)


def test_validation_and_the_run_draw_the_same_lead_times(base, tmp_path):
    data = ordered(base, jobs=5, gangs={8: 1.0}, lead_time={"lognormal": {"median": "3d", "sigma": 0.5}})
    scenario = scenario_from(data, tmp_path)  # validation resolved the pools with its own fresh stream
    run_fleet = build_fleet(scenario, CATALOG, streams(scenario.seed)["supply"])
    assert scenario_orders(scenario, CATALOG) == run_fleet.orders
    results = sim.run(scenario)
    assert results.procurement["lead_time_days"].iloc[0] == pytest.approx(run_fleet.orders[0].lead_time_s / DAY)
    assert build_fleet(scenario.with_overrides({"seed": 2}), CATALOG).orders != run_fleet.orders


def test_deliveries_never_exceed_orders():
    """Random lead times, shocks and installation rates: per order, chips online in the run + chips arriving
    after it + the shortfall = chips ordered, and no batch is larger than what is left."""
    rng = np.random.default_rng(7)
    for seed in range(40):
        orders = [_order(chips=int(8 * rng.integers(1, 40)), order_date=dt.date(2026, 1, 1 + int(rng.integers(28))),
                         lead_time={"lognormal": {"median": f"{rng.integers(5, 200)}d", "sigma": 0.8}},
                         install_racks_per_week=float(rng.uniform(0.1, 3))) for _ in range(5)]
        shocks = [Shock(vendor="nvidia", window={"start": "2026-02-01", "end": "2026-06-30"},
                        delivery_factor=float(rng.uniform()), extra_delay=f"{rng.integers(0, 100)}d")]
        for o in _resolve(orders, shocks, seed=seed, horizon=float(rng.uniform(30, 400)) * DAY):
            after = o.arriving_chips - o.delivered_chips
            assert 0 <= o.delivered_chips <= o.arriving_chips <= o.chips and after >= 0
            assert o.delivered_chips + after + o.shortfall_chips == o.chips
            assert all(chips > 0 and chips % 8 == 0 for _, chips in o.batches)


def test_shocks_hit_only_the_orders_they_name_and_whose_arrival_falls_in_the_window():
    window = {"start": "2026-01-05", "end": "2026-01-15"}
    shock = Shock(vendor="nvidia", window=window, delivery_factor=0.6, extra_delay="30d", price_factor=1.5)
    hit, late, early_order = _resolve(
        [_order(),  # arrives on day 10: in the window; ordered on day 0, before the window: no price factor
         _order(lead_time={"fixed": "20d"}),  # arrives after the window: untouched
         _order(order_date=dt.date(2026, 1, 6), lead_time={"fixed": "60d"})],  # placed in the window: pays more
        [shock])
    assert hit.arrival_s == 40 * DAY and hit.arriving_chips == 32 and hit.shortfall_chips == 32  # 38.4 -> 32
    assert hit.unit_usd == 100.0 and hit.shocks == (0,)
    assert late.arrival_s == 20 * DAY and late.arriving_chips == 64 and late.shocks == ()
    assert early_order.unit_usd == 150.0 and early_order.arrival_s == 65 * DAY and early_order.shocks == (0,)
    other = Shock(accelerator="tpu-v7", window=window, delivery_factor=0.0, extra_delay="30d", price_factor=2)
    (untouched,) = _resolve([_order()], [other])
    assert untouched.arrival_s == 10 * DAY and untouched.arriving_chips == 64 and untouched.unit_usd == 100.0
    (gone,) = _resolve([_order()], [Shock(accelerator="h100-sxm", window=window, delivery_factor=0.0)])
    assert gone.batches == () and gone.shortfall_chips == 64


def test_a_shock_in_a_run_cuts_the_pool_and_the_capex(base, tmp_path):
    data = ordered(base, jobs=5, gangs={8: 1.0}, unit_price_usd=1000.0)
    data["procurement"]["orders"][0]["chips"] = 32
    data["supply"] = {"shocks": [{"vendor": "nvidia", "window": {"start": "2026-01-02", "end": "2026-01-04"},
                                  "delivery_factor": 0.5, "extra_delay": "2d", "price_factor": 3}]}
    results = sim.run(scenario_from(data, tmp_path))
    series = results.timeseries
    assert (series.loc[series["time_s"] < 5 * DAY, "online_chips.h100-sxm"] == 16).all()
    assert (series.loc[series["time_s"] >= 5 * DAY, "online_chips.h100-sxm"] == 32).all()
    assert results.summary["procurement"] == {"orders": 1, "chips_ordered": 32, "chips_delivered": 16,
                                              "chips_after_run": 0, "shortfall_chips": 16, "capex_usd": 16e3}
    assert results.procurement["shocks"].iloc[0] == "supply.shocks[0] nvidia"


def test_no_orders_change_nothing(base, tmp_path):
    plain = sim.run(scenario_from(base, tmp_path))
    base["procurement"] = {"orders": []}
    base["supply"] = {"shocks": [{"vendor": "nvidia", "window": {"start": "2026-01-01", "end": "2026-01-02"},
                                  "delivery_factor": 0.0}]}
    again = sim.run(scenario_from(base, tmp_path, "empty.yaml"))
    assert again.summary == plain.summary and again.procurement is None and "procurement" not in again.summary


@pytest.mark.parametrize("change, field, message", [
    ({"lead_time": {"fixed": 0}}, "procurement.orders[0].lead_time.fixed", "found 0; accepted: above 0"),
    ({"lead_time": {"lognormal": {"median": "0d", "sigma": 1}}}, "procurement.orders[0].lead_time.lognormal.median",
     "accepted: above 0"),
    ({"lead_time": {"empirical": ["3d", "0d"]}}, "procurement.orders[0].lead_time",
     "found a lead time of 0 s; accepted: lead times above 0"),
    ({"lead_time": {"fixed": "-3d"}}, "procurement.orders[0].lead_time.fixed", "cannot read duration"),
    ({"install_racks_per_week": 0}, "procurement.orders[0].install_racks_per_week", "found 0; accepted: above 0"),
    ({"pool": "gpus"}, "procurement.orders[0].pool", "unknown pool 'gpus' (did you mean 'gpu'?)"),
    ({"pool": "cloud"}, "procurement.orders[0].pool", "pool 'cloud' is rented: orders buy chips for an owned pool"),
    ({"chips": 12}, "procurement.orders[0].chips",
     "found 12: an order joins pool 'gpu' as whole scale-up domains and servers of 8 chips; accepted: a multiple "
     "of 8, e.g. 8"),
    ({"order_date": "2025-12-31"}, "procurement.orders[0].order_date",
     "found 2025-12-31: orders are placed inside the run; accepted: a date from 2026-01-01 to before 2026-01-11"),
    ({"order_date": "2026-01-11"}, "procurement.orders[0].order_date", "found 2026-01-11"),
])
def test_order_errors_are_located(base, tmp_path, change, field, message):
    data = ordered(base, **change)
    data["fleet"].append({"name": "cloud", "accelerator": "tpu-v6e", "count": 8, "owner": "rented"})
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "o.yaml")
    text = str(info.value)
    assert "o.yaml:" in text and field in text and message in text, text


@pytest.mark.parametrize("shock, field, message", [
    ({"vendor": "nvidai"}, "supply.shocks[0].vendor", "unknown vendor 'nvidai' (did you mean 'nvidia'?)"),
    ({"accelerator": "h100"}, "supply.shocks[0].accelerator", "unknown accelerator 'h100'"),
    ({"vendor": "nvidia", "accelerator": "h100-sxm"}, "supply.shocks[0]",
     "give exactly one of vendor, accelerator (found vendor, accelerator)"),
    ({"vendor": "nvidia", "window": {"start": "2026-01-05", "end": "2026-01-04"}}, "supply.shocks[0].window",
     "the window ends (2026-01-04) before it starts (2026-01-05)"),
    ({"vendor": "nvidia", "delivery_factor": 1.5}, "supply.shocks[0].delivery_factor", "found 1.5; accepted: 0 to 1"),
    ({"vendor": "nvidia", "delivery_factor": -0.1}, "supply.shocks[0].delivery_factor", "accepted: 0 to 1"),
    ({"vendor": "nvidia", "price_factor": 0}, "supply.shocks[0].price_factor", "found 0; accepted: above 0"),
])
def test_shock_errors_are_located(base, tmp_path, shock, field, message):
    data = ordered(base)
    data["supply"] = {"shocks": [{"window": {"start": "2026-01-02", "end": "2026-01-04"}, **shock}]}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "s.yaml")
    text = str(info.value)
    assert "s.yaml:" in text and field in text and message in text, text


def test_price_schedule_errors_are_located(base, tmp_path):
    data = ordered(base)
    data["procurement"]["price_schedule"] = [
        {"accelerator": "h100-sxm", "date": "2026-03-01", "usd_per_chip": 1},
        {"accelerator": "tpu-v7", "date": "2026-01-01", "usd_per_chip": 1},
        {"accelerator": "h100-sxm", "date": "2026-02-01", "usd_per_chip": 1},
        {"accelerator": "h100-sxn", "date": "2026-02-01", "usd_per_chip": 1}]
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "p.yaml")
    text = str(info.value)
    assert "procurement.price_schedule[2].date" in text
    assert "found 2026-02-01: the points of h100-sxm must come in date order, one per date; accepted: a date after " \
           "2026-03-01" in text
    assert "procurement.price_schedule[3].accelerator" in text and "did you mean 'h100-sxm'?" in text
    assert "price_schedule[1]" not in text


def test_bad_inputs_are_reported_together_with_exit_2(base, tmp_path, capsys):
    from sim.cli import main

    data = ordered(base, lead_time={"fixed": 0}, install_racks_per_week=0, pool="nope")
    data["supply"] = {"shocks": [{"vendor": "acme", "window": {"start": "2026-01-02", "end": "2026-01-01"}},
                                 {"vendor": "nvidia", "window": {"start": "2026-01-02", "end": "2026-01-04"},
                                  "delivery_factor": 2, "price_factor": -1}]}
    path = tmp_path / "bad.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    for field in ("procurement.orders[0].lead_time.fixed", "procurement.orders[0].install_racks_per_week",
                  "supply.shocks[0].window", "supply.shocks[1].delivery_factor", "supply.shocks[1].price_factor"):
        assert field in text, text
    assert "Traceback" not in text
