"""Replica groups follow capacity over time (``active_from`` / ``active_until``, ``sim.fleet.windows``): a
service moves between pools at a date without losing a request, at request level (LLM and ranking) and at the
fluid fidelity; a group on a pool that arrives later serves nothing before; training gets a group's chips
outside its window; the kernels' twins agree with windows; window mistakes are located errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import sim
from sim.fleet import build_fleet
from sim.kernels import ranking_compiled, ranking_reference, serving_compiled, serving_reference
from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, SWITCH_GONE, SWITCH_ON
from sim.validation.checks import scenario_catalog
from tests.conftest import BASE, scenario_from
from tests.test_ranking_kernel import ROUTERS as RANKING_ROUTERS
from tests.test_ranking_kernel import random_inputs
from tests.test_serving_kernel import random_case, serve

DAY = 86400.0
LENGTHS = {"prompt_tokens": {"lognormal": {"median": 800, "sigma": 0.8}},
           "output_tokens": {"exponential": {"mean": 150}}}


def llm_move(fidelity: str = "request", rate: float = 0.1, router: str = "least-work") -> dict:
    """Chat on two H100 replicas until 2026-01-02, then on two TPU v6e replicas (a two-day run)."""
    data = copy.deepcopy(BASE)
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-8b", "stack": "portable", "fidelity": fidelity, "router": {"kind": router},
        "replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 1, "active_until": "2026-01-02"},
                     {"pool": "tpu", "count": 2, "chips_per_replica": 1, "active_from": "2026-01-02"}],
        "traffic": {"generator": {"rate_per_s": rate, **LENGTHS}},
        "slo": {"ttft_p99_ms": 500, "tpot_p99_ms": 60}}]
    return data


def ranking_move(fidelity: str = "request", router: str = "least-work") -> dict:
    """A ranking feed on MTIA v2 until 2026-01-02, then on one two-GPU H100 replica."""
    data = copy.deepcopy(BASE)
    data["fleet"][1] = {"name": "mtia", "accelerator": "mtia-v2", "count": 8, "chips_per_server": 8}
    data["workloads"]["inference"] = [{
        "name": "feed", "model": "dlrm-dcnv2", "family": "ranking", "fidelity": fidelity, "router": {"kind": router},
        "replicas": [{"pool": "mtia", "count": 2, "chips_per_replica": 1, "max_batch": 8, "active_until": "2026-01-02"},
                     {"pool": "gpu", "count": 1, "chips_per_replica": 2, "max_batch": 16, "active_from": "2026-01-02"}],
        "traffic": {"generator": {"rate_per_s": 0.5, "items_per_request": {"lognormal": {"median": 1000,
                                                                                         "sigma": 0.5}}}},
        "slo": {"latency_p99_ms": 50}}]
    return data


@pytest.fixture(scope="module")
def llm_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("move")
    return {fidelity: sim.run(scenario_from(llm_move(fidelity), tmp, f"{fidelity}.yaml"))
            for fidelity in ("request", "fluid")}


@pytest.mark.parametrize("router", ["least-work", "round-robin", "jsq", "central", "slo-aware"])
def test_llm_service_moves_between_pools_without_losing_a_request(tmp_path, router):
    results = sim.run(scenario_from(llm_move(rate=0.02, router=router), tmp_path))
    requests, chat = results.requests, results.summary["inference"]["chat"]
    counts = chat["requests"]
    assert counts["offered"] == counts["completed"] + counts["rejected"] + counts["unfinished"] == len(requests)
    assert counts["rejected"] == 0 and counts["unfinished"] <= 2  # only those still in flight at the horizon
    on_gpu, on_tpu = requests["accelerator"] == "h100-sxm", requests["accelerator"] == "tpu-v6e"
    assert (on_gpu | on_tpu | (requests["state"] == "unfinished")).all()
    assert (requests.loc[on_gpu, "arrival_s"] < DAY).all() and (requests.loc[on_tpu, "arrival_s"] >= DAY).all()
    assert (requests.loc[on_tpu, "first_token_s"].dropna() >= DAY).all()  # B serves nothing before the date
    assert (requests.loc[on_gpu, "state"] == "completed").all()  # A drains what it holds at the date
    assert on_gpu.sum() > 100 and on_tpu.sum() > 100


def test_chips_cost_and_power_count_a_group_only_while_active(llm_runs):
    results = llm_runs["request"]
    series = results.timeseries
    before = series["time_s"] < DAY
    for pool, chips_before, chips_after in (("gpu", 2, 0), ("tpu", 0, 2)):
        assert (series.loc[before, f"inference_chips.{pool}"] == chips_before).all()
        assert (series.loc[~before, f"inference_chips.{pool}"] == chips_after).all()
    chat = results.summary["inference"]["chat"]
    fleet = build_fleet(results.scenario, scenario_catalog(results.scenario))
    for pool in fleet.pools:  # two one-chip replicas for one day: their chip cost, plus a little energy
        figures = chat["by_accelerator"][pool.accelerator.id]
        cost_usd = figures["cost_per_1m_tokens_usd"] * figures["output_tokens"] / 1e6
        day_usd = 2 * 24 * pool.chip_cost_usd_per_hour
        assert day_usd < cost_usd < 1.5 * day_usd


def test_fluid_and_request_level_agree_on_a_move(llm_runs):
    request, fluid = (llm_runs[f].summary["inference"]["chat"] for f in ("request", "fluid"))
    assert fluid["requests"]["rejected"] == 0
    assert fluid["requests"]["offered"] == fluid["requests"]["completed"] + fluid["requests"]["unfinished"]
    assert fluid["tokens_per_s"] == pytest.approx(request["tokens_per_s"], rel=0.03)
    for accel in ("h100-sxm", "tpu-v6e"):  # each pool's share of the work, not just the total
        assert fluid["by_accelerator"][accel]["output_tokens"] == pytest.approx(
            request["by_accelerator"][accel]["output_tokens"], rel=0.05)
        assert fluid["by_accelerator"][accel]["utilization"] == pytest.approx(
            request["by_accelerator"][accel]["utilization"], rel=0.15)
    series = llm_runs["fluid"].timeseries  # no inference on the TPUs before the date (nor training: xla jobs only
    # there; BASE's jobs run on either pool, so compare with the request level, whose TPUs serve nothing then)
    before = series["time_s"] < DAY
    request_series = llm_runs["request"].timeseries
    assert np.allclose(series.loc[before, "busy_chips.tpu-v6e"], request_series.loc[before, "busy_chips.tpu-v6e"],
                       atol=1e-6)


@pytest.mark.parametrize("router", ["least-work", "round-robin", "jsq", "slo-aware"])
def test_ranking_service_moves_between_pools_without_losing_a_query(tmp_path, router):
    results = sim.run(scenario_from(ranking_move(router=router), tmp_path))
    requests, feed = results.requests, results.summary["inference"]["feed"]
    counts = feed["requests"]
    assert counts["offered"] == counts["completed"] + counts["rejected"] + counts["unfinished"] == len(requests)
    assert counts["rejected"] == 0 and counts["unfinished"] <= 2 and feed["rejected_reasons"] == {}
    on_mtia, on_gpu = requests["accelerator"] == "mtia-v2", requests["accelerator"] == "h100-sxm"
    assert (requests.loc[on_mtia, "arrival_s"] < DAY).all() and (requests.loc[on_gpu, "arrival_s"] >= DAY).all()
    assert (requests.loc[on_mtia, "state"] == "completed").all() and on_mtia.sum() > 1000 and on_gpu.sum() > 1000


def test_ranking_fluid_follows_the_move(tmp_path):
    request = sim.run(scenario_from(ranking_move(), tmp_path, "r.yaml")).summary["inference"]["feed"]
    fluid = sim.run(scenario_from(ranking_move("fluid"), tmp_path, "f.yaml")).summary["inference"]["feed"]
    assert fluid["requests"]["rejected"] == 0 and fluid["rejected_reasons"] == {}
    for accel in ("mtia-v2", "h100-sxm"):
        assert fluid["by_accelerator"][accel]["completed"] == pytest.approx(
            request["by_accelerator"][accel]["completed"], rel=0.03)


def test_requests_when_no_group_is_active_are_rejected_with_their_reason(tmp_path):
    data = llm_move(rate=0.02)
    data["workloads"]["inference"][0]["replicas"][1]["active_from"] = "2026-01-03"  # never within the run...
    with pytest.raises(sim.ScenarioError, match="at or after the end of the run"):
        scenario_from(data, tmp_path, "never.yaml")
    data["duration"] = "3d"  # ... and within a three-day run, a gap of a day between the groups
    results = sim.run(scenario_from(data, tmp_path))
    chat, requests = results.summary["inference"]["chat"], results.requests
    gap = (requests["arrival_s"] >= DAY) & (requests["arrival_s"] < 2 * DAY)
    assert (requests.loc[gap, "state"] == "rejected").all() and (requests.loc[~gap, "state"] != "rejected").all()
    assert chat["rejected_reasons"] == {"no replica active": int(gap.sum())} and gap.sum() > 1000
    fluid = copy.deepcopy(data)
    fluid["workloads"]["inference"][0]["fidelity"] = "fluid"
    summary = sim.run(scenario_from(fluid, tmp_path, "f.yaml")).summary["inference"]["chat"]
    assert summary["rejected_reasons"]["no replica active"] == pytest.approx(gap.sum(), rel=0.05)


def test_a_group_on_a_pool_delivered_later_serves_nothing_before(tmp_path):
    data = llm_move(rate=0.02)
    data["fleet"][0].update(count=24, deliveries=[{"date": "2026-01-02", "chips": 8}])  # H100: 16 first chips
    replicas = data["workloads"]["inference"][0]["replicas"]
    replicas[0].update(count=20)
    replicas[0].pop("active_until")
    replicas[1].pop("active_from")
    with pytest.raises(sim.ScenarioError) as info:  # 20 replicas do not fit in the 16 first chips
        scenario_from(data, tmp_path, "early.yaml")
    text = str(info.value)
    assert "early.yaml:" in text and "workloads.inference[0].replicas[0].count: found 20" in text
    assert "accepted: at most 16 replicas of 1 chips, or active_from on or after a later delivery (2026-01-02)" in text
    replicas[0]["active_from"] = "2026-01-02"
    results = sim.run(scenario_from(data, tmp_path))
    requests = results.requests
    on_gpu = requests["accelerator"] == "h100-sxm"
    assert (requests.loc[on_gpu, "arrival_s"] >= DAY).all() and on_gpu.sum() > 100
    assert results.summary["inference"]["chat"]["requests"]["rejected"] == 0
    late = llm_move(rate=0.02)  # a pool that comes online later: its group is active from then, without dates
    late["fleet"][0]["online_from"] = "2026-01-02"
    late["workloads"]["inference"][0]["replicas"][0].pop("active_until")
    late["workloads"]["inference"][0]["replicas"][1].pop("active_from")
    requests = sim.run(scenario_from(late, tmp_path, "late.yaml")).requests
    on_gpu = requests["accelerator"] == "h100-sxm"
    assert (requests.loc[on_gpu, "arrival_s"] >= DAY).all() and on_gpu.sum() > 100


def test_training_uses_a_groups_chips_before_it_starts_and_is_preempted_then(tmp_path):
    data = copy.deepcopy(BASE)
    data["workloads"]["training"]["generator"].update(jobs=80, arrival_rate_per_hour=4, stacks={"xla": 1.0})
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-8b", "stack": "portable",
        "replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 1},
                     {"pool": "tpu", "count": 16, "chips_per_replica": 1, "active_from": "2026-01-02"}],
        "traffic": {"generator": {"rate_per_s": 0.02, **LENGTHS}}}]
    results = sim.run(scenario_from(data, tmp_path))
    jobs = results.jobs
    on_tpu = jobs["pool"] == "tpu"
    assert (jobs.loc[on_tpu, "start_s"] < DAY).sum() > 10  # training ran on the group's chips before its date
    assert jobs["preemptions"].sum() >= 1  # the group's start took its chips back (checkpoint semantics)
    assert results.summary["training"]["preemptions"] == jobs["preemptions"].sum()
    running_after = on_tpu & (jobs["end_s"] > DAY) & (jobs["state"] != "queued")
    assert not running_after.any()  # the whole pool serves from the date on
    series = results.timeseries
    after = series["time_s"] >= DAY
    assert (series.loc[after, "busy_chips.tpu-v6e"] <= 16 + 1e-9).all()
    assert (series.loc[~after, "inference_chips.tpu"] == 0).all()
    assert (series.loc[after, "inference_chips.tpu"] == 16).all()
    without = copy.deepcopy(data)
    without["workloads"]["inference"][0]["replicas"][1].pop("active_from")
    jobs_without = sim.run(scenario_from(without, tmp_path, "held.yaml")).jobs
    assert not (jobs_without["pool"] == "tpu").any()  # held all run: training never gets the pool


def test_window_mistakes_are_located_and_reported_together(tmp_path):
    data = llm_move()
    data["fleet"][1]["online_until"] = "2026-01-02"
    replicas = data["workloads"]["inference"][0]["replicas"]
    replicas[0].update(active_from="2026-01-02", active_until="2026-01-02")  # empty window
    replicas[1].update(active_from="2026-01-02")  # its pool leaves that day
    replicas.append({"pool": "gpu", "count": 1, "chips_per_replica": 1, "active_from": "2025-12-31"})
    replicas.append({"pool": "gpu", "count": 1, "chips_per_replica": 1, "active_until": "2026-01-01"})
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path, "w.yaml")
    text = str(info.value)
    for index, field, message in [(0, "active_until", "on or before active_from (2026-01-02)"),
                                  (1, "active_from", "pool 'tpu' leaves on 2026-01-02"),
                                  (2, "active_from", "before the scenario start 2026-01-01"),
                                  (3, "active_until", "on or before the scenario start")]:
        assert "w.yaml:" in text and f"workloads.inference[0].replicas[{index}].{field}: found" in text
        assert message in text
    mixed = llm_move()
    mixed["workloads"]["inference"][0]["replicas"].append({"pool": "gpu", "count": 1, "chips_per_replica": 2})
    with pytest.raises(sim.ScenarioError, match="accepted: one chips_per_replica"):
        scenario_from(mixed, tmp_path, "mixed.yaml")
    ranking = ranking_move(router="central")
    with pytest.raises(sim.ScenarioError, match=r"router.kind: found central"):
        scenario_from(ranking, tmp_path, "central.yaml")


@pytest.mark.parametrize("seed", range(1, 10))
def test_llm_kernel_twins_agree_with_gone_replicas(seed):
    arrival, prompt, output, groups, kwargs = random_case(seed)
    rng = np.random.default_rng(1000 + seed)
    switch_s, switch_replica, _ = kwargs["switches"]
    codes = rng.integers(0, 3, len(switch_s)).astype(np.int8)  # off, on, gone
    kwargs["switches"] = (switch_s, switch_replica, codes)
    ref = serve(serving_reference.serve_llm, arrival, prompt, output, groups, **kwargs)
    nb = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    for a, b in zip(ref, nb):
        np.testing.assert_array_equal(a, b)
    status = nb[0]
    assert set(np.unique(status)) <= {DONE, REJECTED, NOT_OFFERED, 1}


def test_llm_kernel_routes_nothing_to_a_gone_replica_and_lets_it_drain():
    arrival = np.arange(0.0, 40.0, 0.5)
    n = len(arrival)
    prompt, output = np.full(n, 200, dtype=np.int64), np.full(n, 300, dtype=np.int64)
    groups = [(1, dict(serving_compiled_params())), (1, dict(serving_compiled_params()))]
    switches = (np.array([0.0, 20.0, 20.0]), np.array([1, 0, 1], dtype=np.int64),
                np.array([SWITCH_GONE, SWITCH_GONE, SWITCH_ON], dtype=np.int8))  # replica 0 until 20 s, then 1
    for kernel in (serving_reference, serving_compiled):
        status, replica, first, finish, *_ = serve(kernel.serve_llm, arrival, prompt, output, groups,
                                                   switches=switches, horizon_s=1e4)
        assert (status == DONE).all()
        assert (replica[arrival < 20] == 0).all() and (replica[arrival >= 20] == 1).all()
        assert finish[arrival < 20].max() > 20  # replica 0 drained after its window
    switches = (np.array([0.0, 0.0]), np.array([0, 1], dtype=np.int64), np.array([SWITCH_GONE] * 2, dtype=np.int8))
    for kernel in (serving_reference, serving_compiled):
        status, replica, *_ = serve(kernel.serve_llm, arrival, prompt, output, groups, switches=switches, horizon_s=1e4)
        assert (status == REJECTED).all() and (replica == -1).all()  # nothing active: rejected, not lost


def serving_compiled_params() -> dict:
    from tests.test_serving_kernel import H100_LIKE

    return {**H100_LIKE, "token_budget": 2048, "max_seqs": 16, "kv_capacity_tokens": 100_000, "chunked_prefill": True}


@pytest.mark.parametrize("router", [r for r in RANKING_ROUTERS if r != ranking_reference.ROUTER_CENTRAL])
@pytest.mark.parametrize("seed", range(6))
def test_ranking_kernel_twins_agree_with_windows(seed, router):
    arrival, items, params = random_inputs(seed)
    rng = np.random.default_rng(500 + seed)
    begin = rng.choice([0.0, 2.5, 6.0], 4)
    params.update(active_from_s=begin, active_until_s=begin + rng.choice([1.0, 4.0, np.inf], 4))
    expected = ranking_reference.serve_ranking(arrival, items, router, **params)
    actual = ranking_compiled.serve_ranking(arrival, items, router, **params)
    for name, a, b in zip(["status", "replica", "finish_s", "busy_s", "batches"], expected, actual):
        np.testing.assert_array_equal(a, b, err_msg=name)
    status, replica = actual[0], actual[1]
    routed = replica >= 0
    assert (params["active_from_s"][replica[routed]] <= arrival[routed]).all()
    assert (arrival[routed] < params["active_until_s"][replica[routed]]).all()
    offered = status != ranking_reference.NOT_OFFERED
    inactive = ~((params["active_from_s"][None, :] <= arrival[:, None])
                 & (arrival[:, None] < params["active_until_s"][None, :])).any(axis=1)
    assert (status[offered & inactive] == REJECTED).all()


@pytest.mark.parametrize("family, fidelity", [("llm", "request"), ("llm", "fluid"), ("ranking", "request"),
                                              ("ranking", "fluid")])
def test_monthly_service_cost_counts_each_group_in_its_window(tmp_path, family, fidelity):
    """A move at 1 February: January's cost is the first group's, February's the second's, and the months
    reproduce the summary's cost per unit (``ServiceRun.cost_per_bin`` with windows)."""
    data = llm_move(fidelity, rate=0.02) if family == "llm" else ranking_move(fidelity)
    data["start"] = "2026-01-31"
    replicas = data["workloads"]["inference"][0]["replicas"]
    replicas[0]["active_until"] = replicas[1]["active_from"] = "2026-02-01"
    results = sim.run(scenario_from(data, tmp_path))
    name = data["workloads"]["inference"][0]["name"]
    unit, count = ("tokens", "output_tokens") if family == "llm" else ("requests", "completed_requests")
    monthly, summary = results.monthly, results.summary["inference"][name]
    units, per_million = monthly[f"{count}.{name}"].to_numpy(), monthly[f"cost_per_1m_{unit}_usd.{name}"].to_numpy()
    assert (per_million * units).sum() / units.sum() == pytest.approx(summary[f"cost_per_1m_{unit}_usd"], rel=1e-9)
    by_accel = summary["by_accelerator"]
    first, second = ("h100-sxm", "tpu-v6e") if family == "llm" else ("mtia-v2", "h100-sxm")
    unit_key = "output_tokens" if family == "llm" else "completed"
    cost = {a: by_accel[a][f"cost_per_1m_{unit}_usd"] * by_accel[a][unit_key] / 1e6 for a in (first, second)}
    month_cost = per_million * units / 1e6
    assert month_cost[0] == pytest.approx(cost[first], rel=0.02)  # January: the first group only
    assert month_cost[1] == pytest.approx(cost[second], rel=0.02)


def test_headroom_counts_a_group_only_while_active(llm_runs):
    """Saturation throughput (averaged over the run) counts each group for its window only, at both fidelities:
    a group that ended does not add capacity while it drains (two groups, each active half the run)."""
    request, fluid = (llm_runs[f].summary["inference"]["chat"] for f in ("request", "fluid"))
    per_type = [fluid["by_accelerator"][accel]["saturation_tokens_per_s"] for accel in ("h100-sxm", "tpu-v6e")]
    assert fluid["saturation_tokens_per_s"] == pytest.approx(sum(per_type), rel=1e-9)
    assert fluid["saturation_tokens_per_s"] == pytest.approx(request["saturation_tokens_per_s"], rel=0.1)
