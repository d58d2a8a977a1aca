"""Money beyond the chips: servers, racks with their network and installation are bought with each purchase
tranche and depreciated with it, cash accounting expenses a purchase on its date, energy is split by pool,
and each inference service's cost per 1M tokens (or requests) per month adds up to its summary figure."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import numpy as np
import pytest

import sim
from sim.fleet import ResolvedSite
from sim.fleet.build import HOURS_PER_YEAR
from sim.money import build_ledger
from sim.money.ledger import CAPEX_ITEMS
from tests.conftest import BASE, scenario_from
from tests.test_inference import SERVICE
from tests.test_money import DAY, _pool
from tests.test_ranking import SERVICE as RANKING

SITE = ResolvedSite(power_cap_w=None, pue=1.25, electricity_usd_per_kwh=0.1, carbon_g_per_kwh=400.0,
                    cooling_kw_per_rack={"air": 40.0, "liquid": 150.0}, server_power_overhead_frac=0.0,
                    amortization_years=4.0, maintenance_frac_per_year=0.05, server_usd=100_000.0,
                    rack_usd=150_000.0, installation_usd_per_rack=20_000.0)
LIFE_S = SITE.amortization_years * HOURS_PER_YEAR * 3600.0


def _rows(ledger, category: str):
    return ledger.entries[ledger.entries["category"] == category]


def test_each_tranche_buys_its_servers_racks_and_installation_pro_rata():
    """48 chips at 8 per server, 4 servers per rack: 6 servers and 1.5 racks (a fractional rack), then a
    delivery of 8 chips at its own price: 1 server and a quarter rack."""
    pool = _pool("own", count=56, deliveries=((10 * DAY, 8),), delivery_usd_per_chip=(5000.0,))
    price = pool.purchase_usd_per_chip
    ledger = build_ledger([pool], SITE, dt.date(2026, 1, 1), 30 * DAY, np.array([0.0, 30 * DAY]), np.zeros(1))
    capex = _rows(ledger, "capex")
    first, second = capex[capex["time_s"] == 0.0], capex[capex["time_s"] == 10 * DAY]
    assert dict(zip(first["item"], first["usd"])) == pytest.approx(
        {"chips": 48 * price, "servers": 6 * 100_000.0, "racks_network": 1.5 * 150_000.0,
         "installation": 1.5 * 20_000.0})
    assert dict(zip(second["item"], second["usd"])) == pytest.approx(
        {"chips": 8 * 5000.0, "servers": 100_000.0, "racks_network": 0.25 * 150_000.0,
         "installation": 0.25 * 20_000.0})
    # every item is depreciated with its tranche, at the tranche's hardware value
    hardware = [first["usd"].sum() / 48, second["usd"].sum() / 8]
    depreciation = _rows(ledger, "depreciation")["usd"].sum()
    assert depreciation == pytest.approx((48 * 30 * hardware[0] + 8 * 20 * hardware[1]) * DAY / LIFE_S, rel=1e-12)
    # maintenance stays on the chips' price only
    assert _rows(ledger, "maintenance")["usd"].sum() == pytest.approx(
        (48 * 30 * price + 8 * 20 * 5000.0) * DAY * 0.05 / (HOURS_PER_YEAR * 3600.0), rel=1e-12)


def test_a_leaving_pool_writes_off_its_whole_hardware():
    pool = _pool("own", count=32, online_until_s=40 * DAY)
    ledger = build_ledger([pool], SITE, dt.date(2026, 1, 1), 60 * DAY, np.array([0.0, 60 * DAY]), np.zeros(1))
    bought = _rows(ledger, "capex")["usd"].sum()
    assert bought == pytest.approx(32 * pool.purchase_usd_per_chip + 4 * 100_000.0 + 170_000.0)
    assert _rows(ledger, "depreciation")["usd"].sum() + _rows(ledger, "write_off")["usd"].sum() == pytest.approx(
        bought, rel=1e-12)


def test_cash_accounting_expenses_the_purchase_on_its_date_and_depreciates_nothing():
    cash = dataclasses.replace(SITE, capex_accounting="cash")
    pool = _pool("own", count=32, online_from_s=40 * DAY, online_until_s=50 * DAY)
    ledger = build_ledger([pool], cash, dt.date(2026, 1, 1), 60 * DAY, np.array([0.0, 60 * DAY]), np.zeros(1))
    capex, cost = _rows(ledger, "capex"), _rows(ledger, "capex_cash_cost")
    assert cost["usd"].sum() == pytest.approx(capex["usd"].sum()) and capex["usd"].sum() > 0
    assert set(cost["month"]) == {"2026-02"} and set(cost["time_s"]) == {40 * DAY}
    assert sorted(cost["item"]) == sorted(CAPEX_ITEMS)
    assert _rows(ledger, "depreciation").empty and _rows(ledger, "write_off").empty  # it leaves: nothing to write off
    assert _rows(ledger, "maintenance")["usd"].sum() > 0
    assert ledger.by_month()["capex_cash_cost"].tolist() == pytest.approx([0.0, capex["usd"].sum(), 0.0])


def test_energy_is_split_by_the_pools_it_power_and_adds_up_to_the_site_energy():
    rng = np.random.default_rng(5)
    bins = np.append(np.arange(0.0, 40 * DAY, 5 * 3600.0), 40 * DAY)  # some bins straddle 1 February
    it_kw = {"own": rng.uniform(50.0, 400.0, len(bins) - 1), "rent": rng.uniform(0.0, 300.0, len(bins) - 1)}
    it_kw["rent"][:20] = 0.0  # not yet online
    facility = (it_kw["own"] + it_kw["rent"]) * SITE.pue
    pools = [_pool("own"), _pool("rent", owner="rented", rate=3.0)]
    ledger = build_ledger(pools, SITE, dt.date(2026, 1, 20), 40 * DAY, bins, facility, it_kw)
    energy = _rows(ledger, "energy")
    exact_kwh = float((facility * np.diff(bins)).sum() / 3600.0)
    assert energy["kwh"].sum() == pytest.approx(exact_kwh, rel=1e-13)
    assert ledger.cost_usd("energy") == pytest.approx(exact_kwh * SITE.electricity_usd_per_kwh, rel=1e-13)
    assert set(energy["pool"]) == {"own", "rent"}  # every kWh belongs to a pool
    for name in ("own", "rent"):
        mine = energy[energy["pool"] == name]
        assert mine["kwh"].sum() == pytest.approx(float((it_kw[name] * SITE.pue * np.diff(bins)).sum() / 3600.0),
                                                  rel=1e-12)
    assert set(energy.loc[energy["pool"] == "rent", "ownership"]) == {"rented"}
    by_pool = ledger.by_month("pool")
    assert by_pool.to_numpy().sum() == pytest.approx(ledger.cost_usd(), rel=1e-12)  # chip costs and energy
    # without per-pool power, the energy stays the site's (one row per bin, no pool)
    plain = _rows(build_ledger(pools, SITE, dt.date(2026, 1, 20), 40 * DAY, bins, facility), "energy")
    assert set(plain["pool"]) == {""} and plain["usd"].sum() == pytest.approx(energy["usd"].sum(), rel=1e-13)


@pytest.fixture(scope="module")
def services_run(tmp_path_factory):
    """Two days across 1 February, 7 h bins (one straddles midnight): a fluid LLM service, a fluid ranking
    service on MTIA, an owned H100 pool and cash accounting."""
    data = copy.deepcopy(BASE)
    data.update(name="services", start="2026-01-31", duration="2d")
    data["site"]["capex_accounting"] = "cash"
    data["fleet"].append({"name": "mtia", "accelerator": "mtia-v2", "count": 24, "chips_per_server": 24,
                          "servers_per_rack": 1})
    data["workloads"]["training"]["generator"]["jobs"] = 10
    chat = {**copy.deepcopy(SERVICE), "fidelity": "fluid"}
    feed = {**copy.deepcopy(RANKING), "fidelity": "fluid"}
    data["workloads"]["inference"] = [chat, feed]
    data["outputs"] = {"timeseries_interval": "7h"}
    return sim.run(scenario_from(data, tmp_path_factory.mktemp("services")))


def test_monthly_cost_per_million_tokens_and_requests_reproduce_the_summary(services_run):
    monthly, inference = services_run.monthly, services_run.summary["inference"]
    for name, unit, count in (("chat", "tokens", "output_tokens"), ("feed", "requests", "completed_requests")):
        units = monthly[f"{count}.{name}"].to_numpy()
        per_million = monthly[f"cost_per_1m_{unit}_usd.{name}"].to_numpy()
        assert (units > 0).all() and (per_million > 0).all()
        assert (per_million * units).sum() / units.sum() == pytest.approx(
            inference[name][f"cost_per_1m_{unit}_usd"], rel=1e-12)
    assert monthly["output_tokens.chat"].sum() == pytest.approx(inference["chat"]["output_tokens"], rel=1e-12)


def test_cash_accounting_in_a_run_and_the_money_summary(services_run):
    money, summary = services_run.summary["money"], services_run.summary
    by = money["by_category_usd"]
    assert by["depreciation"] == 0 and by["write_off"] == 0
    assert money["capex_cash_usd"] > 0
    assert by["capex_cash_cost"] == pytest.approx(money["capex_cash_usd"], rel=1e-12)
    assert services_run.monthly["capex_cash_cost_usd"].tolist() == pytest.approx([money["capex_cash_usd"], 0.0])
    items = money["capex_by_item_usd"]
    assert sum(items.values()) == pytest.approx(money["capex_cash_usd"], rel=1e-12)
    assert items["servers"] == pytest.approx((2 + 2 + 1) * 100_000.0)  # 16 H100 + 16 TPU at 8, 24 MTIA at 24
    assert items["racks_network"] == pytest.approx((1 + 1 + 1) * 150_000.0)  # 2 + 2 + 1 servers per rack
    # the energy of each pool, in by_pool_usd with its chip costs, adds up to the site's
    energy_kwh = sum(services_run.monthly[f"energy_kwh.{p}"].sum() for p in ("gpu", "tpu", "mtia"))
    assert energy_kwh == pytest.approx(summary["facility_energy_kwh"], rel=1e-12)
    assert sum(money["by_pool_usd"].values()) == pytest.approx(money["total_cost_usd"], rel=1e-12)


def test_site_hardware_and_accounting_mistakes_are_located(tmp_path):
    data = copy.deepcopy(BASE)
    data["site"].update(capex_accounting="accrual", rack_usd=-1)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    problems = sorted(str(p) for p in info.value.problems)
    assert len(problems) == 2
    assert "site.capex_accounting: found 'accrual'" in problems[0] and "'depreciation' or 'cash'" in problems[0]
    assert "site.rack_usd: found -1; accepted: 0 to 100,000,000 USD" in problems[1]
