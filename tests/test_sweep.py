"""Sweeps and replicas (``sim.sweep``): designs, seeds, intervals, executors, the table on disk, resume."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import sim
from sim.cli import main
from sim.sweep import (
    SweepError,
    dask_client,
    interval,
    make_design,
    parse_grid_option,
    replica_seeds,
    run_sweep,
    student_t_quantile,
)
from sim.sweep import execute as sweep_execute
from sim.sweep import tasks as sweep_tasks
from tests.conftest import REPO, SCENARIOS

CLASSROOM = SCENARIOS / "classroom-hetero.yaml"
GRID = {"site.power_cap_mw": [0.06, 0.1], "policy.scheduler.kind": ["fifo", "hetero-aware"]}
GRID_ARGS = ["--grid", "site.power_cap_mw=0.06,0.1", "--grid", "policy.scheduler.kind=fifo,hetero-aware"]


@pytest.fixture(scope="module")
def classroom():
    return sim.load(CLASSROOM)


@pytest.fixture(scope="module")
def reference(classroom):
    """The 2 x 2 grid with 2 replicas, computed in this process: the table every other executor must give."""
    return sim.sweep(classroom, grid=GRID, replicas=2)


# --- seeds and intervals ---------------------------------------------------------------------------------

def test_replica_seeds_are_spawned_distinct_and_stable():
    seeds = replica_seeds(7, 5)
    assert seeds == replica_seeds(7, 5)
    assert len(set(seeds)) == 5 and 7 not in seeds
    assert replica_seeds(7, 3) == seeds[:3]  # adding replicas keeps the first ones
    assert replica_seeds(8, 5) != seeds
    assert all(0 <= s < 2**63 for s in seeds)
    child = np.random.SeedSequence(7).spawn(5)[2]
    assert seeds[2] == int(child.generate_state(1, dtype=np.uint64)[0]) >> 1


@pytest.mark.parametrize("df, t", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423),
                                   (120, 1.9799)])
def test_student_t_quantile_matches_the_tables(df, t):
    assert student_t_quantile(df) == pytest.approx(t, abs=1e-4)


def test_interval_is_the_student_t_interval_around_the_mean():
    values = [3.0, 5.0, 4.0, 10.0]
    stats = interval(values)
    half = 3.18244631 * np.std(values, ddof=1) / 2  # t(0.975, 3) from the tables
    assert stats["mean"] == pytest.approx(5.5)
    assert stats["ci95_low"] == pytest.approx(5.5 - half, rel=1e-7)
    assert stats["ci95_high"] == pytest.approx(5.5 + half, rel=1e-7)
    assert interval([None, float("nan"), 2.0])["n"] == 1
    assert math.isnan(interval([2.0])["ci95_low"])


# --- designs -----------------------------------------------------------------------------------------------

def test_grid_crosses_values_first_parameter_slowest():
    design = make_design({"a": [1, 2], "b": ["x", "y", "z"]})
    assert design.points == ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                             {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"})
    assert make_design(None).points == ({},)


def test_zip_pairs_values_and_needs_equal_lengths():
    assert make_design({"a": [1, 2], "b": [3, 4]}, "zip").points == ({"a": 1, "b": 3}, {"a": 2, "b": 4})
    with pytest.raises(SweepError, match="same number of values; found a 2, b 3"):
        make_design({"a": [1, 2], "b": [3, 4, 5]}, "zip")


def test_latin_hypercube_uses_every_stratum_once_and_is_seeded():
    design = make_design({"cap": [60.0, 100.0], "count": [0, 40]}, "lhs", samples=8, seed=3)
    caps = sorted(p["cap"] for p in design.points)
    assert [int((c - 60.0) / 5.0) for c in caps] == list(range(8))  # one point in each fifth of the range
    assert all(isinstance(p["count"], int) and 0 <= p["count"] <= 40 for p in design.points)
    assert make_design({"cap": [60.0, 100.0], "count": [0, 40]}, "lhs", samples=8, seed=3) == design
    assert make_design({"cap": [60.0, 100.0], "count": [0, 40]}, "lhs", samples=8, seed=4) != design


def test_grid_option_reads_values_as_yaml():
    assert parse_grid_option("site.power_cap_mw=60,80.5") == ("site.power_cap_mw", [60, 80.5])
    assert parse_grid_option("policy.scheduler.kind=fifo,hetero-aware")[1] == ["fifo", "hetero-aware"]
    assert parse_grid_option("site.pue=1.1:1.4", ranges=True) == ("site.pue", [1.1, 1.4])
    with pytest.raises(SweepError, match="range of two numbers"):
        parse_grid_option("site.pue=a:b", ranges=True)


# --- the table ---------------------------------------------------------------------------------------------

def test_sweep_table_is_tidy_and_sorted(reference):
    assert list(reference.columns[:6]) == ["point", "replica", "seed", "site.power_cap_mw", "policy.scheduler.kind",
                                           "error"]
    assert list(zip(reference["point"], reference["replica"])) == [(p, r) for p in range(4) for r in range(2)]
    assert list(reference["site.power_cap_mw"]) == [0.06] * 4 + [0.1] * 4
    assert list(reference["policy.scheduler.kind"]) == ["fifo", "fifo", "hetero-aware", "hetero-aware"] * 2
    assert list(reference["seed"]) == replica_seeds(7, 2) * 4  # common random numbers across points
    assert reference["error"].isna().all()
    assert reference["jobs.completed"].dtype == np.float64 and (reference["jobs.completed"] > 0).all()
    # the power cap binds: every run stays under its own cap
    assert (reference["peak_facility_power_kw"] <= reference["site.power_cap_mw"] * 1e3 + 1e-6).all()
    assert reference.groupby("point")["jobs.completed"].nunique().max() == 2  # replicas differ


@pytest.fixture(scope="module")
def pool_table(classroom):
    """The same sweep on 2 local worker processes."""
    return sim.sweep(classroom, grid=GRID, replicas=2, workers=2)


def test_one_and_two_workers_give_the_same_table(pool_table, reference):
    pd.testing.assert_frame_equal(pool_table, reference)


def test_dask_local_cluster_gives_the_process_pool_table(classroom, pool_table):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        table = sim.sweep(classroom, grid=GRID, replicas=2, executor=client)
    pd.testing.assert_frame_equal(table, pool_table)


def test_unreachable_dask_scheduler_is_a_clear_error():
    with pytest.raises(SweepError, match="--dask tcp://127.0.0.1:1: cannot reach a Dask scheduler"):
        dask_client("tcp://127.0.0.1:1", timeout_s=0.5)


def test_sweep_table_is_written_as_rows_finish(classroom, reference, tmp_path, monkeypatch):
    """A simulated Ctrl-C after 3 rows leaves a whole table of those 3; --resume computes only the other 5
    and gives the uninterrupted table."""
    real_write, writes = sweep_execute.write_table, []

    def write_then_interrupt(folder, frame):
        real_write(folder, frame)
        writes.append(len(frame))
        if len(writes) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_execute, "write_table", write_then_interrupt)
    monkeypatch.setattr(sweep_execute, "WRITE_SPACING", 0.0)  # every row, whatever the timing
    with pytest.raises(KeyboardInterrupt):
        run_sweep(classroom, GRID, replicas=2, out=tmp_path / "sw")
    assert writes[:3] == [1, 2, 3]
    assert len(pd.read_parquet(tmp_path / "sw" / "sweep.parquet")) == 3
    assert not [p for p in (tmp_path / "sw").iterdir() if p.name.startswith(".")]  # no temporary file left
    monkeypatch.setattr(sweep_execute, "write_table", real_write)
    ran = []
    real_run = sweep_execute.run_task
    monkeypatch.setattr(sweep_execute, "run_task", lambda scenario: ran.append(scenario.seed) or real_run(scenario))
    done = run_sweep(classroom, GRID, replicas=2, out=tmp_path / "sw", resume=True)
    assert (done.computed, done.resumed, len(ran)) == (5, 3, 5)
    pd.testing.assert_frame_equal(done.table, reference)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sw" / "sweep.parquet"), reference,
                                  check_dtype=False)


def test_resume_after_the_process_is_killed(tmp_path, capsys, reference):
    """SIGKILL the command line mid-sweep; --resume computes only the missing rows; same table."""
    out = tmp_path / "killed"
    # the command line, with every row written at once (rows here take a tenth of a second; spaced writes
    # could otherwise jump from the first row to the last, leaving nothing between to kill)
    cli = ("import sys; from sim.sweep import execute; execute.WRITE_SPACING = 0.0; from sim.cli import main; "
           "sys.exit(main(sys.argv[1:]))")
    command = [sys.executable, "-c", cli, "sweep", str(CLASSROOM), *GRID_ARGS, "--replicas", "2",
               "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    table = out / "sweep.parquet"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            # read the bytes once: the reader may open a path twice, and the sweep replaces the file meanwhile
            if table.exists() and len(pd.read_parquet(io.BytesIO(table.read_bytes()))) >= 2:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the sweep ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    kept = len(pd.read_parquet(table))
    assert 2 <= kept < 8
    assert main(["sweep", str(CLASSROOM), *GRID_ARGS, "--replicas", "2", "--out", str(out), "--resume"]) == 0
    assert f"{8 - kept} computed, {kept} from the earlier run, 0 failed" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(table), reference, check_dtype=False)


def test_resume_refuses_another_sweep_and_a_fresh_sweep_keeps_an_old_one(classroom, tmp_path):
    run_sweep(classroom, {"site.power_cap_mw": [0.06]}, out=tmp_path / "sw")
    with pytest.raises(SweepError, match="different sweep; the points differ"):
        run_sweep(classroom, {"site.power_cap_mw": [0.08]}, out=tmp_path / "sw", resume=True)
    with pytest.raises(SweepError, match="different sweep; the number of replicas differs"):
        run_sweep(classroom, {"site.power_cap_mw": [0.06]}, replicas=2, out=tmp_path / "sw", resume=True)
    with pytest.raises(SweepError, match="different sweep; the scenario differs"):
        run_sweep(classroom.with_overrides({"site.pue": 1.3}), {"site.power_cap_mw": [0.06]}, out=tmp_path / "sw",
                  resume=True)
    with pytest.raises(SweepError, match="holds an earlier sweep; --resume continues it"):
        run_sweep(classroom, {"site.power_cap_mw": [0.08]}, out=tmp_path / "sw")
    with pytest.raises(SweepError, match="no sweep to resume there"):
        run_sweep(classroom, {"site.power_cap_mw": [0.06]}, out=tmp_path / "empty", resume=True)


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(classroom, tmp_path, capsys, monkeypatch):
    real_run = sweep_tasks.runner.run

    def failing_at_60_kw(scenario, progress=False):
        if scenario.site.power_cap_mw == 0.06:
            raise RuntimeError("engine failure at 60 kW")
        return real_run(scenario, progress)

    monkeypatch.setattr(sweep_tasks.runner, "run", failing_at_60_kw)
    code = main(["sweep", str(CLASSROOM), "--grid", "site.power_cap_mw=0.06,0.1", "--out", str(tmp_path / "f")])
    assert code == 0
    out = capsys.readouterr().out
    assert "1 computed" not in out and "2 computed, 0 from the earlier run, 1 failed" in out
    assert "failed: point 0 replica 0: RuntimeError: engine failure at 60 kW" in out
    table = pd.read_parquet(tmp_path / "f" / "sweep.parquet")
    assert table.loc[0, "error"] == "RuntimeError: engine failure at 60 kW" and pd.isna(table.loc[1, "error"])
    assert math.isnan(table.loc[0, "jobs.completed"]) and table.loc[1, "jobs.completed"] > 0


# --- bad input on the command line ---------------------------------------------------------------------------

def test_unknown_grid_key_gives_the_located_error_of_set(tmp_path, capsys):
    assert main(["run", str(CLASSROOM), "--set", "site.power_cap_mx=1", "--out", str(tmp_path / "r")]) == 2
    set_error = capsys.readouterr().err.strip()
    assert main(["sweep", str(CLASSROOM), "--grid", "site.power_cap_mx=1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == set_error.replace("--set", "--grid")
    assert f"{CLASSROOM} (--grid site.power_cap_mx=1) site.power_cap_mx: unknown field" in err
    assert not (tmp_path / "s").exists()  # nothing ran, nothing written


def test_a_grid_value_of_the_wrong_type_fails_before_anything_runs(tmp_path, capsys):
    code = main(["sweep", str(CLASSROOM), "--grid", "site.power_cap_mw=0.1,abc", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"{CLASSROOM} (--grid site.power_cap_mw='abc') site.power_cap_mw: found "
                                        "'abc': Input should be a valid number, unable to parse string as a number"]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, message", [
    (["--grid", "site.pue"], "--grid expects KEY=v1,v2"),
    (["--zip", "--grid", "site.pue=1.1,1.2", "--grid", "site.carbon_g_per_kwh=1"],
     "--zip: every --grid needs the same number"),
    (["--grid", "seed=1,2"], "grid seed: the table's own column 'seed' cannot be swept; accepted: replicas"),
    (["--lhs", "4"], "--lhs: give the ranges"),
    (["--lhs-seed", "4", "--grid", "site.pue=1.1"], "--lhs-seed: only with --lhs N"),
    (["--grid", "site.pue=1.1", "--grid", "site.pue=1.2"], "--grid site.pue: given twice"),
])
def test_bad_sweep_options_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["sweep", str(CLASSROOM), *args, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dcsim: error: {message}") and err.count("\n") == 1


# --- replicas ------------------------------------------------------------------------------------------------

def test_replicas_are_ordinary_runs_at_the_spawned_seeds(classroom):
    short = classroom.with_overrides({"duration": "2d"})
    replicas = sim.run(short, replicas=3)
    assert replicas.seeds == replica_seeds(7, 3)
    alone = sim.run(short.with_overrides({"seed": replicas.seeds[1]}))
    assert replicas.results[1].summary == alone.summary
    summary = replicas.summary
    completed = [r.summary["jobs"]["completed"] for r in replicas.results]
    assert len({r.summary["it_energy_kwh"] for r in replicas.results}) == 3  # different seeds, different job streams
    row = summary.loc["jobs.completed"]
    assert row["mean"] == pytest.approx(np.mean(completed))
    assert row["ci95_low"] < row["mean"] < row["ci95_high"]
    # more replicas: a narrower interval for the mean (here, and as 1/sqrt(n) in general)
    wider = sim.run(short, replicas=8).summary.loc["jobs.completed"]
    assert wider["ci95_high"] - wider["ci95_low"] < row["ci95_high"] - row["ci95_low"]


def test_run_replicas_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "reps"
    (out / "replica-5").mkdir(parents=True)  # a stale replica of an earlier, bigger run
    (out / "summary.json").write_text("{}")  # a stale plain run
    assert main(["run", str(CLASSROOM), "--set", "duration=2d", "--replicas", "3", "--no-plots",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 replicas of 2 days (seeds spawned from 7)" in printed and "95 % interval" in printed
    assert sorted(p.name for p in out.iterdir()) == ["replica-0", "replica-1", "replica-2", "replicas.csv",
                                                     "replicas.json", "report.html", "timeseries_band.csv"]
    report = (out / "report.html").read_text()
    assert "95 % interval" in report and "over 3 seed replicas" in report
    assert not (out / "replica-0" / "report.html").exists()
    seeds = [json.loads((out / f"replica-{k}" / "manifest.json").read_text())["seed"] for k in range(3)]
    assert seeds == replica_seeds(7, 3)
    table = pd.read_csv(out / "replicas.csv", index_col="figure")
    assert table.loc["jobs.completed", "n"] == 3
    table = table[table["n"] >= 2]  # figures with an interval
    assert (table["ci95_low"] <= table["mean"]).all() and (table["mean"] <= table["ci95_high"]).all()
    band = pd.read_csv(out / "timeseries_band.csv")
    assert len(band) == 48 and (band["it_power_kw.p5"] <= band["it_power_kw.p95"]).all()


def test_sim_sweep_stays_the_function_after_its_modules_are_imported():
    import sim.sweep.table  # noqa: F401

    assert callable(sim.sweep) and sim.sweep.__module__ == "sim"


def test_progress_bar_counts_the_runs(classroom, capsys):
    run_sweep(classroom, {"site.power_cap_mw": [0.06, 0.1]}, progress=True)
    err = capsys.readouterr().err
    assert "dcsim: sweep" in err and "0/2" in err  # drawn at once; later updates are rate-limited
    run_sweep(classroom, {"site.power_cap_mw": [0.06]})
    assert capsys.readouterr().err == ""  # silent unless asked


def test_ctrl_c_flushes_the_rows_a_spaced_write_held_back(classroom, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_execute, "WRITE_SPACING", 1e9)  # after the first row, no write until the end
    real_run, calls = sweep_execute.run_task, []

    def interrupt_fourth(scenario):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_run(scenario)

    monkeypatch.setattr(sweep_execute, "run_task", interrupt_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(classroom, GRID, replicas=2, out=tmp_path / "sw")
    assert len(pd.read_parquet(tmp_path / "sw" / "sweep.parquet")) == 3


def test_lhs_and_zip_designs_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "lhs"
    assert main(["sweep", str(CLASSROOM), "--lhs", "3", "--grid", "site.power_cap_mw=0.05:0.2", "--out", str(out),
                 "--quiet"]) == 0
    table = pd.read_parquet(out / "sweep.parquet")
    caps = sorted(table["site.power_cap_mw"])
    assert [int((c - 0.05) / 0.05) for c in caps] == [0, 1, 2]
    assert json.loads((out / "sweep.json").read_text())["lhs_seed"] == 7  # the scenario's seed
    assert main(["sweep", str(CLASSROOM), "--zip", "--grid", "site.power_cap_mw=0.06,0.1", "--grid",
                 "policy.scheduler.kind=fifo,hetero-aware", "--out", str(tmp_path / "zip"), "--quiet"]) == 0
    table = pd.read_parquet(tmp_path / "zip" / "sweep.parquet")
    assert list(zip(table["site.power_cap_mw"], table["policy.scheduler.kind"])) == [(0.06, "fifo"),
                                                                                     (0.1, "hetero-aware")]
    assert capsys.readouterr().out == ""


def test_ctrl_c_on_the_command_line_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(scenario):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_execute, "run_task", interrupted)
    assert main(["sweep", str(CLASSROOM), "--grid", "site.power_cap_mw=0.06,0.1", "--out", str(tmp_path / "s")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume computes the rest" in err and "Traceback" not in err


def _die_at_60_kw(scenario, progress=False):
    if scenario.site.power_cap_mw == 0.06:
        os._exit(1)  # the worker process dies: not a failure of the point, a loss of the executor
    return _REAL_RUN(scenario, progress)


_REAL_RUN = sweep_tasks.runner.run


def test_a_killed_worker_leaves_its_rows_missing_for_resume(classroom, tmp_path, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(sweep_execute, "_process_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(sweep_tasks.runner, "run", _die_at_60_kw)  # the forked workers inherit it
    grid = {"site.power_cap_mw": [0.1, 0.06]}
    with pytest.raises(SweepError, match=r"not computed: the executor failed .*run the same sweep again with --resume"):
        run_sweep(classroom, grid, workers=2, out=tmp_path / "sw")
    kept = pd.read_parquet(tmp_path / "sw" / "sweep.parquet") if (tmp_path / "sw" / "sweep.parquet").exists() else None
    assert kept is None or (kept["error"].isna().all() and 0.06 not in set(kept["site.power_cap_mw"]))
    monkeypatch.setattr(sweep_tasks.runner, "run", _REAL_RUN)
    done = run_sweep(classroom, grid, workers=2, out=tmp_path / "sw", resume=True)
    assert done.table["error"].isna().all() and done.computed + done.resumed == 2 and done.computed >= 1
    pd.testing.assert_frame_equal(done.table, sim.sweep(classroom, grid))
