"""Deferrable training held for cheap or clean hours (``policy.shifting``, ``sim.training.shifting``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import sim
from sim.results.shifting import hourly_integral
from sim.training.shifting import Shifting, threshold_value
from tests.conftest import load_text

# carbon per hour of the day: clean from 10:00 to 14:59 (100 g), dirty otherwise (400 g); flat over the year
DAILY = [4.0] * 10 + [1.0] * 5 + [4.0] * 9
SCENARIO = """\
schema_version: 1
name: t
seed: 3
start: 2026-05-04
duration: 4d
site:
  carbon_g_per_kwh: {{mean: 100, daily: {daily}}}
fleet:
  - {{name: gpu, accelerator: h100-sxm, count: 64, chips_per_server: 8}}
workloads:
  training:
    deferrable: {deferrable}
    generator:
      jobs: 60
      arrival_rate_per_hour: 1
      chips: {{1: 0.5, 8: 0.5}}
      models: {{resnet50: 1.0}}
      duration_s: {{exponential: {{mean: 3600}}}}
      reference_accelerator: h100-sxm
{policy}"""
POLICY = "policy:\n  shifting: {signal: carbon, threshold: p20, max_delay_h: 12}\n"


def scenario(tmp_path, deferrable="true", policy=POLICY):
    return load_text(tmp_path, SCENARIO.format(daily=DAILY, deferrable=deferrable, policy=policy))


def test_threshold_quantile_and_open_hours():
    values = np.array([4.0] * 10 + [1.0] * 5 + [4.0] * 9)
    assert threshold_value(values, "p0") == 1.0 and threshold_value(values, "p100") == 4.0
    assert threshold_value(values, 2.5) == 2.5
    held = Shifting(values, offset_s=0.0, threshold=1.0, max_delay_s=6 * 3600.0)
    assert held.open_at_s(10.5 * 3600) == 10.5 * 3600  # open hour: at once
    assert held.open_at_s(15 * 3600) == 34 * 3600  # after the window: the next day's 10:00
    assert held.open_at_s(9.2 * 3600) == pytest.approx(10 * 3600)
    assert not held.hold(0, 11 * 3600)
    assert held.hold(1, 9 * 3600) and held.hold(2, 20 * 3600)  # released at 10:00, and after 6 h (02:00)
    assert held.next_s == 10 * 3600
    assert held.fire(10 * 3600) == [1] and held.next_s == 26 * 3600
    out = held.outcome()
    assert out["release_s"].tolist() == [10 * 3600, 26 * 3600] and out["opened"].tolist() == [True, False]
    never = Shifting(values, 0.0, threshold=0.5, max_delay_s=3600.0)
    assert math.isinf(never.open_at_s(0.0)) and never.hold(0, 0.0) and never.next_s == 3600.0


def test_offset_maps_run_time_onto_the_year():
    values = np.arange(24.0)
    held = Shifting(values, offset_s=5 * 3600.0, threshold=2.0, max_delay_s=1e9)  # open hours 0, 1, 2
    assert held.open_at_s(0.0) == 19 * 3600  # run time 0 is 05:00: the next 00:00 is 19 h later


def test_hourly_integral_against_a_sum():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 5, 48)
    t = np.array([0.0, 1800.0, 7200.0, 50 * 3600.0 + 900.0, 130 * 3600.0])
    fine = np.repeat(values, 3600)  # one value per second of a 48-hour cycle, from hour 7 (offset)
    for k, end in enumerate(t):
        seconds = (np.arange(int(end)) + 7 * 3600) % len(fine)
        assert hourly_integral(values, 7 * 3600.0, t)[k] == pytest.approx(fine[seconds].sum() / 3600.0, rel=1e-9)


def in_window(jobs) -> tuple[np.ndarray, np.ndarray]:
    """Per started job: whether it started in the clean window (10:00 to 15:00; the run starts at 00:00), and its
    wait [h]."""
    start = jobs["start_s"].to_numpy()
    ran = ~np.isnan(start)
    hour_of_day = (start[ran] / 3600.0) % 24
    return (hour_of_day >= 10 - 1e-9) & (hour_of_day < 15), (start[ran] - jobs["arrival_s"].to_numpy()[ran]) / 3600.0


def test_deferred_jobs_start_in_open_hours_or_after_max_delay(tmp_path):
    results = sim.run(scenario(tmp_path))
    shift = results.summary["shifting"]
    assert shift["deferred_jobs"] > 10 and shift["released_in_open_hour"] > 0 and shift["released_at_max_delay"] > 0
    window, waited = in_window(results.jobs)
    # every job starts in the clean window or after its maximum delay (the fleet is rarely full)
    assert (window | (waited >= 12 - 1e-9)).mean() > 0.95
    plain_results = sim.run(scenario(tmp_path, deferrable="false"))
    plain = plain_results.summary
    assert window.mean() > in_window(plain_results.jobs)[0].mean() + 0.3
    assert "shifting" not in plain
    assert shift["operational_carbon_kg"] < 0.8 * shift["operational_carbon_kg_at_arrival"]
    assert results.summary["carbon_kg"] < plain["carbon_kg"]  # idle chips draw at every hour alike
    assert results.summary["queue_wait_s"]["mean"] > plain["queue_wait_s"]["mean"]
    assert 0 < shift["mean_delay_h"] <= 12


def test_without_deferrable_jobs_results_are_unchanged(tmp_path):
    a = sim.run(scenario(tmp_path, deferrable="false")).summary
    b = sim.run(scenario(tmp_path, deferrable="false", policy="")).summary
    for s in (a, b):
        s.pop("manifest", None)
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_deferrable_without_policy_is_a_located_error(tmp_path):
    with pytest.raises(sim.ScenarioError) as info:
        scenario(tmp_path, policy="")
    text = str(info.value.problems[0])
    assert "s.yaml:" in text and "workloads.training.deferrable" in text and "policy.shifting" in text


@pytest.mark.parametrize("threshold, found", [("q30", "'q30'"), ("p101", "'p101'"), (-1, "-1")])
def test_bad_threshold_is_a_located_error(tmp_path, threshold, found):
    policy = POLICY.replace("p20", str(threshold))
    with pytest.raises(sim.ScenarioError) as info:
        scenario(tmp_path, policy=policy)
    text = str(info.value.problems[0])
    assert "policy.shifting.threshold" in text and found in text and "p0 to p100" in text
