"""The money ledger and the results per calendar month: costs add up (months to the total, categories to each
month), the ledger agrees with ``fleet_cost_usd`` and ``energy_cost_usd``, rental stops when a pool leaves,
energy is Σ power·dt·price exactly, and months are calendar months (a run may start mid-month)."""

from __future__ import annotations

import copy
import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import ResolvedPool
from sim.money import COST_CATEGORIES, build_ledger, job_costs_usd, month_edges, monthly_table
from sim.money.ledger import HOURS_PER_YEAR
from tests.conftest import BASE, scenario_from
from tests.test_inference import SERVICE

DAY = 86400.0
CATALOG = builtin_catalog()
SITE = SimpleNamespace(pue=1.25, electricity_usd_per_kwh=0.1, carbon_g_per_kwh=400.0, amortization_years=4.0,
                       maintenance_frac_per_year=0.05)


def _pool(name, owner="owned", count=8, rate=2.0, online_from_s=0.0, **extra):
    """A resolved pool of ``count`` chips costing ``rate`` USD per chip-hour (amortized price or rental)."""
    price = rate * SITE.amortization_years * HOURS_PER_YEAR if owner == "owned" else None
    return ResolvedPool(index=0, name=name, accelerator=SimpleNamespace(id=f"chip-{name}", idle_w=100.0, tdp_w=1000.0),
                        count=count, chips_per_server=8, servers_per_rack=4, domain_chips=8, cooling="air",
                        online_from_s=online_from_s, owner=owner, multi_domain_gangs=True,
                        server_power_overhead_frac=0.0, chip_cost_usd_per_hour=rate, purchase_usd_per_chip=price,
                        **extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two days from 31 January (two calendar months, the first of one day), an owned pool and a rented one
    that leaves on 1 February, training jobs and a request-level LLM service with an SLO."""
    data = copy.deepcopy(BASE)
    data.update(name="money", start="2026-01-31", duration="2d")
    data["fleet"][1].update(owner="rented", online_until="2026-02-01")  # the rental ends after a day
    data["workloads"]["inference"] = [{**copy.deepcopy(SERVICE), "traffic": {"generator": {
        **SERVICE["traffic"]["generator"], "rate_per_s": 0.05}}}]
    data["outputs"] = {"timeseries_interval": "7h"}  # does not divide a day: a bin straddles 1 February
    return sim.run(scenario_from(data, tmp_path_factory.mktemp("money")))


def test_months_add_up_to_the_totals_and_categories_to_each_month(run):
    monthly, money = run.monthly, run.summary["money"]
    assert list(monthly["month"]) == ["2026-01", "2026-02"]
    assert monthly["days"].tolist() == pytest.approx([1.0, 1.0])
    categories = monthly[[f"{c}_usd" for c in COST_CATEGORIES]].to_numpy()
    assert (categories > 0).sum() == 7  # every category in both months, but rental only before the pool left
    assert categories.sum(axis=1) == pytest.approx(monthly["total_cost_usd"].to_numpy(), rel=1e-12)
    assert monthly["total_cost_usd"].sum() == pytest.approx(money["total_cost_usd"], rel=1e-12)
    for category in COST_CATEGORIES:
        assert monthly[f"{category}_usd"].sum() == pytest.approx(money["by_category_usd"][category], rel=1e-12)
    assert sum(money["by_ownership_usd"].values()) == pytest.approx(money["total_cost_usd"], rel=1e-12)  # energy too
    assert monthly["jobs_completed"].sum() == run.summary["jobs"]["completed"]
    assert monthly["facility_energy_kwh"].sum() == pytest.approx(run.summary["facility_energy_kwh"], rel=1e-12)
    assert monthly["carbon_kg"].sum() == pytest.approx(run.summary["carbon_kg"], rel=1e-12)
    assert monthly["online_chips.owned"].tolist() == pytest.approx([16.0, 16.0])
    assert monthly["online_chips.rented"].tolist() == pytest.approx([16.0, 0.0])
    assert monthly["rental_usd"].iloc[1] == 0 < monthly["rental_usd"].iloc[0]  # no rent once the pool left
    by_pool, by_owner = run.ledger.by_month("pool"), run.ledger.by_month("ownership")
    assert list(by_pool.columns) == ["gpu", "tpu"] and list(by_owner.columns) == ["owned", "rented"]
    assert by_pool.to_numpy().sum(axis=1) == pytest.approx(monthly["total_cost_usd"].to_numpy(), rel=1e-12)
    # the rented pool uses no energy once it left, but for its share of the 7 h bin across 1 February (21:00
    # to 04:00), which the months split by time
    series = run.timeseries
    pue = (series["facility_power_kw"] / series["it_power_kw"]).iloc[0]
    assert (series.loc[series["time_s"] >= 28 * 3600.0, "it_power_kw.tpu"] == 0).all()
    straddling_kw = series.loc[series["time_s"] == 21 * 3600.0, "it_power_kw.tpu"].iloc[0] * pue
    rented_energy_kwh = monthly["energy_kwh.tpu"].to_numpy()
    assert rented_energy_kwh[1] == pytest.approx(straddling_kw * 4, rel=1e-12)
    assert rented_energy_kwh[0] > 10 * rented_energy_kwh[1] > 0
    price = run.summary["energy_cost_usd"] / run.summary["facility_energy_kwh"]
    assert by_owner["rented"].tolist() == pytest.approx(list(monthly["rental_usd"] + rented_energy_kwh * price),
                                                        rel=1e-12)
    assert by_pool.sum().to_dict() == pytest.approx(money["by_pool_usd"], rel=1e-12)


def test_ledger_chip_costs_equal_fleet_cost_and_energy_equals_energy_cost(run):
    """With a rented pool leaving within the run: the ledger and ``fleet_cost_usd`` count the same window, and
    the owned chip-hour cost is depreciation (chips, servers, racks, installation) + maintenance."""
    money = run.summary["money"]
    by = money["by_category_usd"]
    assert by["rental"] > 0 and by["depreciation"] > 0 and by["maintenance"] > 0
    assert by["depreciation"] + by["maintenance"] + by["rental"] == pytest.approx(run.summary["fleet_cost_usd"],
                                                                                 rel=1e-12)
    assert by["energy"] == pytest.approx(run.summary["energy_cost_usd"], rel=1e-12)
    rented = money["by_pool_usd"]["tpu"]
    tpu_energy = run.ledger.entries.query("category == 'energy' and pool == 'tpu'")["usd"].sum()
    assert 0 < tpu_energy < by["energy"] and rented == pytest.approx(by["rental"] + tpu_energy, rel=1e-12)
    # maintenance: 5 % a year of the chips' price, which depreciation spreads over 4 years with the rest
    defaults = CATALOG.site_defaults
    items = money["capex_by_item_usd"]
    chips_share = items["chips"] / sum(items.values())
    assert 0 < chips_share < 1
    assert by["maintenance"] == pytest.approx(by["depreciation"] * chips_share * defaults["maintenance_frac_per_year"]
                                              * defaults["amortization_years"], rel=1e-12)


def test_slo_and_goodput_per_month_match_the_service_summary(run):
    chat, monthly = run.summary["inference"]["chat"], run.monthly
    seconds = monthly["days"].to_numpy() * DAY
    assert (monthly["goodput_rps.chat"] * seconds).sum() / run.summary["horizon_s"] == pytest.approx(
        chat["goodput_rps"], rel=1e-12)
    requests = run.requests[run.requests["arrival_s"] < DAY]
    offered = (requests["state"] != "not-offered").sum()
    assert 0 < monthly["slo_attainment.chat"].iloc[0] <= 1
    assert monthly["slo_attainment.chat"].iloc[0] * offered == pytest.approx(
        monthly["goodput_rps.chat"].iloc[0] * DAY, rel=1e-12)


def test_request_level_cost_per_million_tokens_per_month_reproduces_the_summary(run):
    """Tokens of completed requests in the month of their finish; the months weighted by tokens give the total."""
    monthly, chat = run.monthly, run.summary["inference"]["chat"]
    tokens, per_million = monthly["output_tokens.chat"].to_numpy(), monthly["cost_per_1m_tokens_usd.chat"].to_numpy()
    assert tokens.sum() == chat["output_tokens"] and (tokens > 0).all()
    assert (per_million * tokens).sum() / tokens.sum() == pytest.approx(chat["cost_per_1m_tokens_usd"], rel=1e-12)


def test_monthly_csv_and_cost_plot_by_run_length(run, tmp_path):
    out = run.save(tmp_path / "out", plots=True)
    written = pd.read_csv(out / "monthly.csv")
    assert list(written.columns) == list(run.monthly.columns)
    assert not (out / "cost.png").exists()  # two days: no cost plot
    assert "money" in run.summary and "money" in (out / "summary.json").read_text()


def test_cost_plot_for_a_run_of_months(tmp_path):
    data = copy.deepcopy(BASE)
    data.update(name="long", duration="70d")
    data["workloads"]["training"]["generator"]["jobs"] = 5
    data["outputs"] = {"timeseries_interval": "1d"}
    results = sim.run(scenario_from(data, tmp_path))
    assert len(results.monthly) == 3
    out = results.save(tmp_path / "out", plots=True)
    assert (out / "cost.png").stat().st_size > 10_000


def test_calendar_months_from_a_mid_month_start():
    edges, labels = month_edges(dt.date(2026, 1, 15), 50 * DAY)
    assert labels == ["2026-01", "2026-02", "2026-03"]
    assert (edges / DAY).tolist() == [0.0, 17.0, 45.0, 50.0]  # 17 days of January, 28 of February
    edges, labels = month_edges(dt.date(2027, 12, 31), 1.5 * DAY)
    assert labels == ["2027-12", "2028-01"] and (edges / DAY).tolist() == [0.0, 1.0, 1.5]
    edges, labels = month_edges(dt.date(2026, 3, 1), 31 * DAY)  # ends exactly at 1 April: one month
    assert labels == ["2026-03"] and (edges / DAY).tolist() == [0.0, 31.0]


def test_energy_is_power_times_time_times_price_exactly_and_split_at_month_edges():
    rng = np.random.default_rng(3)
    bins = np.append(np.arange(0.0, 40 * DAY, 5 * 3600.0), 40 * DAY)  # 5 h bins: some straddle midnight
    kw = rng.uniform(100.0, 900.0, len(bins) - 1)
    ledger = build_ledger([], SITE, dt.date(2026, 1, 20), 40 * DAY, bins, kw)
    energy = ledger.entries[ledger.entries["category"] == "energy"]
    exact_kwh = float((kw * np.diff(bins)).sum() / 3600.0)
    assert energy["kwh"].sum() == pytest.approx(exact_kwh, rel=1e-13)
    assert ledger.cost_usd("energy") == pytest.approx(exact_kwh * SITE.electricity_usd_per_kwh, rel=1e-13)
    assert energy["carbon_kg"].sum() == pytest.approx(exact_kwh * 0.4, rel=1e-13)
    # 1 February is 12 days in; the bin [10 d + 20 h, 11 d + 1 h) gives 4 of its 5 hours to January
    straddling = int(np.searchsorted(bins, 12 * DAY, side="right") - 1)
    january = float((kw[:straddling] * np.diff(bins)[:straddling]).sum() / 3600.0
                     + kw[straddling] * (12 * DAY - bins[straddling]) / 3600.0)
    assert 0 < 12 * DAY - bins[straddling] < 5 * 3600.0
    assert energy.loc[energy["month"] == "2026-01", "kwh"].sum() == pytest.approx(january, rel=1e-13)


def test_owned_pool_capex_depreciation_and_maintenance():
    price = 2.0 * SITE.amortization_years * HOURS_PER_YEAR  # what a chip-hour cost of 2 USD amortizes
    pool = _pool("own", online_from_s=20 * DAY)
    ledger = build_ledger([pool], SITE, dt.date(2026, 1, 1), 45 * DAY, np.array([0.0, 45 * DAY]), np.zeros(1))
    capex = ledger.entries[ledger.entries["category"] == "capex"]
    assert capex["usd"].tolist() == pytest.approx([8 * price]) and capex["month"].tolist() == ["2026-01"]
    assert capex["time_s"].tolist() == [20 * DAY]
    by = ledger.by_month()
    assert by["depreciation"].tolist() == pytest.approx([8 * 11 * 24 * 2.0, 8 * 14 * 24 * 2.0])
    assert by["maintenance"].tolist() == pytest.approx(list(by["depreciation"] * 0.05 * 4.0))
    assert by["rental"].sum() == 0


def test_depreciation_stops_at_the_end_of_life_and_maintenance_goes_on():
    site = SimpleNamespace(**{**vars(SITE), "amortization_years": 30 / 365})  # a 30-day life
    pool = _pool("own", online_from_s=5 * DAY)
    price = pool.purchase_usd_per_chip
    ledger = build_ledger([pool], site, dt.date(2026, 1, 1), 90 * DAY, np.array([0.0, 90 * DAY]), np.zeros(1))
    rows = ledger.entries
    depreciation = rows[rows["category"] == "depreciation"]
    assert depreciation["usd"].sum() == pytest.approx(8 * price)  # the whole price, and no more
    assert depreciation["end_s"].max() == 35 * DAY
    maintenance = rows[rows["category"] == "maintenance"]
    assert maintenance["usd"].sum() == pytest.approx(8 * price * 0.05 * 85 / 365)  # online 85 days
    assert rows["category"].eq("write_off").sum() == 0  # the pool never leaves


def test_owned_pool_that_leaves_writes_off_its_book_value():
    pool = _pool("own", online_from_s=10 * DAY, online_until_s=40 * DAY)
    price = pool.purchase_usd_per_chip
    life_days = SITE.amortization_years * 365
    ledger = build_ledger([pool], SITE, dt.date(2026, 1, 1), 90 * DAY, np.array([0.0, 90 * DAY]), np.zeros(1))
    rows = ledger.entries
    write_off = rows[rows["category"] == "write_off"]
    assert write_off["usd"].tolist() == pytest.approx([8 * price * (1 - 30 / life_days)])
    assert write_off["time_s"].tolist() == [40 * DAY] and write_off["month"].tolist() == ["2026-02"]
    depreciated = rows.loc[rows["category"] == "depreciation", "usd"].sum()
    assert depreciated + write_off["usd"].sum() == pytest.approx(8 * price)  # the capex, all accounted for


def test_each_delivery_is_bought_and_depreciated_at_its_own_price():
    pool = _pool("own", count=24, deliveries=((10 * DAY, 8), (20 * DAY, 8)), delivery_usd_per_chip=(1000.0, 3000.0))
    ledger = build_ledger([pool], SITE, dt.date(2026, 1, 1), 30 * DAY, np.array([0.0, 30 * DAY]), np.zeros(1))
    rows = ledger.entries
    capex = rows[rows["category"] == "capex"]
    assert capex["usd"].tolist() == pytest.approx([8 * pool.purchase_usd_per_chip, 8 * 1000.0, 8 * 3000.0])
    assert capex["time_s"].tolist() == [0.0, 10 * DAY, 20 * DAY]
    year_s = HOURS_PER_YEAR * 3600.0 * SITE.amortization_years
    expected = 8 * (pool.purchase_usd_per_chip * 30 + 1000.0 * 20 + 3000.0 * 10) * DAY / year_s
    assert rows.loc[rows["category"] == "depreciation", "usd"].sum() == pytest.approx(expected)


def test_rented_pool_rental_stops_when_it_leaves():
    leaving = _pool("rent", owner="rented", rate=3.0, online_from_s=5 * DAY, online_until_s=40 * DAY)
    staying = _pool("stay", owner="rented", rate=3.0)
    ledger = build_ledger([leaving, staying], SITE, dt.date(2026, 1, 1), 90 * DAY, np.array([0.0, 90 * DAY]),
                          np.zeros(1))
    rental = ledger.entries[ledger.entries["category"] == "rental"]
    mine = rental[rental["pool"] == "rent"]
    assert mine["usd"].sum() == pytest.approx(8 * 35 * 24 * 3.0)  # 5 to 40 days only
    assert mine["month"].tolist() == ["2026-01", "2026-02"] and mine["end_s"].max() == 40 * DAY
    assert rental.loc[rental["pool"] == "stay", "usd"].sum() == pytest.approx(8 * 90 * 24 * 3.0)
    assert ledger.entries["category"].eq("capex").sum() == 0  # nothing bought
    assert ledger.online_chip_s["rent"].sum() == 8 * 35 * DAY


def test_job_cost_rule():
    pools = [_pool("own", rate=2.0), _pool("rent", owner="rented", rate=3.0)]
    jobs = pd.DataFrame({"chips": [8, 1, 4, 1], "chip_share": [1.0, 0.5, 1.0, 1.0]})
    outcome = {"run_start_s": np.array([0.0, 0.0, np.nan, 9000.0]),
               "end_s": np.array([7200.0, 3600.0, np.nan, 1e9]),  # the last runs past the horizon
               "pool": np.array([0, 1, -1, 0]),
               "segments": {"job": np.array([0]), "pool": np.array([1]), "start_s": np.array([100.0]),
                            "end_s": np.array([3700.0])}}
    chip, energy = job_costs_usd(jobs, outcome, pools, SITE, horizon_s=9000.0 + 1800.0)
    kwh_price = 1.0 * SITE.pue * SITE.electricity_usd_per_kwh  # 1 kW per chip at full load
    # the pool's chip-hour cost, maintenance already in it for an owned pool (not added again)
    assert chip.tolist() == pytest.approx([8 * 2 * 2.0 + 8 * 1 * 3.0, 0.5 * 3.0, 0.0, 0.5 * 2.0])
    assert energy.tolist() == pytest.approx([8 * 3 * kwh_price, 0.5 * kwh_price, 0.0, 0.5 * kwh_price])


def test_monthly_table_counts_jobs_by_the_month_they_end():
    ledger = build_ledger([_pool("own")], SITE, dt.date(2026, 1, 30), 5 * DAY, np.array([0.0, 5 * DAY]),
                          np.ones(1))
    jobs = pd.DataFrame({"state": ["completed", "completed", "running"], "arrival_s": [0.0, 0.0, 0.0],
                         "start_s": [100.0, 3 * DAY, 0.0], "end_s": [DAY, 4 * DAY, np.nan]})
    table = monthly_table(ledger, [_pool("own")], jobs)
    assert table["jobs_completed"].tolist() == [1, 1] and table["days"].tolist() == [2.0, 3.0]
    assert table["mean_wait_s"].tolist() == [100.0, 3 * DAY]
    table = monthly_table(ledger, [_pool("own")], jobs.iloc[1:])
    assert table["jobs_completed"].tolist() == [0, 1] and np.isnan(table["mean_wait_s"].iloc[0])
