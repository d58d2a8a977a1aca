"""Training statistics that say what they leave out: a warm-up, censoring counts that add up to the
submitted jobs, a lower bound on the JCT of jobs a short run cuts off; and tables pandas users can use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.results.compute import iso_datetimes
from tests.conftest import scenario_from

CENSORS = ("included", "before_warmup", "still_running", "still_queued", "rejected")


def _busy(base: dict, duration: str, warmup: str | None = None) -> dict:
    """60 jobs arriving within about 2 h on 32 chips: a short horizon cuts many of them off; the mtia
    stack runs on neither pool, so some jobs are rejected."""
    gen = base["workloads"]["training"]["generator"]
    gen.update(arrival_rate_per_hour=30, stacks={"portable": 0.5, "cuda": 0.3, "xla": 0.1, "mtia": 0.1})
    base["duration"] = duration
    if warmup is not None:
        base["outputs"] = {"warmup": warmup}
    return base


def test_jct_counts_add_up_and_name_every_left_out_job(base, tmp_path):
    results = sim.run(scenario_from(_busy(base, "5h", warmup="20min"), tmp_path))
    s, jobs = results.summary, results.jobs
    counts = s["jct_s_counts"]
    assert tuple(counts) == CENSORS
    assert sum(counts.values()) == s["jobs"]["submitted"] == 60
    assert all(counts[name] > 0 for name in CENSORS), counts  # this run exercises every reason
    after = jobs["arrival_s"] >= 1200.0
    assert counts["before_warmup"] == int((~after).sum())
    for name, state in (("still_running", "running"), ("still_queued", "queued"), ("rejected", "rejected")):
        assert counts[name] == int((after & (jobs["state"] == state)).sum())
    done = jobs[after & (jobs["state"] == "completed")]
    assert counts["included"] == len(done)
    assert s["jct_s"]["mean"] == pytest.approx((done["end_s"] - done["arrival_s"]).mean(), rel=1e-12)
    started = jobs[after & jobs["start_s"].notna()]
    assert s["queue_wait_s"]["mean"] == pytest.approx((started["start_s"] - started["arrival_s"]).mean(), rel=1e-12)
    by_accel = sum(len(done[done["accelerator"] == a]) for a in s["jct_s_by_accelerator"])
    assert by_accel == len(done) and set(s["jct_s_by_accelerator"]) == set(done["accelerator"])


def test_warmup_leaves_early_jobs_out_of_jct_and_wait(base, tmp_path):
    plain = sim.run(scenario_from(_busy(base, "5h"), tmp_path, "plain.yaml")).summary
    warm = sim.run(scenario_from(_busy(base, "5h", warmup="1h"), tmp_path, "warm.yaml")).summary
    assert plain["jct_s_counts"]["before_warmup"] == 0
    assert warm["jct_s_counts"]["before_warmup"] > 0
    assert warm["jct_s_counts"]["included"] < plain["jct_s_counts"]["included"]
    assert warm["jct_s"] != plain["jct_s"] and warm["queue_wait_s"] != plain["queue_wait_s"]
    # the warm-up changes statistics, not the simulation
    assert warm["jobs"] == plain["jobs"] and warm["it_energy_kwh"] == plain["it_energy_kwh"]


def test_a_short_run_bounds_the_jct_a_long_run_shows(base, tmp_path):
    """The same jobs over 5 h and over 60 d: the short run's completed-only JCT looks short; its lower
    bound (cut-off jobs counted to the horizon) is below the long run's true JCT, statistic by statistic."""
    short = sim.run(scenario_from(_busy(base, "5h"), tmp_path, "short.yaml")).summary
    long = sim.run(scenario_from(_busy(base, "60d"), tmp_path, "long.yaml")).summary
    assert short["jct_s_counts"]["still_running"] > 0 and short["jct_s_counts"]["still_queued"] > 0
    assert long["jct_s_counts"]["still_running"] == long["jct_s_counts"]["still_queued"] == 0
    assert long["jct_s_counts"]["rejected"] == short["jct_s_counts"]["rejected"] > 0
    assert short["jct_s"]["mean"] < long["jct_s"]["mean"]  # the bias the counts warn of
    assert long["jct_s_lower_bound"] == long["jct_s"]  # nothing censored: the bound is the JCT itself
    for stat in ("mean", "p50", "p90", "p99"):
        assert short["jct_s_lower_bound"][stat] <= long["jct_s"][stat] * (1 + 1e-12)


@pytest.mark.parametrize("warmup, duration", [("2d", "2d"), ("3d", "2d")])
def test_a_warmup_not_before_the_end_is_reported(base, tmp_path, warmup, duration):
    base.update(duration=duration, outputs={"warmup": warmup})
    with pytest.raises(sim.ScenarioError) as err:
        scenario_from(base, tmp_path)
    message = str(err.value)
    assert "s.yaml:" in message and "outputs.warmup" in message
    assert "accepted: a warm-up shorter than duration" in message


def test_timeseries_datetime_is_a_datetime_column_and_iso_text_on_disk(base, tmp_path):
    results = sim.run(scenario_from(base, tmp_path))
    column = results.timeseries["datetime"]
    assert pd.api.types.is_datetime64_any_dtype(column)
    assert column.iloc[0] == pd.Timestamp("2026-01-01") and column.iloc[25] == pd.Timestamp("2026-01-02 01:00")
    assert (column.diff().dropna() == pd.Timedelta(hours=1)).all()
    out = results.save(tmp_path / "out", plots=False)
    rows = (out / "timeseries.csv").read_text().splitlines()
    assert rows[0].startswith("time_s,datetime,") and rows[2].startswith("3600.0,2026-01-01T01:00:00,")


def test_iso_text_keeps_fractions_of_a_second():
    frame = pd.DataFrame({"datetime": np.array(["2026-01-01T00:00:00", "2026-01-01T00:00:00.5"],
                                               dtype="datetime64[us]")})
    assert iso_datetimes(frame)["datetime"].tolist() == ["2026-01-01T00:00:00", "2026-01-01T00:00:00.500000"]
    assert pd.api.types.is_datetime64_any_dtype(frame["datetime"])  # the caller's table is left as it was


def test_jobs_software_stack_column_does_not_hide_dataframe_stack(base, tmp_path):
    results = sim.run(scenario_from(base, tmp_path))
    jobs = results.jobs
    assert "software_stack" in jobs.columns and "stack" not in jobs.columns
    assert callable(jobs.stack) and set(jobs["software_stack"]) <= {"portable", "cuda", "xla"}
    out = results.save(tmp_path / "out", plots=False)
    header = (out / "jobs.csv").read_text().splitlines()[0].split(",")
    assert "software_stack" in header and "stack" not in header
