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
    assert summary["mean_it_power_kw"] == pytest.approx((it * hours).sum() / hours.sum(), rel=1e-12)
    assert summary["mean_facility_power_kw"] == pytest.approx((it * pue * hours).sum() / hours.sum(), rel=1e-12)
    assert summary["mean_it_power_kw"] < summary["peak_it_power_kw"]
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


# -- heat beyond a rack's cooling, the plant's capacity, part load (issue 11 item 4) -----------------------------

def _one_gpu_pool(**site) -> dict:
    data = _site(BASE, **site)
    data["fleet"] = data["fleet"][:1]  # 16 H100 in racks of 2 servers: 14.56 kW at TDP with the server share
    data["workloads"]["training"]["generator"].update(jobs=120, arrival_rate_per_hour=20, stacks={"cuda": 1.0})
    return data


def test_a_rack_over_its_cooling_throttles_under_the_opt_in_and_is_refused_without(tmp_path):
    cool = sim.run(scenario_from(_one_gpu_pool(pue=1.2), tmp_path, "cool.yaml"))
    data = _one_gpu_pool(pue=1.2, air_cooling_kw_per_rack=10, cooling_over_capacity="throttle")
    hot = sim.run(scenario_from(data, tmp_path, "hot.yaml"))
    pool = hot.summary["heat_throttled_pools"]["gpu"]
    assert 0.5 < pool["clock_frac"] < 1.0 and pool["rack_kw"] == pytest.approx(10.0, rel=1e-9)
    assert pool["power_limit_w"] == pytest.approx(10_000 / (16 * 1.3), rel=1e-9)
    assert "heat_throttled_pools" not in cool.summary
    # the same jobs run slower, and the site draws less at its peak
    both = cool.jobs.merge(hot.jobs, on="job_id", suffixes=("_cool", "_hot"))
    ran = both[(both["end_s_cool"] > 0) & (both["end_s_hot"] > 0) & both["end_s_cool"].notna()
               & both["end_s_hot"].notna()]
    assert len(ran) > 10
    assert ((ran["end_s_hot"] - ran["start_s_hot"]) > (ran["end_s_cool"] - ran["start_s_cool"]) * (1 + 1e-9)).all()
    assert hot.summary["peak_it_power_kw"] < cool.summary["peak_it_power_kw"]
    with pytest.raises(sim.ScenarioError, match=r"servers_per_rack: .*air cooling removes 10 kW per rack.*"
                                                r"cooling_over_capacity: throttle"):
        scenario_from(_one_gpu_pool(pue=1.2, air_cooling_kw_per_rack=10), tmp_path, "refused.yaml")
    with pytest.raises(sim.ScenarioError, match=r"servers_per_rack: .*no clock fits"):
        scenario_from(_one_gpu_pool(pue=1.2, air_cooling_kw_per_rack=1, cooling_over_capacity="throttle"),
                      tmp_path, "idle.yaml")


# full-load IT power of the 16-H100 test pool [W]: TDP × (1 + server overhead) + the chip's switch share
# (80 W per 400 Gb/s of scale-out bandwidth, sim/catalog/data/site.yaml)
FULL_LOAD_W = 16 * (700 * 1.3 + 80.0)


def _hot_plant(plant_frac: float, **site) -> dict:
    """Miami in July, the plant rated at ``plant_frac`` of the fleet's full-load IT power (``FULL_LOAD_W``)."""
    data = _one_gpu_pool(climate="miami", cooling_plant_mw=plant_frac * FULL_LOAD_W / 1e6, **site)
    data["start"] = "2026-07-01"
    data["duration"] = "3d"
    return data


def test_the_plant_limits_it_only_above_its_design_temperature(tmp_path):
    design_c = 30.0
    results = sim.run(scenario_from(_hot_plant(1.001, cooling_plant_design_c=design_c), tmp_path))
    plant = results.summary["facility"]["plant"]
    assert plant["design_dry_bulb_c"] == design_c and plant["limited_hours"] > 0
    weather = builtin_weather("miami")
    hours = np.arange(181 * 24, 184 * 24)
    capacity = facility_model_of(results).plant_it_cap_w()[hours]
    limited = capacity < FULL_LOAD_W
    assert limited.sum() == plant["limited_hours"]
    assert (weather.dry_bulb_c[hours][limited] > design_c).all()  # only above the design point
    assert (weather.dry_bulb_c[hours][~limited] <= design_c + 0.1 + 1e-9).all()  # 0.1 %: the rating's margin
    ts = results.timeseries
    assert ts["plant_it_capacity_kw"].min() < FULL_LOAD_W / 1e3 <= ts["plant_it_capacity_kw"].max()


def facility_model_of(results):
    from sim.facility import facility_model
    from sim.fleet import build_fleet
    from sim.validation.checks import scenario_catalog

    scenario = results.scenario
    return facility_model(scenario.site, build_fleet(scenario, scenario_catalog(scenario)).site)


def test_under_throttle_it_power_never_exceeds_what_the_plant_cools(tmp_path):
    data = _hot_plant(0.8, cooling_plant_design_c=27.0)
    data["policy"]["power_cap"] = {"kind": "throttle"}
    results = sim.run(scenario_from(data, tmp_path))
    capping, plant = results.summary["power_capping"], results.summary["facility"]["plant"]
    cap_w = results.capping["cap_w"].max()
    assert capping["max_committed_over_cap_w"] <= cap_w * 1e-9
    assert capping["throttled_chip_hours"] > 0
    assert 0 < plant["heat_throttled_chip_hours"] <= capping["throttled_chip_hours"] + 1e-9
    assert plant["cap_changes"] > 3  # the cap follows the afternoons, one entry per 1 % step
    ts = results.timeseries
    assert (ts["it_power_kw"] <= ts["plant_it_capacity_kw"] * (1 + 1e-9)).all()
    assert (ts["power_cap_kw"] / 1.0).max() > ts["power_cap_kw"].min()  # a time-varying cap in the series
    # without the plant, the same workload draws more than the plant could cool in the hot hours
    free = _one_gpu_pool(climate="miami")
    free.update(start="2026-07-01", duration="3d")
    uncapped = sim.run(scenario_from(free, tmp_path, "free.yaml")).timeseries
    assert (uncapped["it_power_kw"] > ts["plant_it_capacity_kw"] * 1.01).any()


def test_a_plant_that_never_limits_changes_no_training(tmp_path):
    data = _hot_plant(2.0)
    data["policy"]["power_cap"] = {"kind": "throttle"}
    with_plant = sim.run(scenario_from(data, tmp_path, "p.yaml"))
    del data["site"]["cooling_plant_mw"]
    without = sim.run(scenario_from(data, tmp_path, "n.yaml"))
    assert with_plant.summary["facility"]["plant"]["limited_hours"] == 0
    assert with_plant.jobs["end_s"].equals(without.jobs["end_s"])
    assert "power_capping" not in with_plant.summary or with_plant.summary["power_capping"]["events"] == 0


def test_a_gang_no_hour_of_the_plant_could_cool_is_rejected_not_left_waiting(tmp_path):
    """The plant rated at 60 % of the pool's full-load IT power: a gang of the whole pool (16 chips) draws more than
    the plant cools at any hour of the run, so it is rejected with its reason (it used to wait to the end, queued);
    single-chip jobs run. Without the plant the same gangs run."""
    data = _hot_plant(0.6)
    data["workloads"]["training"]["generator"].update(chips={16: 0.2, 1: 0.8})
    jobs = sim.run(scenario_from(data, tmp_path)).jobs
    whole = jobs[jobs["chips"] == 16]
    assert len(whole) > 5 and (whole["state"] == "rejected").all()
    assert whole["reason"].str.contains("over-cooling-plant-capacity").all()
    assert (jobs.loc[jobs["chips"] == 1, "state"] == "completed").sum() > 20
    del data["site"]["cooling_plant_mw"]
    free = sim.run(scenario_from(data, tmp_path, "free.yaml")).jobs
    assert (free.loc[free["chips"] == 16, "state"] == "completed").any()


def test_part_load_pue_is_above_full_load_pue():
    wet = builtin_weather("greensboro").wet_bulb_c
    full, part = hourly_pue(wet), hourly_pue(wet, load_frac=0.3)
    assert (part > full).all()
    # fixed overheads (no-load distribution losses, lighting: 3 % of design) alone add 0.07 at 30 % load
    assert (part - full).mean() > 0.07 - 1e-9
    assert (hourly_pue(wet, load_frac=0.6) < part).all()


def test_part_load_and_plant_kernels_equal_their_twins():
    rng = np.random.default_rng(9)
    wet = rng.uniform(-30, 35, 400)
    classes, plant = class_array(), plant_array()
    terms = facility_compiled.chiller_terms(wet, classes, plant)
    assert terms == pytest.approx(facility_reference.chiller_terms(wet, classes, plant), rel=1e-12, abs=1e-15)
    plr = np.concatenate(([0.0, 0.05, 0.2, 1.0, 1.7], rng.uniform(0, 1.2, 50)))
    assert facility_compiled.part_load_multiplier(plr, plant) == pytest.approx(
        facility_reference.part_load_multiplier(plr, plant), rel=1e-12)
    it = rng.uniform(0, 500, (3, 400))
    it[:, :5] = 0.0  # bins without IT power draw nothing
    capacity = rng.uniform(100, 2000, 400)
    args = (it, terms[:3].copy(), terms[3:].copy(), capacity, 40.0, classes, plant)
    compiled = facility_compiled.facility_power(*args)
    assert compiled == pytest.approx(facility_reference.facility_power(*args), rel=1e-12)
    assert (compiled[:5] == 0).all() and (compiled[5:] > it.sum(axis=0)[5:]).all()


@pytest.mark.parametrize("site, found", [
    ({"climate": "miami", "cooling_plant_mw": 0}, r"site\.cooling_plant_mw: found 0"),
    ({"climate": "miami", "cooling_plant_mw": -2}, r"site\.cooling_plant_mw: found -2"),
    ({"cooling_plant_mw": 1}, r"site: cooling_plant_mw 1 needs the outside temperature; accepted: with climate"),
    ({"cooling_over_capacity": "melt"}, r"site\.cooling_over_capacity: .*melt.*'error'.*'throttle'"),
])
def test_bad_plant_and_opt_in_values_are_located(tmp_path, site, found):
    with pytest.raises(sim.ScenarioError, match=r"s\.yaml:\d+ " + found):
        scenario_from(_site(BASE, **site), tmp_path)


def test_a_plant_too_small_for_the_idle_fleet_and_its_replicas_is_located(tmp_path):
    data = _hot_plant(0.05)  # 0.79 kW of IT: below 16 idle H100 with their servers and switches
    with pytest.raises(sim.ScenarioError, match=r"s\.yaml:\d+ site\.cooling_plant_mw: found 0\.000792 MW: in the "
                                                r"hottest hour of the run .* below the fleet's idle power"):
        scenario_from(data, tmp_path)
