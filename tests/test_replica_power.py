"""Inference replicas against the site power cap: until the facility enforces caps while a run goes on,
validation refuses replicas whose full-load power, with every other chip idle, exceeds the cap — the same
floor training admission reserves (``Fleet.committed_floor_w``)."""

from __future__ import annotations

import re

import pytest

import sim
from sim.fleet import build_fleet
from sim.validation.checks import scenario_catalog
from tests.conftest import scenario_from
from tests.test_inference import SERVICE, with_service


def _fleet(data: dict, tmp_path):
    scenario = scenario_from(data, tmp_path, "uncapped.yaml")
    return build_fleet(scenario, scenario_catalog(scenario))


def _floor_mw(data: dict, tmp_path) -> float:
    """Facility power of the replicas at full load and every other chip idle [MW], as the engine counts it."""
    return _fleet(data, tmp_path).committed_floor_w / 1e6


def _accepted_cap_mw(message: str) -> float:
    return float(re.search(r"power_cap_mw >= ([0-9.e+-]+)", message).group(1))


def test_replicas_above_the_site_cap_are_a_located_error(tmp_path):
    data = with_service({"replicas": [{"pool": "gpu", "count": 16, "chips_per_replica": 1}]})
    floor = _floor_mw(data, tmp_path)
    idle = _fleet(data, tmp_path).idle_facility_w / 1e6
    data["site"]["power_cap_mw"] = (idle + floor) / 2  # the idle fleet fits; the replicas at full load do not
    with pytest.raises(sim.ScenarioError) as err:
        scenario_from(data, tmp_path)
    (message,) = str(err.value).splitlines()[-1:]
    assert re.search(r"s\.yaml:\d+ workloads\.inference\[0\]\.replicas: ", message), message
    assert f"draw {floor:.4g} MW at full load with the fleet's idle power" in message
    assert f"above the site cap of {data['site']['power_cap_mw']:g} MW" in message
    accepted = _accepted_cap_mw(message)
    assert floor <= accepted <= floor + 1e-4
    data["site"]["power_cap_mw"] = accepted  # what the message accepts validates, and runs
    summary = sim.run(scenario_from(data, tmp_path, "accepted.yaml")).summary
    assert summary["peak_facility_power_kw"] <= accepted * 1e3 * (1 + 1e-9)


def test_the_service_that_takes_the_site_over_the_cap_is_named(tmp_path):
    data = with_service({"replicas": [{"pool": "gpu", "count": 4, "chips_per_replica": 1}]})
    second = {**SERVICE, "name": "code", "replicas": [{"pool": "gpu", "count": 8, "chips_per_replica": 1}]}
    data["workloads"]["inference"].append(second)
    one_service = with_service({"replicas": [{"pool": "gpu", "count": 4, "chips_per_replica": 1}]})
    data["site"]["power_cap_mw"] = (_floor_mw(one_service, tmp_path) + _floor_mw(data, tmp_path)) / 2
    with pytest.raises(sim.ScenarioError, match=r"workloads\.inference\[1\]\.replicas: the inference replicas draw"):
        scenario_from(data, tmp_path)


def test_an_idle_fleet_over_the_cap_is_reported_once(tmp_path):
    data = with_service()
    data["site"]["power_cap_mw"] = 0.001
    with pytest.raises(sim.ScenarioError) as err:
        scenario_from(data, tmp_path)
    message = str(err.value)
    assert "the fleet's idle power alone" in message and "inference replicas draw" not in message
