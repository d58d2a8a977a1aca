"""The llm-pretraining-gpu-vs-tpu scenario and the summary's ``training_by_accelerator`` (sim.results.compute):
the same run once per chip type, and each chip type's days, MFU, bottleneck and energy taken from its jobs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.results.compute import training_by_accelerator
from tests.conftest import SCENARIOS


@pytest.fixture(scope="module")
def pretraining():
    return sim.run(sim.load(SCENARIOS / "llm-pretraining-gpu-vs-tpu.yaml"))


def test_the_same_run_once_on_each_chip(pretraining):
    jobs = pretraining.jobs
    assert sorted(jobs["accelerator"]) == ["h100-sxm", "tpu-v7"]
    assert (jobs["state"] == "completed").all() and (jobs["start_s"] < 1.0).all()  # idle pools: no wait
    assert jobs["model"].nunique() == 1 and jobs["chips"].nunique() == 1
    assert sorted(jobs["software_stack"]) == ["cuda", "xla"]


def test_training_by_accelerator_is_each_jobs_figures(pretraining):
    by_chip = pretraining.summary["training_by_accelerator"]
    money = pretraining.summary["money"]["cost_per_completed_job_usd"]
    price = pretraining.scenario.site.electricity_usd_per_kwh
    assert set(by_chip) == {"h100-sxm", "tpu-v7"}
    for _, job in pretraining.jobs.iterrows():
        row = by_chip[job["accelerator"]]
        assert row["jobs"] == 1 and row["chips"] == job["chips"]
        assert math.isclose(row["run_days"], (job["end_s"] - job["start_s"]) / 86400.0)
        assert math.isclose(row["mfu"], job["mfu"])
        assert row["bottleneck"] == job["bottleneck"]
        assert math.isclose(row["bottleneck_share"], job["bottleneck_share"])
        assert math.isclose(row["energy_mwh"] * 1e3 * price, money[job["accelerator"]]["mean_energy_usd"])
    # against the published scale: LLAMA3 Table 4, 43 % MFU on 8,192 H100 at this batch and sequence length
    assert 0.35 <= by_chip["h100-sxm"]["mfu"] <= 0.52
    assert 1.0 < by_chip["tpu-v7"]["run_days"] < by_chip["h100-sxm"]["run_days"] < 30.0  # 2.3x the peak FLOP/s


def _table(rows):
    columns = ["accelerator", "state", "chips", "start_s", "end_s", "mfu", "bottleneck", "bottleneck_share"]
    return pd.DataFrame(rows, columns=columns)


def test_the_bottleneck_is_the_term_with_most_chip_hours():
    jobs = _table([
        ("a", "completed", 8, 0.0, 86400.0, 0.5, "compute", 0.8),       # 8 chip-days
        ("a", "completed", 8, 0.0, 86400.0, 0.4, "compute", 0.6),       # 8 chip-days
        ("a", "completed", 64, 0.0, 43200.0, 0.2, "scale-out-network", 0.7),    # 32 chip-days: bounds the most
        ("a", "completed", 64, 0.0, 43200.0, 0.3, "scale-out-network", 0.5),
        ("a", "running", 512, 0.0, np.nan, 0.9, "compute", 0.9),        # not completed: left out
        ("a", "completed", 512, 0.0, 86400.0, np.nan, "", np.nan),      # no step-time model: left out
        ("b", "completed", 512, 0.0, 86400.0, np.nan, "", np.nan),      # no transformer job at all
    ])
    energy_kwh = np.array([10.0, 20.0, 30.0, 40.0, 1e6, 1e6, 1e6])
    out = training_by_accelerator(jobs, energy_kwh)
    assert set(out) == {"a"}
    a = out["a"]
    assert a["jobs"] == 4 and a["chips"] == 36.0 and a["run_days"] == 0.75
    assert a["mfu"] == pytest.approx((0.5 * 8 + 0.4 * 8 + 0.2 * 32 + 0.3 * 32) / 80)
    assert a["bottleneck"] == "scale-out-network" and a["bottleneck_share"] == pytest.approx(0.6)
    assert a["energy_mwh"] == pytest.approx(0.025)
    assert training_by_accelerator(jobs.drop(columns="mfu"), energy_kwh) == {}
