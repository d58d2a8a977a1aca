"""The command line: run writes the documented files; validate, catalog and compare work."""

from __future__ import annotations

import json

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
    assert "facility_energy_kwh" in text and "+" in text


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
