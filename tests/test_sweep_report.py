"""``dcsim report SWEEP_DIR``: a sweep folder's ``sweep-report.html`` (written by ``dcsim sweep`` too) holds every
point, key figure and interval of the table, the failed runs, one plot per key figure and parameter, renders
in headless Chromium and is the same bytes each time."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.results.report_html import SweepReport, sweep_lines
from sim.sweep import interval, make_design, replica_seeds
from sim.sweep import tasks as sweep_tasks
from sim.sweep.report import key_figures, read_sweep
from sim.sweep.table import build_frame, sweep_manifest, write_manifest, write_table
from tests.conftest import SCENARIOS
from tests.test_report import rendered_dom

CLASSROOM = str(SCENARIOS / "classroom-hetero.yaml")
CAPS = [0.06, 0.08, 0.1]
FAILING_SEED = replica_seeds(7, 2)[1]  # replica 1 at 60 kW fails: point 0 keeps one run (no interval)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A day of the classroom scenario at three power caps x 2 replicas, one run failing; and what it printed."""
    folder = tmp_path_factory.mktemp("sweeps") / "caps"
    real_run = sweep_tasks.runner.run

    def failing(scenario, progress=False):
        if scenario.site.power_cap_mw == 0.06 and scenario.seed == FAILING_SEED:
            raise RuntimeError("engine failure at 60 kW")
        return real_run(scenario, progress)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep_tasks.runner, "run", failing)
        code = main(["sweep", CLASSROOM, "--set", "duration=1d", "--grid", "site.power_cap_mw=0.06,0.08,0.1",
                     "--replicas", "2", "--out", str(folder)])
    assert code == 0
    return folder


def table(folder) -> pd.DataFrame:
    return pd.read_parquet(folder / "sweep.parquet")


def test_sweep_writes_a_self_contained_report_with_every_point_figure_and_interval(swept):
    text = (swept / "sweep-report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://|<link|@import|url\(", text)
    assert set(re.findall(r'src="([a-z]+):', text)) == {"data"}
    rows = table(swept)
    heads = key_figures(rows)
    keys = [h.key for h in heads]
    assert {"jobs.completed", "jct_s.mean", "facility_energy_kwh", "utilization_by_accelerator.h100-sxm"} <= set(keys)
    assert text.count("<img ") == len(heads)  # one swept parameter: one plot per key figure
    for h in heads:
        assert f'alt="{h.key} vs site.power_cap_mw"' in text
    for point, cap in enumerate(CAPS):
        row = re.search(rf'<tr><td class="n">{point}</td><td>{cap:g}</td>(.*?)</tr>', text)[1]
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        ok = rows[(rows["point"] == point) & rows["error"].isna()]
        assert cells[0] == str(len(ok)) == ("1" if point == 0 else "2")
        for h, cell in zip(heads, cells[1:]):
            stats = interval(ok[h.key].to_numpy())
            expected = "n/a" if np.isnan(stats["mean"]) else h.show(stats["mean"])  # e.g. no job still queued
            if len(ok) > 1 and not np.isnan(stats["ci95_low"]):
                expected += f" [{h.show(stats['ci95_low'])}, {h.show(stats['ci95_high'])}]"
            assert cell == expected, h.key
    # the scenario and the design in brief
    assert "Why the right chip for the right job matters" in text and "<td>1 day</td>" in text
    assert "<td>site.power_cap_mw</td><td>0.06, 0.08, 0.1</td>" in text
    assert "2 per point" in text and ", ".join(str(s) for s in replica_seeds(7, 2)) in text
    assert json.loads((swept / "sweep.json").read_text())["scenario_sha256"] in text


def test_a_failed_run_is_listed_with_its_error(swept):
    text = (swept / "sweep-report.html").read_text(encoding="utf-8")
    failed = re.search(r"<h2>Failed runs</h2>(.*?)</table>", text, re.S)[1]
    assert (f'<tr><td class="n">0</td><td class="n">1</td><td>{FAILING_SEED}</td><td>0.06</td>'
            "<td>RuntimeError: engine failure at 60 kW</td></tr>") in failed
    assert failed.count("<tr><td") == 1
    assert "<td>6 of 6 (1 failed)</td>" in text


def test_the_same_sweep_gives_the_same_bytes(swept, tmp_path, capsys):
    written = (swept / "sweep-report.html").read_bytes()
    assert main(["report", str(swept)]) == 0
    assert capsys.readouterr().out.strip() == f"report in {swept / 'sweep-report.html'}"
    assert (swept / "sweep-report.html").read_bytes() == written
    assert main(["report", str(swept), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_bytes() == written


def test_no_report_skips_it(tmp_path):
    folder = tmp_path / "one"
    assert main(["sweep", CLASSROOM, "--set", "duration=2h", "--grid", "site.power_cap_mw=0.1", "--out",
                 str(folder), "--quiet", "--no-report"]) == 0
    assert (folder / "sweep.parquet").exists() and (folder / "scenario.json").exists()
    assert not (folder / "sweep-report.html").exists()


def test_sweep_report_renders_in_chromium(swept):
    dom = rendered_dom(swept / "sweep-report.html")
    check = re.search(r'<html[^>]* data-check="([^"]*)"', dom)
    images = len(key_figures(table(swept)))
    assert check and check[1] == f"ok {images}", check and check[1]
    assert "<title>dcsim sweep report: classroom-hetero OK</title>" in dom


def synthetic(tmp_path, grid: dict, kind: str = "grid") -> SweepReport:
    """A sweep folder written from made-up figures (no simulation): jobs.completed = 10 * point + replica."""
    design = make_design(grid, kind)
    seeds = [[1, 2] for _ in design.points]
    records = {(p, r): {"figures": {"jobs.completed": 10.0 * p + r}} for p in range(len(design.points))
               for r in range(2)}
    write_manifest(tmp_path, sweep_manifest("made-up", "0" * 64, design, 2, seeds, "test"))
    write_table(tmp_path, build_frame(design, seeds, records))
    return read_sweep(tmp_path)


def test_two_parameters_give_one_line_per_value_of_the_other(tmp_path):
    sweep = synthetic(tmp_path, {"site.power_cap_mw": [0.06, 0.1], "policy.scheduler.kind": ["fifo", "hetero-aware",
                                                                                             "sjf"]})
    [h] = sweep.headlines
    lines, categories = sweep_lines(sweep, h, "site.power_cap_mw")
    assert [line.label for line in lines] == [f"policy.scheduler.kind={k}" for k in ("fifo", "hetero-aware", "sjf")]
    assert categories is None and all(line.joined and list(line.x) == [0.06, 0.1] for line in lines)
    # points 0 and 3 (fifo at 0.06 and 0.1): replicas 10p and 10p + 1 -> mean 10p + 0.5, a band around it
    assert list(lines[0].mean) == [0.5, 30.5] and all(lines[0].low < lines[0].mean)
    lines, categories = sweep_lines(sweep, h, "policy.scheduler.kind")
    assert categories == ["fifo", "hetero-aware", "sjf"] and len(lines) == 2
    assert list(lines[1].x) == [0, 1, 2] and list(lines[1].mean) == [30.5, 40.5, 50.5]
    text = (tmp_path / "r.html")
    assert main(["report", str(tmp_path), "--out", str(text)]) == 0
    assert text.read_text().count("<img ") == 2  # one key figure against each of the two parameters


def test_a_zip_design_over_several_parameters_draws_points_with_bars(tmp_path):
    sweep = synthetic(tmp_path, {"site.power_cap_mw": [0.06, 0.06, 0.1], "policy.scheduler.kind": ["fifo", "sjf",
                                                                                          "fifo"]}, kind="zip")
    [line], _ = sweep_lines(sweep, sweep.headlines[0], "site.power_cap_mw")
    assert line.label is None and not line.joined and list(line.x) == [0.06, 0.06, 0.1]
    [line], _ = sweep_lines(synthetic(tmp_path, {"site.power_cap_mw": [0.06, 0.08], "policy.scheduler.kind": [
        "fifo", "sjf"]}, kind="zip"), sweep.headlines[0], "site.power_cap_mw")
    assert not line.joined and list(line.x) == [0.06, 0.08]  # the scheduler changes too: no line between them
    [line], _ = sweep_lines(synthetic(tmp_path, {"site.power_cap_mw": [0.06, 0.08]}, kind="zip"),
                            sweep.headlines[0], "site.power_cap_mw")
    assert line.joined


@pytest.mark.parametrize("case", ["no-table", "not-a-sweep", "with-a-run"])
def test_bad_sweep_folders_are_one_line_errors(swept, tmp_path, capsys, case):
    folder = tmp_path / "s"
    folder.mkdir()
    if case == "no-table":
        (folder / "sweep.json").write_text((swept / "sweep.json").read_text())
        args, message = [str(folder)], "no sweep.parquet yet"
    elif case == "not-a-sweep":
        (folder / "sweep.json").write_text('{"kind": "something"}')
        args, message = [str(folder)], "not a dcsim sweep manifest"
    else:
        args, message = [str(swept), str(folder)], "a sweep folder is reported alone"
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dcsim: error: ") and message in err and err.count("\n") == 1
