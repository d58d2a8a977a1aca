"""The command line: run writes the documented files; validate, catalog and compare work."""

from __future__ import annotations

import json
import re

import pytest

from sim.cli import main
from tests.conftest import SCENARIOS


def test_run_writes_outputs_and_prints_table(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", str(SCENARIOS / "classroom-hetero.yaml"), "--out", str(out),
                 "--set", "duration=1d", "--set", "workloads.training.generator.jobs=60"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "jobs       submitted" in printed and "util" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in ("submitted", "completed", "running", "queued", "rejected"):
        assert key in summary["jobs"]
    for key in ("jct_s", "queue_wait_s"):
        assert set(summary[key]) == {"mean", "p50", "p90", "p99"}
    for key in ("utilization_by_accelerator", "it_energy_kwh", "facility_energy_kwh", "energy_cost_usd",
                "carbon_kg"):
        assert key in summary
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"scenario_sha256", "seed", "versions", "numba", "input_files"} <= set(manifest)
    (philly,) = [h for p, h in manifest["input_files"].items() if p.endswith("philly_runtime.csv")]
    assert philly == "e99015baaea66833ebeac68d27c994aa13d83847f73b4a7c7dc71fe94b395247"  # SOURCE.md
    header = (out / "jobs.csv").read_text().splitlines()[0]
    assert header.startswith("job_id,arrival_s,start_s,end_s,pool,accelerator,chips")
    assert (out / "power.png").exists()


def test_validate_all_ready_scenarios(capsys):
    assert main(["validate", *map(str, sorted(SCENARIOS.glob("*.yaml")))]) == 0
    assert "ok" in capsys.readouterr().out


def test_catalog_lists_accelerators_and_models(capsys):
    assert main(["catalog"]) == 0
    text = capsys.readouterr().out
    assert "tpu-v7" in text and "mtia-v2" in text and "llama3-405b" in text


def test_compare_two_runs(tmp_path, capsys):
    base = ["run", str(SCENARIOS / "classroom-hetero.yaml"), "--no-plots", "--quiet", "--set", "duration=1d",
            "--set", "workloads.training.generator.jobs=60"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert main(base + ["--out", str(tmp_path / "b"), "--set", "site.pue=1.5"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "facility energy                 MWh" in text and "+25.0%" in text  # pue 1.2 -> 1.5
    assert "pue" in text.split("other metrics that differ")[1]


def test_scenario_reference_doc_is_generated_from_the_schema():
    from sim.scenario.reference import reference_markdown
    from tests.conftest import REPO

    assert (REPO / "docs" / "scenario-reference.md").read_text() == reference_markdown(), \
        "docs/scenario-reference.md is stale: run `dcsim schema > docs/scenario-reference.md`"


def test_every_package_folder_is_a_package():
    """A folder without __init__.py is left out of the installed wheel (find_packages)."""
    from tests.conftest import REPO

    for folder in (REPO / "sim").rglob("*"):
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), folder


def test_code_passes_ruff():
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "sim", "tests", "benchmarks"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _tiny(tmp_path, **changes):
    import yaml

    from tests.conftest import BASE

    data = {**BASE, "name": "tiny", "duration": "6h", **changes}
    data["workloads"] = {"training": {"generator": {**BASE["workloads"]["training"]["generator"], "jobs": 12}}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _two_runs(tmp_path):
    base = ["run", str(_tiny(tmp_path)), "--no-plots", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert main(base + ["--out", str(tmp_path / "b"), "--set", "site.pue=1.5"]) == 0
    return str(tmp_path / "a"), str(tmp_path / "b")


def test_compare_leads_with_headline_figures_in_units(tmp_path, capsys):
    a, b = _two_runs(tmp_path)
    capsys.readouterr()
    assert main(["compare", a, b]) == 0
    lines = capsys.readouterr().out.splitlines()
    labels = [line.split("  ")[0] for line in lines[lines.index("") + 3:]]
    assert labels[:8] == ["jobs completed", "jobs still queued at the end", "jobs rejected", "JCT mean", "JCT p50",
                          "JCT p99", "wait of still-queued jobs mean", "wait of still-queued jobs p99"]
    table = "\n".join(lines)
    for label, unit in [("JCT p99", "h"), ("utilization h100-sxm", "%"), ("peak facility power", "MW"),
                        ("facility energy", "MWh"), ("energy cost", "USD")]:
        assert re.search(rf"^{re.escape(label)} +{re.escape(unit)} ", table, re.M), label
    assert re.search(r"^facility energy .* \+25\.0%$", table, re.M)
    assert table.index("facility energy") < table.index("other metrics that differ") < table.index("\npue ")


def test_compare_only_and_all(tmp_path, capsys):
    a, b = _two_runs(tmp_path)
    capsys.readouterr()
    assert main(["compare", a, b, "--only", "jct"]) == 0
    text = capsys.readouterr().out
    assert "JCT p50" in text and "facility energy" not in text and "pue" not in text
    assert main(["compare", a, b, "--only", "jct_s_by_accelerator.*.p99", "--all"]) == 0
    text = capsys.readouterr().out
    assert "jct_s_by_accelerator.h100-sxm.p99" in text and "JCT" not in text and ".p50" not in text
    assert main(["compare", a, b]) == 0
    assert "horizon_s" not in capsys.readouterr().out  # unchanged metrics only with --all
    assert main(["compare", a, b, "--all"]) == 0
    assert "horizon_s" in capsys.readouterr().out
    assert main(["compare", a, b, "--only", "no-such-metric"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "matches no metric" in captured.err
    assert captured.out == ""  # the error comes before any of the table


@pytest.mark.parametrize("content, expected", [
    (b'{"jobs": {"completed": 1', "not valid JSON"),
    (b"", "empty file"),
    (b"  \n", "empty file"),
    (b"[1, 2, 3]", "holds a JSON list, expected an object"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a text file (byte 0x89 at offset 0)"),
    (b"{}", "not a run summary (no jobs, horizon_s)"),
    (b'{"jobs": {"completed": NaN}, "horizon_s": Infinity}', "holds NaN, which is not JSON"),
])
def test_compare_rejects_a_damaged_summary_in_one_line(tmp_path, capsys, content, expected):
    a, _ = _two_runs(tmp_path)
    bad = tmp_path / "summary.json"
    bad.write_bytes(content)
    capsys.readouterr()
    assert main(["compare", a, str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"dcsim: error: {bad}") and expected in \
        captured.err, captured.err


def test_compare_of_a_folder_without_a_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"dcsim: error: {tmp_path / 'empty'}: no dcsim run in this folder " \
                                      "(no summary.json)\n"


def test_terminal_summary_shows_still_queued_jobs_and_the_description(tmp_path, capsys):
    path = _tiny(tmp_path, description="Twelve jobs on a small fleet\nsecond line")
    out = tmp_path / "out"
    assert main(["run", str(path), "--no-plots", "--out", str(out), "--set", "fleet.gpu.count=8",
                 "--set", "fleet.tpu.count=8", "--set", "workloads.training.generator.arrival_rate_per_hour=40"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    queued = summary["jobs"]["queued"]
    assert queued > 0, "the test needs jobs still waiting at the end"
    mean_h = summary["still_queued_wait_s"]["mean"] / 3600
    assert re.search(rf"^still wait {queued} jobs queued at the end, waiting since arrival: mean "
                     rf"({mean_h:.2f}h|{summary['still_queued_wait_s']['mean']:.0f}s) ", printed, re.M), printed
    assert "about      Twelve jobs on a small fleet\n           second line\n" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["description"] == "Twelve jobs on a small fleet\nsecond line"
    assert "description" not in summary


def test_version(capsys):
    import sim

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"dcsim {sim.__version__}\n"


def test_validate_applies_overrides(tmp_path, capsys):
    path = str(_tiny(tmp_path))
    assert main(["validate", path, "--set", "site.pue=1.4"]) == 0
    assert "ok (tiny, 2 pools)" in capsys.readouterr().out
    assert main(["validate", path, "--set", "site.pue=0.5"]) == 2
    err = capsys.readouterr().err
    assert f"{path} (--set site.pue=0.5) site.pue" in err
    assert main(["validate", path, "--set", "site.pue"]) == 2
    assert capsys.readouterr().err == "dcsim: error: --set expects PATH=VALUE, got 'site.pue'\n"


def test_run_accepts_a_path_and_results_print_in_one_line(tmp_path):
    import sim

    path = _tiny(tmp_path)
    by_path, by_text = sim.run(path), sim.run(str(path))
    assert by_path.summary == by_text.summary == sim.run(sim.load(path)).summary
    text = repr(by_path)
    j = by_path.summary["jobs"]
    assert text == (f"Results('tiny', horizon 6 h, jobs {j['submitted']} submitted / {j['completed']} completed / "
                    f"{j['running']} running / {j['queued']} queued / {j['rejected']} rejected, services: none)")
    with pytest.raises(TypeError, match="expects a Scenario or the path"):
        sim.run({"name": "x"})


def test_compare_headline_has_each_services_slo_and_p99():
    from sim.results.compare import compare_text

    def summary(slo: float, ttft_p99: float) -> dict:
        return {"jobs": {"completed": 0}, "inference": {
            "chat": {"slo_attainment": slo, "ttft_s": {"p99": ttft_p99}, "tpot_s": {"p99": 0.02}},
            "feed": {"family": "ranking", "slo_attainment": None, "latency_s": {"p99": 0.0042}}}}

    text = compare_text(summary(0.99, 0.5), summary(0.95, 0.75))
    rows = [re.split(r"  +", line) for line in text.splitlines()]
    assert ["chat: SLO attainment", "%", "99", "95", "-4.00 pt"] in rows
    assert ["chat: TTFT p99", "ms", "500", "750", "+50.0%"] in rows
    assert ["feed: latency p99", "ms", "4.2", "4.2", "="] in rows
    assert ["feed: SLO attainment", "%", "n/a", "n/a"] in rows
    assert "inference.chat.tpot_s.p99" not in text  # unchanged: only with --all
