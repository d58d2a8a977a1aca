"""Serving burst (``replicas[].burst``, ``sim.serving.burst``): a fluid LLM service rents a replica group on an
on-demand pool only after intervals that miss its SLO, the rentals lift attainment, the ledger charges exactly
the rented chip-hours, nothing is rented when the SLO is met, and bad input is located; the same for ranking
services at both fidelities."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.cli import main
from sim.fleet import build_fleet
from sim.kernels.serving_reference import DONE, NOT_OFFERED
from sim.rng import streams
from sim.serving import FAMILIES
from sim.serving.burst import interval_attainment, request_attainment
from sim.serving.family import ServingContext
from sim.serving.llm.summary import slo_outcome
from sim.serving.stage import serve_all
from sim.validation.checks import scenario_catalog
from tests.conftest import load_text

HOUR, DAY = 3600.0, 86400.0
H100_RATE = builtin_catalog().accelerators["h100-sxm"].cloud_usd_per_chip_hour
DELAY = 600.0

SCENARIO = """\
schema_version: 1
name: slo-burst
start: 2026-01-01
duration: 3d
fleet:
  - {name: gpu, accelerator: h100-sxm, count: 8}
  - {name: cloud, accelerator: h100-sxm, count: 8, owner: rented}
workloads:
  inference:
    - name: chat
      model: llama3-8b
      fidelity: fluid
      fluid_bin: 5min
      slo: {ttft_p99_ms: 2000, tpot_p99_ms: 100}
      traffic:
        generator:
          rate_per_s: RATE
          prompt_tokens: {lognormal: {median: 800, sigma: 0.8}}
          output_tokens: {exponential: {mean: 150}}
          diurnal: {amplitude_frac: 0.8, peak_hour: 14}
      replicas:
        - {pool: gpu, count: 1, chips_per_replica: 1}
"""
BURST = """\
        - pool: cloud
          count: 8
          chips_per_replica: 1
          burst: {slo_attainment_below: 0.99, provisioning_delay: 10min, min_rental: 1h, interval: 1h}
"""


def scenario(tmp_path, rate: float = 10.0, burst: bool = True):
    return load_text(tmp_path, SCENARIO.replace("RATE", str(rate)) + (BURST if burst else ""))


def served(scenario, tmp_path):
    """The scenario's first service as served (the serving stage alone)."""
    catalog = scenario_catalog(scenario)
    rngs = streams(scenario.seed)
    context = ServingContext(fleet=build_fleet(scenario, catalog), catalog=catalog, porting=scenario.porting,
                             horizon_s=float(scenario.duration), bin_width_s=3600.0, base_dir=tmp_path,
                             rng=rngs["inference"], ranking_rng=rngs["ranking"], start=scenario.start)
    return serve_all(scenario.workloads.inference, FAMILIES, context, {}).services[0]


def hourly_attainment(scenario, tmp_path) -> np.ndarray:
    """Hourly SLO attainment of the scenario's (fluid) service as served."""
    run = served(scenario, tmp_path)
    edges, offered, met = run.slo_per_bin()
    return interval_attainment(edges, offered, met, HOUR, float(scenario.duration))


def expected_windows(attainment: np.ndarray) -> list[list[float]]:
    """A window per run of consecutive hours below 0.99, from the run's first hour's end + the delay to one
    hour (min_rental) past its last hour's end + the delay."""
    low = np.flatnonzero(attainment < 0.99)
    runs_of_low = np.split(low, np.flatnonzero(np.diff(low) > 1) + 1) if len(low) else []
    return [[(r[0] + 1) * HOUR + DELAY, (r[-1] + 2) * HOUR + DELAY] for r in runs_of_low]


def rental(results, pool: str = "cloud") -> float:
    entries = results.ledger.entries
    return float(entries[(entries["pool"] == pool) & (entries["category"] == "rental")]["usd"].sum())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("burst")
    with_burst = scenario(tmp)
    without = scenario(tmp_path_factory.mktemp("base"), burst=False)
    return sim.run(with_burst), sim.run(without), hourly_attainment(without, tmp), hourly_attainment(with_burst, tmp)


def test_rentals_follow_the_low_intervals_around_the_daily_peak(runs):
    results, _, attainment, _ = runs
    low = np.flatnonzero(attainment < 0.99)
    assert 0 < len(low) < len(attainment) / 3  # the base group misses the SLO only around the peaks
    expected = expected_windows(attainment)
    burst = results.summary["inference"]["chat"]["burst"]
    assert burst["windows_s"] == expected
    assert burst["rentals"] == len(expected) == 3  # one per day
    assert burst["windows_s"][0][0] >= (low[0] + 1) * HOUR + DELAY  # nothing before the first low hour + delay
    for begin, end in burst["windows_s"]:  # around the 14:00 peak
        assert 12 * HOUR <= begin % DAY and end % DAY <= 20 * HOUR
    assert burst["rented_replica_hours"] == pytest.approx(8 * sum(e - b for b, e in expected) / HOUR)
    # the rented replicas serve only while rented: their chips are held in the windows only
    series = results.timeseries.set_index("time_s")
    held = series["inference_chips.cloud"]
    inside = np.zeros(len(held), dtype=bool)
    for begin, end in expected:
        inside |= (held.index >= begin) & (held.index + 3600 <= end)
    assert (held[inside] == 8).all() and held[~inside].max() < 8
    assert series["rented_chips.h100-sxm"].max() > 0 and (series["rented_chips.h100-sxm"] <= held + 1e-9).all()


def test_rentals_lift_slo_attainment(runs):
    results, without, base_hourly, burst_hourly = runs
    burst = results.summary["inference"]["chat"]["slo_attainment"]
    base = without.summary["inference"]["chat"]["slo_attainment"]
    assert burst > base + 0.002
    rented = np.zeros(len(base_hourly), dtype=bool)  # hours with a rental window in them
    for begin, end in results.summary["inference"]["chat"]["burst"]["windows_s"]:
        rented[int(begin // HOUR):int(np.ceil(end / HOUR))] = True
    assert (burst_hourly[rented] > base_hourly[rented] + 1e-4).all()
    assert np.allclose(burst_hourly[~rented], base_hourly[~rented], atol=1e-3)  # elsewhere as before


def test_rental_cost_is_the_rented_chip_hours_at_the_on_demand_rate(runs):
    results, without = runs[:2]
    burst = results.summary["inference"]["chat"]["burst"]
    chip_hours = sum(e - b for b, e in burst["windows_s"]) * 8 / HOUR
    assert rental(results) == pytest.approx(chip_hours * H100_RATE)
    assert burst["rental_usd"] == pytest.approx(rental(results))
    assert results.monthly["rental_usd"].sum() == pytest.approx(rental(results))
    horizon_h = 3 * 24
    assert results.monthly["online_chips.rented"].iloc[0] == pytest.approx(chip_hours / horizon_h)
    assert "burst" not in without.summary["inference"]["chat"] and "burst" not in results.summary


def test_no_rental_when_the_slo_is_met(tmp_path):
    results = sim.run(scenario(tmp_path, rate=2.0))
    chat = results.summary["inference"]["chat"]
    assert chat["slo_attainment"] >= 0.99
    assert chat["burst"] == {"rentals": 0, "rented_replica_hours": 0.0, "rental_usd": 0.0, "windows_s": []}
    assert rental(results) == 0.0 and "inference_chips.cloud" not in results.timeseries
    assert results.monthly["online_chips.rented"].sum() == 0


def test_serving_burst_is_deterministic(tmp_path, runs):
    again = sim.run(scenario(tmp_path))
    assert again.summary["inference"] == runs[0].summary["inference"]


BAD = SCENARIO.replace("RATE", "10") .replace(
    "  - {name: cloud, accelerator: h100-sxm, count: 8, owner: rented}\n",
    "  - {name: cloud, accelerator: h100-sxm, count: 8, owner: rented}\n"
    "  - {name: own, accelerator: h100-sxm, count: 8}\n"
    "  - {name: res, accelerator: h100-sxm, count: 8, owner: rented, rental_term: reserved-1y,"
    " rental_usd_per_chip_hour: 2.0}\n"
    "  - {name: drn, accelerator: h100-sxm, count: 8, owner: rented, online_until: 2026-01-03, drain: 1h}\n")


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("group, where, expected", [
    ("{pool: own, count: 8, burst: {slo_attainment_below: 0.9}}", "burst", "found burst on pool 'own', an owned pool"),
    ("{pool: res, count: 8, burst: {slo_attainment_below: 0.9}}", "burst", "rented under reserved-1y"),
    ("{pool: cloud, count: 8, burst: {slo_attainment_below: 0}}", "burst.slo_attainment_below", "found 0"),
    ("{pool: cloud, count: 8, burst: {slo_attainment_below: 1.5}}", "burst.slo_attainment_below", "found 1.5"),
    ("{pool: cloud, count: 8, burst: {slo_attainment_below: 0.9, provisioning_delay: -1min}}",
     "burst.provisioning_delay", "-1min"),
    ("{pool: cloud, count: 8, burst: {slo_attainment_below: 0.9, min_rental: -1h}}", "burst.min_rental", "-1h"),
    ("{pool: cloud, count: 8, autoscale: {min_count: 1}, burst: {slo_attainment_below: 0.9}}", "burst",
     "found burst together with autoscale"),
    ("{pool: cloud, count: 4, burst: {slo_attainment_below: 0.9}}", "burst", "accepted: fleet[1].count: 4"),
    ("{pool: drn, count: 8, burst: {slo_attainment_below: 0.9}}", "burst", "which has deliveries, retirements or a "
     "drain"),
])
def test_bad_serving_burst_is_located(tmp_path, group, where, expected):
    errors = problems(tmp_path, BAD + f"        - {group}\n")
    path = tmp_path / "s.yaml"
    line = BAD.count("\n") + 1  # the group's line
    located = [e for e in errors if e.startswith(f"{path}:{line} workloads.inference[0].replicas[1].{where}")]
    assert located and expected in located[0], errors


def test_cli_refuses_a_bad_burst_with_status_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD + "        - {pool: own, count: 8, burst: {slo_attainment_below: 0.9}}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "replicas[1].burst: found burst on pool 'own', an owned pool" in err and "Traceback" not in err


REQUEST = (SCENARIO.replace("RATE", "0.5").replace("fidelity: fluid", "fidelity: request")
           .replace("duration: 3d", "duration: 1d")
           .replace("chips_per_replica: 1}", "chips_per_replica: 1, max_seqs: 3}"))


def test_request_level_burst_rents_after_low_hours_and_serves_only_in_its_windows(tmp_path):
    without = served(load_text(tmp_path, REQUEST), tmp_path)
    offered, met = slo_outcome(without.result, without.service.slo)[:2]
    attainment = request_attainment(without.requests["arrival_s"].to_numpy(), offered, met, HOUR, DAY)
    expected = expected_windows(attainment)
    assert 0 < len(expected) and (attainment < 0.99).sum() < 12  # the base replica misses the SLO near the peak
    path = tmp_path / "burst.yaml"
    path.write_text(REQUEST + BURST)
    run = served(sim.load(path), tmp_path)
    assert [list(w) for w in run.burst_windows] == expected
    # requests reach the rented replicas (the copies after the base group) only while they are rented
    arrival = run.requests["arrival_s"].to_numpy()
    rented = run.result["group"] >= 1
    inside = np.zeros(len(arrival), dtype=bool)
    for begin, end in expected:
        inside |= (arrival >= begin) & (arrival < end)
    assert rented.any() and not (rented & ~inside).any()
    chat = run.summary()
    assert chat["burst"]["windows_s"] == expected
    assert chat["slo_attainment"] > without.summary()["slo_attainment"] + 0.005
    chip_hours = sum(e - b for b, e in expected) * 8 / HOUR
    assert chat["burst"]["rental_usd"] == pytest.approx(chip_hours * H100_RATE)


# --- ranking services -----------------------------------------------------------------------------------------
RANKING = """\
schema_version: 1
name: ranking-burst
start: 2026-01-01
duration: DURATION
fleet:
  - {name: mtia, accelerator: mtia-v2, count: 24, chips_per_server: 24, servers_per_rack: 1}
  - {name: cloud, accelerator: h100-sxm, count: 8, owner: rented}
workloads:
  inference:
    - name: feed
      model: dlrm-dcnv2
      family: ranking
      fidelity: FIDELITY
      fluid_bin: 5min
      slo: {latency_p99_ms: 25}
      router: {kind: ROUTER}
      traffic:
        generator:
          rate_per_s: RATE
          items_per_request: {lognormal: {median: 2000, sigma: 0.5}}
          diurnal: {amplitude_frac: 0.8, peak_hour: 14}
      replicas:
        - {pool: mtia, count: 2, chips_per_replica: 1, max_batch: 1}
"""
RANKING_BURST = """\
        - pool: cloud
          count: 4
          chips_per_replica: 2
          max_batch: 32
          burst: {slo_attainment_below: 0.99, provisioning_delay: 10min, min_rental: 1h, interval: 1h}
"""


def ranking(tmp_path, fidelity: str = "fluid", rate: float = 560.0, duration: str = "3d", burst: bool = True,
            router: str = "least-work"):
    text = (RANKING.replace("FIDELITY", fidelity).replace("RATE", str(rate)).replace("DURATION", duration)
            .replace("ROUTER", router))
    return load_text(tmp_path, text + (RANKING_BURST if burst else ""))


def test_a_fluid_ranking_service_rents_its_burst_group_after_low_hours(tmp_path):
    first = served(ranking(tmp_path, burst=False), tmp_path)
    attainment = interval_attainment(first.result["edges"], first.result["offered_per_bin"],
                                     first.result["met_per_bin"], HOUR, 3 * DAY)
    expected = expected_windows(attainment)
    assert 0 < (attainment < 0.99).sum() < len(attainment) / 3  # two MTIA replicas miss the SLO near the peaks
    assert len(expected) == 3  # one per day
    results = sim.run(ranking(tmp_path))
    feed = results.summary["inference"]["feed"]
    assert feed["burst"]["windows_s"] == expected
    assert feed["burst"]["rented_replica_hours"] == pytest.approx(4 * sum(e - b for b, e in expected) / HOUR)
    chip_hours = sum(e - b for b, e in expected) * 8 / HOUR
    assert rental(results) == pytest.approx(chip_hours * H100_RATE) == feed["burst"]["rental_usd"]
    without = sim.run(ranking(tmp_path, burst=False)).summary["inference"]["feed"]
    assert feed["slo_attainment"] > without["slo_attainment"] + 0.005
    assert feed["by_accelerator"]["h100-sxm"]["completed"] > 0
    assert feed["requests"]["offered"] == without["requests"]["offered"]  # the same traffic in both passes
    assert sim.run(ranking(tmp_path)).summary["inference"]["feed"] == feed  # deterministic


def test_a_request_level_ranking_service_serves_its_burst_group_only_in_its_windows(tmp_path):
    # one MTIA v2 replica on large queries (60,000 items, about 27 queries/s at most) over a 12 h diurnal peak, so
    # the request level stays small (about 520,000 queries); half-hour intervals, 5 min to provision, 30 min rentals
    text = (RANKING.replace("FIDELITY", "request").replace("RATE", "8").replace("DURATION", "12h")
            .replace("ROUTER", "least-work").replace("median: 2000, sigma: 0.5", "median: 60000, sigma: 0.1")
            .replace("latency_p99_ms: 25", "latency_p99_ms: 150").replace("peak_hour: 14", "peak_hour: 6")
            .replace("count: 2, chips_per_replica: 1, max_batch: 1", "count: 1, chips_per_replica: 1, max_batch: 1"))
    burst = RANKING_BURST.replace("provisioning_delay: 10min, min_rental: 1h, interval: 1h",
                                  "provisioning_delay: 5min, min_rental: 30min, interval: 30min")
    first = served(load_text(tmp_path, text), tmp_path)
    r = first.result
    arrival = r["requests"]["arrival_s"].to_numpy()
    met = (r["status"] == DONE) & (r["finish_s"] - arrival <= 0.150)
    attainment = request_attainment(arrival, r["status"] != NOT_OFFERED, met, 1800.0, 12 * HOUR)
    low = np.flatnonzero(attainment < 0.99)
    assert 0 < len(low) < len(attainment) and (np.diff(low) == 1).all()  # one run of low intervals, at the peak
    expected = [[(low[0] + 1) * 1800.0 + 300.0, (low[-1] + 2) * 1800.0 + 300.0]]
    path = tmp_path / "burst.yaml"
    path.write_text(text + burst)
    run = served(sim.load(path), tmp_path)
    assert [list(w) for w in run.burst_windows] == expected
    again = run.result["requests"]["arrival_s"].to_numpy()
    assert np.array_equal(again, arrival)  # the same requests in both passes
    rented = run.result["group"] >= 1  # the copies come after the base group
    inside = (again >= expected[0][0]) & (again < expected[0][1])
    assert rented.any() and not (rented & ~inside).any()
    feed = run.summary()
    assert feed["burst"]["windows_s"] == expected
    assert feed["slo_attainment"] > first.summary()["slo_attainment"] + 0.005
    chip_hours = (expected[0][1] - expected[0][0]) * 8 / HOUR
    assert feed["burst"]["rental_usd"] == pytest.approx(chip_hours * H100_RATE)


def test_a_ranking_burst_under_the_central_router_is_located(tmp_path):
    text = (RANKING.replace("FIDELITY", "fluid").replace("RATE", "700").replace("DURATION", "1d")
            .replace("ROUTER", "central")) + RANKING_BURST
    errors = problems(tmp_path, text)
    line = text.index("router:")
    line = text[:line].count("\n") + 1
    assert any(e.startswith(f"{tmp_path / 's.yaml'}:{line} workloads.inference[0].router.kind: found central with a "
                            "burst group (replicas[1])") for e in errors), errors
    no_slo = problems(tmp_path, text.replace("      slo: {latency_p99_ms: 25}\n", "").replace("central", "jsq"))
    assert any("replicas[1].burst: found burst without an SLO" in e and "slo: {latency_p99_ms}" in e
               for e in no_slo), no_slo
