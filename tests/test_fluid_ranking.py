"""Ranking services at fluid fidelity: they agree with the request level on throughput, busy time and mean
latency at stable loads, their counts add up, queries too large for any replica are rejected as the items
distribution says, overload builds a backlog that drains, and the family is chosen by fidelity."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.catalog.efficiency import stack_efficiency
from sim.serving import FAMILIES
from sim.serving.family import family_key
from sim.serving.ranking.family import RankingFluidService, RankingService
from sim.serving.ranking.model import ranking_cost
from sim.workload.distributions import cdf
from tests.conftest import REPO, SCENARIOS, scenario_from
from tests.test_fluid import _served
from tests.test_ranking import with_ranking

ITEMS = {"lognormal": {"median": 2000, "sigma": 0.5}}
MTIA = {"pool": "mtia", "count": 4, "chips_per_replica": 1, "max_batch": 4, "max_queue_delay_ms": 2}
H100 = {"pool": "gpu", "count": 1, "chips_per_replica": 2, "max_batch": 32, "max_queue_delay_ms": 2}


def _service(group: dict, rate: float, **changes) -> dict:
    return {"replicas": [group], "router": {"kind": "least-work"},
            "traffic": {"generator": {"rate_per_s": rate, "items_per_request": ITEMS}}, **changes}


def _both(tmp_path, service: dict, duration: str = "3min") -> list[tuple[dict, float]]:
    """(summary, busy fraction of the service's chips) at request and at fluid fidelity."""
    out = []
    for fidelity in ("request", "fluid"):
        results = sim.run(scenario_from(with_ranking({**service, "fidelity": fidelity}, duration=duration),
                                        tmp_path, f"{fidelity}.yaml"))
        series = results.timeseries
        horizon = float(results.scenario.duration)
        widths = np.diff(np.append(series["time_s"].to_numpy(), horizon))
        busy = sum(float((series[c] * widths).sum()) for c in series.columns if c.startswith("busy_chips."))
        chips = sum(g["count"] * g["chips_per_replica"] for g in service["replicas"])
        out.append((results.summary["inference"]["feed"], busy / (chips * horizon)))
    return out


# measured differences fluid vs request (3 min, the seed of BASE): items/s, busy fraction, mean latency, p99, batches
#   mtia-light  (4 × MTIA v2, max_batch 4, 300 q/s,  busy 18 %): +0.07 %, +0.10 %, −0.22 %, −0.55 %, +0.2 %
#   mtia-medium (4 × MTIA v2, max_batch 4, 1100 q/s, busy 65 %): +0.25 %, −2.7 %, +0.92 %, −8.2 %, −17 %
#   h100-light  (1 × 2 H100, max_batch 32, 300 q/s,  busy 13 %): +0.06 %, +0.29 %, −2.0 %, −6.3 %, +0.4 %
#   h100-medium (1 × 2 H100, max_batch 32, 3000 q/s, busy 61 %): −0.05 %, +0.10 %, −4.5 %, −16 %, +0.4 %
#   mtia-medium-round-robin (as mtia-medium, busy 65 %):     +0.25 %, −2.9 %, +0.28 %, −17 %, −18 %
@pytest.mark.parametrize("group, rate, medium, router", [
    (MTIA, 300.0, False, "least-work"), (MTIA, 1100.0, True, "least-work"), (H100, 300.0, False, "least-work"),
    (H100, 3000.0, True, "least-work"), (MTIA, 1100.0, True, "round-robin")],
    ids=["mtia-light", "mtia-medium", "h100-light", "h100-medium", "mtia-medium-round-robin"])
def test_request_level_and_fluid_agree_on_throughput_busy_time_and_mean_latency(tmp_path, group, rate, medium,
                                                                                router):
    (request, request_busy), (fluid, fluid_busy) = _both(tmp_path, _service(group, rate, router={"kind": router}))
    assert fluid["fidelity"] == "fluid" and "fidelity" not in request
    assert (0.5 < request_busy < 0.75) if medium else (request_busy < 0.25)  # stable loads
    assert fluid["items_per_s"] == pytest.approx(request["items_per_s"], rel=0.05)
    assert fluid["requests"]["completed"] == pytest.approx(request["requests"]["completed"], rel=0.05)
    assert fluid_busy == pytest.approx(request_busy, rel=0.05)
    assert fluid["latency_s"]["mean"] == pytest.approx(request["latency_s"]["mean"], rel=0.05)
    assert fluid["latency_s"]["p50"] == pytest.approx(request["latency_s"]["p50"], rel=0.15)
    assert fluid["latency_s"]["p99"] == pytest.approx(request["latency_s"]["p99"], rel=0.25)
    assert fluid["batches"] == pytest.approx(request["batches"], rel=0.2)  # the batch size is a mean (module doc)
    assert fluid["it_energy_per_1k_requests_kwh"] == pytest.approx(request["it_energy_per_1k_requests_kwh"], rel=0.05)
    assert set(fluid) - {"fidelity"} == set(request)
    assert set(fluid["by_accelerator"]) == set(request["by_accelerator"])
    accel = "h100-sxm" if group["pool"] == "gpu" else "mtia-v2"
    assert set(fluid["by_accelerator"][accel]) == set(request["by_accelerator"][accel])


def test_mixed_chip_groups_agree_on_throughput_and_mean_latency(tmp_path):
    # MTIA and H100 groups behind one least-work router, which fills empty replicas lowest index first (the MTIA
    # ones): the ordered-entry split follows it (measured: mean −0.9 %, p99 +0.8 %); the capacity split it
    # replaced put more on the H100 (mean latency −9 %)
    service = {**_service(MTIA, 1000.0), "replicas": [{**MTIA, "max_batch": 1}, H100]}
    (request, _), (fluid, _) = _both(tmp_path, service)
    assert fluid["items_per_s"] == pytest.approx(request["items_per_s"], rel=0.05)
    assert fluid["latency_s"]["mean"] == pytest.approx(request["latency_s"]["mean"], rel=0.05)
    assert fluid["requests"]["completed"] == pytest.approx(request["requests"]["completed"], rel=0.05)
    total = sum(fluid["by_accelerator"][a]["items_per_s"] for a in ("h100-sxm", "mtia-v2"))
    assert total == pytest.approx(fluid["items_per_s"], rel=1e-9)


def test_slo_aware_fills_the_cheapest_group_first_as_the_request_level_router_does():
    # recsys-on-asics: the slo-aware router sends nearly every query to MTIA v2 (cheaper per query); a capacity
    # split would send most to the H100 (measured over 10 min: mean latency 4.08 ms request level against 4.09 ms
    # fluid, p99 10.8 against 11.4 ms, H100 queries 563 against 93 of 539,000; a capacity split gave 2.53 ms and
    # 81 % of the queries on the H100 over the 30-minute run)
    scenario = sim.load(SCENARIOS / "recsys-on-asics.yaml").with_overrides({"duration": "10min"})
    request = sim.run(scenario).summary["inference"]["feed"]
    fluid = sim.run(scenario.with_overrides({"workloads.inference.0.fidelity": "fluid"})).summary["inference"]["feed"]
    assert fluid["items_per_s"] == pytest.approx(request["items_per_s"], rel=0.05)
    assert fluid["latency_s"]["mean"] == pytest.approx(request["latency_s"]["mean"], rel=0.05)
    assert fluid["it_energy_per_1k_requests_kwh"] == pytest.approx(request["it_energy_per_1k_requests_kwh"], rel=0.05)
    for summary in (request, fluid):
        assert summary["by_accelerator"]["h100-sxm"]["completed"] < 0.01 * summary["completed"]


def test_fluid_counts_add_up_and_oversized_queries_are_rejected(tmp_path):
    items = {"lognormal": {"median": 40000, "sigma": 1.0}}  # MTIA v2 holds ~80k items of activations
    service = {"fidelity": "fluid", "replicas": [MTIA],
               "traffic": {"generator": {"rate_per_s": 20.0, "items_per_request": items}}}
    scenario = scenario_from(with_ranking(service, duration="1h"), tmp_path)
    summary = sim.run(scenario).summary["inference"]["feed"]
    r = summary["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == 20 * 3600
    catalog = builtin_catalog()
    chip = catalog.accelerators["mtia-v2"]
    cap = ranking_cost(catalog.models["dlrm-dcnv2"], chip, 1, stack_efficiency(chip, "portable", ())).max_items
    dist = scenario.workloads.inference[0].traffic.generator.items_per_request
    expected = 20 * 3600 * (1.0 - float(cdf(dist, np.array([float(cap)]))[0]))
    assert r["rejected"] == pytest.approx(expected, abs=1) and r["rejected"] > 1000
    assert summary["rejected_reasons"] == {"items-exceed-replica-memory": r["rejected"]}
    assert summary["slo_attainment"] <= r["completed"] / r["offered"]


def test_overload_builds_a_backlog_that_drains(tmp_path):
    service = {**_service(MTIA, 1500.0, fidelity="fluid"),
               "traffic": {"generator": {"rate_per_s": 1500.0, "items_per_request": ITEMS,
                                         "diurnal": {"amplitude_frac": 0.9, "peak_hour": 12}}}}
    scenario = scenario_from(with_ranking(service, duration="1d"), tmp_path)
    _, served = _served(scenario, tmp_path)
    group = served[0]["groups"][0]
    backlog = group["backlog_per_bin"]
    assert backlog.max() > 1e5 and backlog[0] == 0 and backlog[-1] == 0  # builds at the peak, gone by night
    busy = group["busy_chip_s"] / (60.0 * 4)
    assert np.allclose(busy[backlog > 0], 1.0) and (busy < 0.5).any()
    assert np.isclose(group["served_per_bin"].sum(), group["offered"])
    summary = sim.run(scenario).summary["inference"]["feed"]
    assert summary["latency_s"]["p99"] > 1.0 and summary["slo_attainment"] < 0.9


def test_fluid_ranking_is_deterministic_and_its_busy_time_feeds_power(tmp_path):
    data = with_ranking({"fidelity": "fluid"}, duration="3h")
    data["outputs"] = {"timeseries_interval": "7min"}  # not a multiple of the 1-minute fluid bins
    scenario = scenario_from(data, tmp_path)
    first = sim.run(scenario)
    assert first.summary == sim.run(scenario).summary
    _, served = _served(scenario, tmp_path)
    series = first.timeseries
    widths = np.diff(np.append(series["time_s"].to_numpy(), 3 * 3600.0))
    for accel, busy in (("mtia-v2", served[0]["busy_chip_s"][0]), ("h100-sxm", served[0]["busy_chip_s"][1])):
        assert float((series[f"busy_chips.{accel}"] * widths).sum()) == pytest.approx(float(busy.sum()), rel=1e-9)
    assert first.requests.empty and "feed" in first.fluid_load


def test_a_year_of_a_diurnal_ranking_service_at_one_minute_bins_accounts_for_every_query(tmp_path):
    """The fleet-scale use: a year at 1-minute bins (its speed is measured by benchmarks/ranking_fluid_year.py)."""
    data = with_ranking({"fidelity": "fluid"}, duration="365d")
    summary = sim.run(scenario_from(data, tmp_path)).summary["inference"]["feed"]
    r = summary["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == round(1500 * 365 * 86400)


def test_growth_points_multiply_the_fluid_ranking_load(tmp_path):
    """Dated growth points need the scenario start; fluid ranking passes it on (it raised without it)."""
    steady = with_ranking({"fidelity": "fluid"}, duration="2d")
    grown = with_ranking({"fidelity": "fluid"}, duration="2d")
    grown["workloads"]["inference"][0]["traffic"]["generator"]["growth"] = {
        "points": {"2026-01-01": 1.0, "2026-01-02": 3.0}}  # the second day at 3x, the first rising to it
    offered = [sim.run(scenario_from(d, tmp_path, f"{n}.yaml")).summary["inference"]["feed"]["requests"]["offered"]
               for n, d in (("steady", steady), ("grown", grown))]
    assert offered[1] == pytest.approx(offered[0] * (2.0 + 3.0) / 2, rel=1e-6)  # mean multiplier: (2 + 3) / 2


def test_fidelity_picks_the_ranking_family(tmp_path):
    assert FAMILIES["ranking-fluid"] is RankingFluidService and FAMILIES["ranking"] is RankingService
    scenario = scenario_from(with_ranking({"fidelity": "fluid"}), tmp_path)
    assert family_key(scenario.workloads.inference[0]) == "ranking-fluid"
    assert family_key(scenario.with_overrides({"workloads.inference.0.fidelity": "request"})
                      .workloads.inference[0]) == "ranking"


def _fidelity_bench():
    spec = importlib.util.spec_from_file_location("ranking_fluid_fidelity",
                                                  REPO / "benchmarks" / "ranking_fluid_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIDELITY = _fidelity_bench()
MIX2, MIX3 = "mtia+h100", "mtia+h100+tpu"
# Cells of benchmarks/ranking_fluid_fidelity.py's grid (mixed MTIA v2 + H100 [+ TPU v6e] groups behind one router,
# a constant rate at 30/60/85 % of capacity, every router, max_batch 1/16/64, max_queue_delay_ms 0.5/2/10) where
# fluid and request level agree within 5 % on items/s and mean latency (measured at 20 s: 131 of the 270 cells,
# every round-robin, least-work and central cell with one query per batch among them; here 10 s per cell, the
# cells within 3.5 % at 20 s and whose agreement holds at 10 s and under another seed: round-robin cells where a
# slow group is overloaded depend on the horizon, slo-aware ones beyond light load on the seed). The rest of the
# grid does not meet 5 %: docs/inference.md ("Ranking at the fluid fidelity") has the figures. ``FIDELITY.compare``
# applies the benchmark's reference rule: the six round-robin cells here whose MTIA group is offered more than its
# capacity (60 and 85 % load on two chips, 30 and 85 % on three, with batching) are compared with the mean of 8
# request-level seeds (within 0.6 % at 10 s; one seed: within 0.8 %).
AGREEING = [
    (MIX2, 0.3, "round-robin", 1, 0.5), (MIX3, 0.3, "round-robin", 1, 0.5), (MIX2, 0.6, "round-robin", 1, 0.5),
    (MIX3, 0.3, "round-robin", 16, 0.5), (MIX2, 0.6, "round-robin", 16, 0.5), (MIX2, 0.85, "round-robin", 16, 2.0),
    (MIX3, 0.3, "round-robin", 64, 0.5), (MIX2, 0.6, "round-robin", 64, 0.5), (MIX3, 0.85, "round-robin", 64, 10.0),
    (MIX2, 0.3, "jsq", 1, 0.5), (MIX3, 0.3, "jsq", 1, 0.5), (MIX2, 0.3, "jsq", 16, 0.5), (MIX2, 0.6, "jsq", 16, 10.0),
    (MIX3, 0.85, "jsq", 16, 10.0), (MIX2, 0.6, "jsq", 64, 0.5),
    (MIX2, 0.3, "least-work", 1, 0.5), (MIX3, 0.6, "least-work", 1, 0.5), (MIX2, 0.85, "least-work", 1, 0.5),
    (MIX3, 0.85, "least-work", 1, 2.0), (MIX2, 0.3, "least-work", 16, 2.0), (MIX3, 0.3, "least-work", 16, 0.5),
    (MIX2, 0.3, "least-work", 64, 2.0), (MIX3, 0.3, "least-work", 64, 0.5), (MIX2, 0.6, "least-work", 64, 2.0),
    (MIX3, 0.3, "central", 1, 0.5), (MIX2, 0.6, "central", 1, 0.5), (MIX3, 0.85, "central", 1, 10.0),
    (MIX2, 0.6, "central", 16, 2.0), (MIX3, 0.6, "central", 16, 10.0), (MIX2, 0.85, "central", 16, 2.0),
    (MIX3, 0.6, "central", 64, 2.0), (MIX2, 0.85, "central", 64, 10.0), (MIX3, 0.85, "central", 64, 2.0),
    (MIX2, 0.3, "slo-aware", 1, 0.5),
]
# Cells the micro-simulation metamodel (sim.serving.ranking.micro: a work- or count-aware router over mixed chips)
# brought within 5 % (one or two per mix, router and max_batch), chosen at a 4 % grid and 20,000 queries per level
# (within 2.5 % at 20 s, within 3 % at 10 s under seeds 1 and 2); at the shipped 5 % grid and 10,000 queries per
# level (more near saturation) they hold at 10 s, seed 1. The grid has 267 of 270 within 5 % now (docs/inference.md).
MICRO_AGREEING = [
    (MIX2, 0.3, "jsq", 16, 2.0), (MIX2, 0.85, "jsq", 16, 10.0), (MIX2, 0.3, "jsq", 64, 0.5),
    (MIX2, 0.85, "jsq", 64, 10.0),
    (MIX2, 0.3, "least-work", 16, 0.5), (MIX2, 0.85, "least-work", 16, 2.0), (MIX2, 0.3, "least-work", 64, 0.5),
    (MIX2, 0.85, "least-work", 64, 10.0), (MIX2, 0.3, "central", 16, 0.5), (MIX2, 0.85, "central", 16, 10.0),
    (MIX2, 0.3, "central", 64, 0.5), (MIX2, 0.6, "central", 64, 10.0), (MIX2, 0.3, "slo-aware", 16, 0.5),
    (MIX2, 0.85, "slo-aware", 16, 10.0), (MIX2, 0.3, "slo-aware", 64, 0.5), (MIX2, 0.85, "slo-aware", 64, 10.0),
    (MIX2, 0.6, "jsq", 1, 0.5), (MIX2, 0.85, "jsq", 1, 10.0), (MIX2, 0.6, "least-work", 1, 0.5),
    (MIX2, 0.85, "least-work", 1, 10.0), (MIX2, 0.6, "central", 1, 2.0), (MIX2, 0.85, "slo-aware", 1, 0.5),
    (MIX3, 0.3, "jsq", 1, 2.0), (MIX3, 0.85, "jsq", 1, 10.0), (MIX3, 0.3, "jsq", 16, 0.5), (MIX3, 0.85, "jsq", 16, 2.0),
    (MIX3, 0.3, "jsq", 64, 0.5), (MIX3, 0.85, "jsq", 64, 10.0), (MIX3, 0.3, "least-work", 1, 0.5),
    (MIX3, 0.6, "least-work", 1, 10.0), (MIX3, 0.3, "least-work", 16, 2.0), (MIX3, 0.85, "least-work", 16, 2.0),
    (MIX3, 0.3, "least-work", 64, 2.0), (MIX3, 0.85, "least-work", 64, 10.0), (MIX3, 0.3, "central", 1, 2.0),
    (MIX3, 0.85, "central", 1, 2.0), (MIX3, 0.3, "central", 16, 0.5), (MIX3, 0.85, "central", 16, 10.0),
    (MIX3, 0.3, "central", 64, 0.5), (MIX3, 0.85, "central", 64, 10.0), (MIX3, 0.3, "slo-aware", 16, 0.5),
    (MIX3, 0.85, "slo-aware", 16, 10.0), (MIX3, 0.3, "slo-aware", 64, 0.5), (MIX3, 0.85, "slo-aware", 64, 10.0),
    (MIX3, 0.85, "slo-aware", 1, 0.5),
    # round-robin with batching on mixed chips (its MTIA group at 92 % of the rate that fills it): -3.3 % at 20 s,
    # -1.0 % at 10 s under seed 1 (+4.7 % under seed 2)
    (MIX2, 0.3, "round-robin", 16, 10.0),
    # at 85 % load with batching on the 0.5 ms timer, brought in by the 1 % grid from 80 % of the ceiling rate on
    # (before, at 20 s: +5.5 to +8.6 % on two chips, -7.0 to -7.3 % on three; now within 3.6 % at 10 s under
    # seeds 1 and 2)
    (MIX2, 0.85, "jsq", 64, 0.5), (MIX2, 0.85, "least-work", 16, 0.5), (MIX2, 0.85, "central", 64, 0.5),
    (MIX3, 0.85, "jsq", 64, 0.5), (MIX3, 0.85, "least-work", 64, 0.5), (MIX3, 0.85, "central", 64, 0.5),
    # near saturation (round-robin's MTIA group 99 % busy, slo-aware's MTIA group kept at its SLO), brought in by
    # the levels run until their mean latency's standard error is 2 % (before, at 20 s: -6.7 % and +6.8 %)
    (MIX2, 0.3, "round-robin", 16, 2.0), (MIX3, 0.3, "slo-aware", 1, 0.5),
]


@pytest.mark.parametrize("mix, load, router, max_batch, delay_ms", AGREEING + MICRO_AGREEING,
                         ids=["-".join(map(str, cell)) for cell in AGREEING + MICRO_AGREEING])
def test_mixed_chip_services_agree_with_the_request_level_within_5_percent(mix, load, router, max_batch, delay_ms):
    cell = FIDELITY.compare(mix, load, router, max_batch, delay_ms, duration_s=10.0)
    assert abs(cell["items"]) <= 0.05, cell["items"]
    assert abs(cell["mean"]) <= 0.05, cell["mean"]


def _plan_and_service(mix: str, router: str, max_batch: int):
    import yaml

    from sim.fleet import build_fleet
    from sim.serving.ranking.serve import plan_service
    from sim.validation.checks import scenario_catalog

    data = FIDELITY.scenario_data(mix, router, max_batch, 2.0, 1000.0, 60.0, 1, "fluid")
    scenario = sim.load_text(yaml.safe_dump(data, sort_keys=False), "micro.yaml")
    catalog = scenario_catalog(scenario)
    service = scenario.workloads.inference[0]
    return plan_service(0, service, build_fleet(scenario, catalog), catalog, scenario.porting), service


def test_the_micro_simulation_serves_only_the_cells_where_the_analytic_model_is_poor():
    from sim.serving.ranking.fluid import serve_ranking_fluid
    from sim.serving.ranking.micro import poor_cell

    def mean_latency(plan, service, micro_seed):
        result = serve_ranking_fluid(plan, service, 60.0, 60.0, REPO, np.random.default_rng(1), None,
                                     micro_rng=None if micro_seed is None else np.random.default_rng(micro_seed))
        return [float(np.sum(g["latency"]["weight"] * g["latency"]["shift"])) for g in result["groups"]]

    for mix, router, max_batch, poor in [(MIX2, "round-robin", 1, False), ("mtia", "round-robin", 16, False),
                                         (MIX2, "round-robin", 16, True), ("mtia", "least-work", 1, False),
                                         (MIX2, "least-work", 1, True), ("mtia", "jsq", 16, True)]:
        plan, service = _plan_and_service(mix, router, max_batch)
        assert poor_cell(plan, router) == poor
        analytic, micro = mean_latency(plan, service, None), mean_latency(plan, service, 7)
        assert (analytic != micro) == poor  # the analytic model is kept where it is good
        if poor:
            assert micro == mean_latency(plan, service, 7)  # seeded: deterministic
            assert micro != mean_latency(plan, service, 8)


def test_a_level_near_saturation_runs_until_its_mean_latency_is_precise():
    from sim.serving.ranking import micro
    from sim.serving.ranking.fluid import _items_pmf

    # slo-aware on three chip types at 30 % load: the cheap MTIA group is kept at its SLO, 98 % busy, and the
    # mean latency of a 4,000-query level scatters by about 8 % between seeds (7.4 to 8.3 ms)
    plan, service = _plan_and_service(MIX3, "slo-aware", 1)
    code = micro.grid_code(0.3 * FIDELITY.capacity(MIX3, "slo-aware", 1, 2.0))
    dist = service.traffic.generator.items_per_request
    pmf, _ = _items_pmf(dist, str(REPO), max(c.max_items for c in plan.costs), None)
    means = []
    for seed in (1, 2, 3):
        level = micro.level(plan, pmf, float(micro.grid_rate(code)), seed, code, 0.025)
        assert level["queries"] > micro.MICRO_QUERIES  # run longer than the first try
        means.append(float(np.sum(level["share"] * level["mean"])))
    assert max(means) / min(means) - 1.0 <= 0.04, means


def test_the_overloaded_rule_flags_exactly_the_cells_whose_groups_are_offered_more_than_their_capacity():
    from sim.serving.ranking.fluid import capacity_per_s

    # round-robin sends the MTIA group (4 of the 5 replicas) 4/5 of the queries, whatever its speed: the rule reads
    # the fluid model's group loads (the input's split, before any comparison) and flags a load above 1 only
    plan, service = _plan_and_service(MIX2, "round-robin", 64)
    mtia = float(capacity_per_s(plan, service, REPO)[0])
    for share in (0.92, 0.95, 0.99, 1.01, 1.07):
        rate = share * mtia * 5.0 / 4.0
        _, run = FIDELITY._run(FIDELITY.scenario_data(MIX2, "round-robin", 64, 2.0, rate, 2.0, 1, "fluid"))
        loads = FIDELITY.group_loads(run)
        assert loads[0] == pytest.approx(share, rel=1e-6) and loads[1] < 0.2
        assert FIDELITY.overloaded(loads) == (share > 1.0), (share, loads)
    # the grid's cells at 30 % load on MTIA v2 + H100: max_batch 64 sends the MTIA group 107 % of its capacity,
    # max_batch 16 92 % (the group 99 % busy): only the first are compared with the mean over seeds
    for max_batch, over in ((64, True), (16, False)):
        rate = 0.3 * FIDELITY.capacity(MIX2, "round-robin", max_batch, 0.5)
        plan, service = _plan_and_service(MIX2, "round-robin", max_batch)
        share = rate * 4.0 / 5.0 / float(capacity_per_s(plan, service, REPO)[0])
        _, run = FIDELITY._run(FIDELITY.scenario_data(MIX2, "round-robin", max_batch, 0.5, rate, 2.0, 1, "fluid"))
        assert (share > 1.0) == over and FIDELITY.overloaded(FIDELITY.group_loads(run)) == over, share


def test_an_overloaded_round_robin_group_matches_the_request_levels_expected_mean_latency():
    # round-robin at 30 % load with max_batch 64: the MTIA group gets 107 % of what it can serve, so its backlog
    # grows as a random walk over the run and one request-level run's mean latency scatters by about 8 % between
    # seeds (482 to 637 ms at 20 s over seeds 1-10); the fluid backlog model gives the expectation, not one path,
    # so the benchmark's reference there is the mean over 8 seeds
    cell = FIDELITY.compare(MIX2, 0.3, "round-robin", 64, 0.5, duration_s=20.0)
    assert cell["seeds"] == FIDELITY.OVERLOAD_SEEDS == 8 and len(cell["requests"]) == 8
    assert cell["sd"] > 0.05  # the scatter of single runs the rule is for
    assert abs(cell["items"]) <= 0.05, cell["items"]
    assert abs(cell["mean"]) <= 0.05, cell["mean"]
