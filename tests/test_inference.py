"""Inference services on dedicated replicas: counts add up, KV fits, chips are reserved from training,
replica power is counted, and mistakes in a service are reported with file, line and field."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from tests.conftest import BASE, scenario_from

SERVICE = {
    "name": "chat", "model": "llama3-8b", "stack": "portable",
    "replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 1}],
    "traffic": {"generator": {"rate_per_s": 4.0, "prompt_tokens": {"lognormal": {"median": 800, "sigma": 0.8}},
                              "output_tokens": {"exponential": {"mean": 150}}}},
    "slo": {"ttft_p99_ms": 500, "tpot_p99_ms": 60},
}


def with_service(service_overrides: dict | None = None, **scenario_overrides) -> dict:
    data = copy.deepcopy(BASE)
    data["duration"] = "30min"
    service = copy.deepcopy(SERVICE)
    service.update(service_overrides or {})
    data["workloads"]["inference"] = [service]
    data.update(scenario_overrides)
    return data


def test_requests_accounted_and_kv_within_capacity(tmp_path):
    results = sim.run(scenario_from(with_service(), tmp_path))
    chat = results.summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] > 1000
    assert r["not_offered"] == 0  # a generator draws arrivals inside the horizon only
    assert chat["kv_peak_tokens"] <= chat["kv_capacity_tokens"]
    assert 0 < chat["slo_attainment"] <= 1 and chat["goodput_rps"] <= r["completed"] / 1800
    assert chat["ttft_s"]["p50"] <= chat["ttft_s"]["p99"] and chat["tpot_s"]["p50"] > 0
    assert set(chat["by_accelerator"]) == {"h100-sxm"}


def test_same_seed_same_service_results(tmp_path):
    scenario = scenario_from(with_service(), tmp_path)
    assert sim.run(scenario).summary["inference"] == sim.run(scenario).summary["inference"]
    other = sim.run(scenario.with_overrides({"seed": 5})).summary["inference"]
    assert other != sim.run(scenario).summary["inference"]


def test_overload_shows_up_as_slo_misses_and_unfinished_requests(tmp_path):
    light = sim.run(scenario_from(with_service(), tmp_path)).summary["inference"]["chat"]
    heavy_service = {"traffic": {"generator": {**SERVICE["traffic"]["generator"], "rate_per_s": 200.0}}}
    heavy = sim.run(scenario_from(with_service(heavy_service), tmp_path, "heavy.yaml")).summary["inference"]["chat"]
    assert heavy["slo_attainment"] < light["slo_attainment"]
    assert heavy["requests"]["unfinished"] > 0
    assert heavy["ttft_s"]["p99"] > light["ttft_s"]["p99"]


def test_replica_chips_are_reserved_from_training_and_draw_power_while_serving(tmp_path):
    data = with_service({"replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 8}]})
    data["workloads"]["training"]["generator"].update(jobs=10, chips={16: 1.0}, stacks={"cuda": 1.0})
    results = sim.run(scenario_from(data, tmp_path))
    # all 16 GPU chips serve inference: a 16-chip CUDA training job can never run
    arrived = results.jobs[results.jobs["state"] != "beyond-horizon"]
    assert len(arrived) > 0 and (arrived["state"] == "rejected").all()
    assert arrived["reason"].str.contains("gpu: gang-larger-than-pool").all()
    # the replicas' chips are busy while they iterate, not all the time
    util = results.summary["utilization_by_accelerator"]["h100-sxm"]
    assert 0.05 < util < 1.0
    # the peak (like the cap reservation) counts replica chips at full load
    assert results.summary["peak_it_power_kw"] >= 16 * 700 * 1.3 / 1e3
    # energy follows load: between all-idle and all-busy for the 16 GPU chips, plus the idle TPUs
    hours = results.summary["horizon_s"] / 3600
    per_400g = builtin_catalog().site_defaults["network_w_per_400gbps"]  # switches, idle or busy: H100 400 Gb/s,
    switches_kwh = 16 * per_400g * (1 + 25 / 400) * hours / 1e3  # a TPU v6e 25 Gb/s of scale-out bandwidth
    idle_kwh = (16 * 70 + 16 * 59) * 1.3 * hours / 1e3 + switches_kwh
    busy_kwh = (16 * 700 + 16 * 59) * 1.3 * hours / 1e3 + switches_kwh
    assert idle_kwh < results.summary["it_energy_kwh"] < busy_kwh


@pytest.mark.parametrize("service, expected", [
    ({"model": "resnet50"}, "model: not an LLM with a KV cache: 'resnet50'"),
    ({"model": "llama3-405b"}, "does not fit on 1 × h100-sxm"),
    ({"replicas": [{"pool": "gpux", "count": 1}]}, "pool: unknown pool 'gpux' (did you mean 'gpu'?)"),
    ({"replicas": [{"pool": "gpu", "count": 20}]}, "cannot hold all the replicas"),
    ({"replicas": [{"pool": "tpu", "count": 1}], "stack": "cuda"}, "stack 'cuda' does not run on tpu-v6e"),
    ({"replicas": [{"pool": "gpu", "count": 1, "chips_per_replica": 16}]}, "at most 8"),
    ({"family": "retrieval"}, "family: found 'retrieval'"),
    ({"family": "ranking"}, "not a ranking model with embedding lookups: 'llama3-8b'"),
])
def test_service_mistakes_are_reported(tmp_path, service, expected):
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(with_service(service), tmp_path)
    text = str(info.value)
    assert expected in text and "workloads.inference[0]" in text and "s.yaml:" in text


def test_request_rows_and_plots_are_written_when_asked(tmp_path):
    data = with_service()
    data["outputs"] = {"requests_csv": True}
    results = sim.run(scenario_from(data, tmp_path))
    out = results.save(tmp_path / "out")
    rows = (out / "requests.csv").read_text().splitlines()
    assert rows[0] == "service,accelerator,arrival_s,prompt_tokens,output_tokens,first_token_s,finish_s,state"
    assert len(rows) - 1 == results.summary["inference"]["chat"]["requests"]["offered"]
    assert (out / "latency.png").stat().st_size > 0 and (out / "served.png").stat().st_size > 0
    assert not (sim.run(scenario_from(with_service(), tmp_path, "quiet.yaml")).save(tmp_path / "q", plots=False)
                / "requests.csv").exists()


def test_request_rows_can_be_sampled(tmp_path):
    from sim.results.results import sampled_rows

    rows = pd.DataFrame({"service": ["a"] * 1000 + ["b"] * 10, "arrival_s": np.arange(1010.0)})
    sample = sampled_rows(rows, 0.01)
    assert (sample["service"] == "a").sum() == 10 and (sample["service"] == "b").sum() == 0
    assert sample["arrival_s"].is_monotonic_increasing and sampled_rows(rows, 1.0) is rows
    data = with_service()
    data["outputs"] = {"requests_csv": True, "requests_csv_fraction": 0.1}
    results = sim.run(scenario_from(data, tmp_path))
    written = len((results.save(tmp_path / "s", plots=False) / "requests.csv").read_text().splitlines()) - 1
    assert written == results.summary["inference"]["chat"]["requests"]["offered"] // 10


def _generator(**pattern):
    from sim.scenario.inference_schema import RequestGenerator

    return RequestGenerator(rate_per_s=2.0, prompt_tokens={"fixed": 100}, output_tokens={"fixed": 10}, **pattern)


def test_diurnal_traffic_peaks_at_its_hour_and_keeps_its_mean():
    import numpy as np

    from sim.serving.traffic import poisson_arrivals

    horizon = 10 * 86400.0
    arrival = poisson_arrivals(_generator(diurnal={"amplitude_frac": 0.8, "peak_hour": 15}), horizon,
                               np.random.default_rng(0))
    assert len(arrival) / horizon == pytest.approx(2.0, rel=0.02)
    by_hour = np.bincount((arrival // 3600 % 24).astype(int), minlength=24)
    assert by_hour.argmax() in (14, 15, 16) and by_hour.argmin() in (2, 3, 4)
    assert by_hour.max() / by_hour.min() > 5  # (1 + 0.8) / (1 - 0.8) = 9 at the extremes


def test_bursty_traffic_is_overdispersed_and_keeps_its_mean():
    import numpy as np

    from sim.serving.traffic import poisson_arrivals

    horizon = 5 * 86400.0
    bursty = poisson_arrivals(_generator(bursty={"burst_factor": 6, "mean_burst_s": 120, "mean_calm_s": 600}),
                              horizon, np.random.default_rng(1))
    plain = poisson_arrivals(_generator(), horizon, np.random.default_rng(1))
    assert len(bursty) / horizon == pytest.approx(2.0, rel=0.05)
    per_minute = [np.bincount((a // 60).astype(int)) for a in (bursty, plain)]
    dispersion = [counts.var() / counts.mean() for counts in per_minute]
    assert dispersion[1] == pytest.approx(1.0, abs=0.1) and dispersion[0] > 3


def test_only_one_traffic_pattern():
    with pytest.raises(Exception, match="at most one of diurnal and bursty"):
        _generator(diurnal={}, bursty={})


def test_replicas_on_a_late_pool_are_active_from_its_date_and_one_size_on_a_shared_pool(tmp_path):
    late = with_service(duration="2d")
    late["fleet"][0]["online_from"] = "2026-01-02"  # replicas follow their pool (tests/test_serving_capacity.py)
    assert scenario_from(late, tmp_path, "late.yaml").fleet[0].online_from.isoformat() == "2026-01-02"
    late["workloads"]["inference"][0]["replicas"][0]["autoscale"] = {"min_count": 1}
    late["fleet"][0]["sharing"] = "shared"
    with pytest.raises(sim.ScenarioError) as info:  # but an autoscaled group is active all run
        scenario_from(late, tmp_path, "late.yaml")
    assert "late.yaml:" in str(info.value) and "workloads.inference[0].replicas[0].autoscale" in str(info.value)
    mixed = with_service({"replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 1},
                                       {"pool": "gpu", "count": 1, "chips_per_replica": 2}]})
    mixed["fleet"][0]["sharing"] = "shared"
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(mixed, tmp_path, "mixed.yaml")
    assert "mixed.yaml:" in str(info.value) and "accepted: one chips_per_replica" in str(info.value)
    mixed["fleet"][0]["sharing"] = "dedicated"  # a static partition cannot fragment
    scenario_from(mixed, tmp_path, "fine.yaml")


def test_a_request_generator_reads_its_empirical_file_next_to_the_scenario(tmp_path, monkeypatch):
    """Request-level serving resolves an empirical length file against the scenario's folder, as
    validation and the fluid fidelity do (it used to look in the current directory), and the manifest
    lists the file."""
    (tmp_path / "prompts.csv").write_text("prompt_tokens\n500\n700\n")
    gen = {**SERVICE["traffic"]["generator"], "prompt_tokens": {"empirical": "prompts.csv"}}
    scenario = scenario_from(with_service({"traffic": {"generator": gen}}), tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    results = sim.run(scenario)
    assert set(results.requests["prompt_tokens"]) == {500, 700}
    assert any(path.endswith("prompts.csv") for path in results.manifest["input_files"])


def test_drawn_token_counts_are_whole_and_bounded():
    from sim.serving.llm.requests import token_counts
    from sim.workload.requests import MAX_TOKENS

    drawn = np.array([0.2, 3.5, 1e30, np.finfo(float).max, 7.0])
    assert token_counts(drawn).tolist() == [1, 4, MAX_TOKENS, MAX_TOKENS, 7]
