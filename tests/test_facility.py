"""The facility model: weather, cooling plant and PUE per bin, price and carbon over time, embodied carbon
(``sim.facility``), its kernels against their twins, and its bad-input errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.cli import main
from sim.facility import LOCATIONS, builtin_weather, wet_bulb_c
from sim.facility.cooling import CLASSES, class_array, constants, hourly_pue, plant_array
from sim.facility.tariff import profile_values
from sim.kernels import facility_compiled, facility_reference
from tests.conftest import BASE, scenario_from

AIR, REAR, LIQUID = (CLASSES.index(c) for c in ("air", "rear-door", "liquid"))


def _site(data: dict, **site) -> dict:
    data = copy.deepcopy(data)
    data["site"] = site
    return data


@pytest.fixture(scope="module")
def temperate_run(tmp_path_factory):
    data = _site(BASE, climate="greensboro", electricity_usd_per_kwh={"mean": 0.1, "daily": [1] * 12 + [2] * 12})
    data["start"] = "2026-07-01"
    data["fleet"][1]["cooling"] = "liquid"
    return sim.run(scenario_from(data, tmp_path_factory.mktemp("temperate")))


def test_wet_bulb_matches_stulls_worked_example():
    # Stull (2011): T = 20 °C, RH = 50 % gives Tw = 13.7 °C
    assert wet_bulb_c(20.0, 50.0) == pytest.approx(13.7, abs=0.05)
    assert (wet_bulb_c(np.array([30.0, -5.0]), np.array([100.0, 2.0])) <= np.array([30.0, -5.0])).all()


def test_builtin_locations_are_a_hot_a_temperate_and_a_cold_year():
    means = {name: builtin_weather(name).dry_bulb_c.mean() for name in LOCATIONS}
    assert all(builtin_weather(name).hours == 8760 for name in LOCATIONS)
    assert means["miami"] > 20 > means["greensboro"] > 10 > means["sand-point"]


def test_facility_energy_is_the_integral_of_it_power_times_pue(temperate_run):
    ts, summary = temperate_run.timeseries, temperate_run.summary
    hours = np.diff(np.append(ts["time_s"].to_numpy(), summary["horizon_s"])) / 3600.0
    it, pue, facility = ts["it_power_kw"].to_numpy(), ts["pue"].to_numpy(), ts["facility_power_kw"].to_numpy()
    assert pue.min() > 1.0 and pue.max() > pue.min()  # PUE follows the weather, hour by hour
    assert np.allclose(facility, it * pue)
    assert summary["facility_energy_kwh"] == pytest.approx((it * pue * hours).sum(), rel=1e-12)
    assert summary["facility"]["it_energy_kwh"] == pytest.approx(summary["it_energy_kwh"], rel=1e-12)
    assert summary["pue"] == pytest.approx(summary["facility_energy_kwh"] / summary["it_energy_kwh"])
    # energy money in the ledger: each bin's facility kWh at that bin's price
    price = ts["electricity_usd_per_kwh"].to_numpy()
    assert price.max() == pytest.approx(2 * price.min())  # the daily profile: twice the price in the afternoon
    cost = (facility * hours * price).sum()
    assert summary["energy_cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert summary["money"]["by_category_usd"]["energy"] == pytest.approx(cost, rel=1e-9)
    assert summary["facility"]["mean_price_usd_per_kwh"] == pytest.approx(cost / summary["facility_energy_kwh"])
    assert temperate_run.monthly["pue"].to_numpy() == pytest.approx(np.array([summary["pue"]]))


def test_a_bin_is_priced_at_its_hours_the_outside_temperature_is_the_weathers(temperate_run):
    ts = temperate_run.timeseries
    weather = builtin_weather("greensboro")
    first_hour = (181) * 24  # 1 July of a 365-day year
    assert ts["outside_dry_bulb_c"].to_numpy()[:48] == pytest.approx(weather.dry_bulb_c[first_hour:first_hour + 48])


def test_embodied_carbon_is_amortized_over_the_service_life(temperate_run):
    summary = temperate_run.summary
    site = temperate_run.scenario.site
    assert site.embodied_kg_per_accelerator is None  # the catalog's figures
    per_chip = 150 + 1500 / 8  # sim/catalog/data/site.yaml: accelerator + its share of an 8-chip server
    expected = 32 * per_chip * summary["horizon_s"] / (4 * 365 * 86400)  # 32 chips, 4 years
    assert summary["facility"]["embodied_carbon_kg"] == pytest.approx(expected)
    assert summary["facility"]["carbon_kg"] == pytest.approx(expected + summary["carbon_kg"])


def test_temperate_free_cooling_gives_a_plausible_yearly_pue():
    """Hyperscale fleets report about 1.08-1.12 (Google 1.09-1.10, Meta 1.08), the industry average about
    1.5-1.6 (Uptime Institute): a liquid hall in a temperate climate lands in 1.08-1.2, an air hall above it
    and at most 1.6."""
    pue = hourly_pue(builtin_weather("greensboro").wet_bulb_c).mean(axis=1)
    assert 1.08 <= pue[LIQUID] <= 1.2
    assert pue[LIQUID] < pue[AIR] <= 1.6
    wet = builtin_weather("greensboro").wet_bulb_c
    free = wet + 3.9 + 2.0 <= 15.0  # the air class's free-cooling hours: tower water at or below its supply
    assert 0.2 < free.mean() < 0.8  # a temperate year has both


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-40, 40), min_size=1, max_size=50))
def test_liquid_never_has_a_higher_pue_than_air_in_the_same_weather(wet):
    pue = hourly_pue(np.array(wet))
    assert (pue[LIQUID] <= pue[REAR] + 1e-12).all() and (pue[REAR] <= pue[AIR] + 1e-12).all()


def test_liquid_never_has_a_higher_pue_than_air_in_the_same_run(tmp_path):
    data = _site(BASE, climate="miami")
    data["fleet"] = data["fleet"][:1]
    air = sim.run(scenario_from(data, tmp_path, "air.yaml")).summary
    data["fleet"][0]["cooling"] = "liquid"
    liquid = sim.run(scenario_from(data, tmp_path, "liquid.yaml")).summary
    assert liquid["it_energy_kwh"] == pytest.approx(air["it_energy_kwh"])
    assert liquid["facility"]["pue_mean"] < air["facility"]["pue_mean"]
    assert liquid["facility_energy_kwh"] < air["facility_energy_kwh"]


def test_pinned_pue_wins_over_the_weather(tmp_path):
    run = sim.run(scenario_from(_site(BASE, climate="miami", pue=1.3), tmp_path))
    assert (run.timeseries["pue"] == 1.3).all()
    assert run.summary["facility"]["pue_pinned"] and run.summary["pue"] == pytest.approx(1.3)
    assert run.timeseries["outside_dry_bulb_c"].mean() > 15  # the weather is still reported


def test_without_climate_or_profiles_nothing_changes(tmp_path):
    run = sim.run(scenario_from(BASE, tmp_path))
    assert "facility" not in run.summary and "pue" not in run.timeseries.columns
    assert run.summary["facility_energy_kwh"] == pytest.approx(run.summary["it_energy_kwh"] * 1.2)


def test_hourly_csvs_for_weather_price_and_carbon(tmp_path):
    hours = np.arange(24)
    (tmp_path / "w.csv").write_text("hour,dry_bulb_c,relative_humidity_pct\n"
                                    + "".join(f"{h},{35 if h < 12 else 0},50\n" for h in hours))
    (tmp_path / "p.csv").write_text("hour,value\n" + "".join(f"{h},{0.05 + 0.01 * h}\n" for h in hours))
    (tmp_path / "c.csv").write_text("hour,value\n" + "".join(f"{h},{100 * (h % 2)}\n" for h in hours))
    data = _site(BASE, weather={"csv": "w.csv"}, electricity_usd_per_kwh={"csv": "p.csv"},
                 carbon_g_per_kwh={"csv": "c.csv"})
    ts = sim.run(scenario_from(data, tmp_path)).timeseries
    day = ts.iloc[:24]
    # hot mornings need the chillers (PUE also moves with the IT load: part load, fixed overheads)
    assert day["pue"].iloc[:12].mean() > day["pue"].iloc[12:].mean() + 0.05
    assert day["electricity_usd_per_kwh"].to_numpy() == pytest.approx(0.05 + 0.01 * hours)
    assert day["carbon_g_per_kwh"].to_numpy() == pytest.approx(100.0 * (hours % 2))
    assert ts["outside_dry_bulb_c"].iloc[24] == 35  # the file's day repeats


def test_profile_mean_is_the_yearly_mean():
    values = profile_values(0.08, list(range(1, 25)), [2] * 6 + [1] * 6)
    assert len(values) == 8760 and values.mean() == pytest.approx(0.08)
    assert values[0] < values[23] and values[0] > values[-24]  # January dearer than December


def test_every_cooling_constant_has_a_source():
    from sim.catalog import builtin_catalog

    data = constants()
    entries = list(data["plant"].values()) + [e for c in data["classes"].values() for e in c.values()]
    for entry in entries:
        source = str(entry["source"])
        key = source.split(" ", 1)[0]
        assert source.startswith("estimate:") or key in builtin_catalog().sources, source
    assert set(data["classes"]) == set(CLASSES)


def test_kernels_equal_their_twins():
    rng = np.random.default_rng(5)
    wet = rng.uniform(-30, 35, 500)
    classes, plant = class_array(), plant_array()
    assert facility_compiled.cooling_factor(wet, classes, plant) == pytest.approx(
        facility_reference.cooling_factor(wet, classes, plant), rel=1e-12)
    values = rng.random((3, 100))
    edges = np.concatenate(([0.0], np.sort(rng.uniform(0, 100 * 3600 * 3.5, 80)), [100 * 3600 * 3.5]))
    for offset in (0.0, 1234.5, 99.5 * 3600):
        compiled = facility_compiled.hourly_bin_means(values, offset, edges)
        reference = facility_reference.hourly_bin_means(values, offset, edges)
        assert compiled == pytest.approx(reference, rel=1e-9, abs=1e-12)
    # a bin of whole hours is the mean of its hours, wrapping around the year
    means = facility_reference.hourly_bin_means(values, 98 * 3600.0, np.array([0.0, 4 * 3600.0]))
    assert means[:, 0] == pytest.approx(values[:, [98, 99, 0, 1]].mean(axis=1))


@pytest.mark.parametrize("text, found", [
    ("hour,dry_bulb_c,relative_humidity_pct\n" + "".join(f"{h},10,50\n" for h in range(30) if h != 7),
     "w.csv:9: hour '8'; expected 7"),
    ("hour,dry_bulb_c,relative_humidity_pct\n" + "".join(f"{h},{'hot' if h == 3 else 10},50\n" for h in range(30)),
     "w.csv:5: dry_bulb_c 'hot': not a number"),
    ("hour,dry_bulb_c,relative_humidity_pct\n0,10,50\n", "w.csv: 1 hourly rows; accepted: 24 to 8784"),
    ("hour,dry_bulb_c\n0,10\n", "missing column(s) relative_humidity_pct"),
])
def test_a_bad_weather_csv_names_file_and_row(tmp_path, capsys, text, found):
    (tmp_path / "w.csv").write_text(text)
    path = tmp_path / "s.yaml"
    scenario_from(_site(BASE), tmp_path)  # the base is fine
    import yaml

    path.write_text(yaml.safe_dump(_site(BASE, weather={"csv": "w.csv"}), sort_keys=False))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert found in err and "site.weather.csv" in err and "Traceback" not in err


def test_an_unknown_location_lists_the_accepted_names(tmp_path):
    with pytest.raises(sim.ScenarioError, match=r"s\.yaml:\d+ site\.climate: unknown location 'mars'; accepted: "
                                                r"greensboro, miami, sand-point"):
        scenario_from(_site(BASE, climate="mars"), tmp_path)


def test_bad_price_and_carbon_inputs(tmp_path):
    (tmp_path / "p.csv").write_text("hour,value\n" + "".join(f"{h},{-1 if h == 5 else 0.1}\n" for h in range(24)))
    with pytest.raises(sim.ScenarioError, match=r"p\.csv:7: value -1; accepted: 0 to 100 USD/kWh"):
        scenario_from(_site(BASE, electricity_usd_per_kwh={"csv": "p.csv"}), tmp_path)
    with pytest.raises(sim.ScenarioError, match="daily has 3 factors; accepted: exactly 24"):
        scenario_from(_site(BASE, carbon_g_per_kwh={"mean": 300, "daily": [1, 2, 3]}), tmp_path)
    with pytest.raises(sim.ScenarioError, match="at most one of climate, weather"):
        scenario_from(_site(BASE, climate="miami", weather={"csv": "w.csv"}), tmp_path)
