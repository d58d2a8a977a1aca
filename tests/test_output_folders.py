"""Output folders: one per what-if, written whole or marked incomplete, never deleting a user's files;
``--out`` mistakes caught before simulating; JSON outputs without NaN or Infinity."""

from __future__ import annotations

import json
import os
import re
import tempfile

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.cli import main
from sim.results import output_folder
from sim.results.output_folder import COMPLETE_MARKER, MAX_FOLDER_NAME, default_folder, is_complete
from tests.conftest import BASE

TINY = {**BASE, "name": "tiny", "duration": "6h",
        "workloads": {"training": {"generator": {**BASE["workloads"]["training"]["generator"], "jobs": 12}}}}


def tiny_file(folder, data: dict | None = None, name: str = "tiny.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(data or TINY, sort_keys=False), encoding="utf-8")
    return path


def test_a_set_run_does_not_overwrite_its_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scenario = str(tiny_file(tmp_path))
    assert main(["run", scenario, "--no-plots"]) == 0
    assert main(["run", scenario, "--no-plots", "--set", "site.pue=1.5"]) == 0
    printed = capsys.readouterr().out
    baseline = json.loads((tmp_path / "outputs" / "tiny" / "summary.json").read_text())
    what_if = json.loads((tmp_path / "outputs" / "tiny--site.pue=1.5" / "summary.json").read_text())
    assert (baseline["pue"], what_if["pue"]) == (1.2, 1.5)
    assert f"results in {os.path.join('outputs', 'tiny--site.pue=1.5')}{os.sep}" in printed


def test_folder_names_of_overrides():
    assert default_folder("x") == default_folder("x", []) == default_folder("x", ()) and str(default_folder("x")) == \
        os.path.join("outputs", "x")
    assert default_folder("x", ["fleet[0].count=8", "site.pue=1.5"]).name == "x--fleet.0.count=8+site.pue=1.5"
    lossy = default_folder("x", ["description=a b/c"]).name
    assert re.fullmatch(r"x--description=a_b_c~[0-9a-f]{8}", lossy)
    assert default_folder("x", ["description=é"]) != default_folder("x", ["description=ü"])
    long = default_folder("x", [f"site.pue={'1' * 300}"]).name
    assert len(long) == MAX_FOLDER_NAME and re.search(r"~[0-9a-f]{8}$", long)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=4), st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_folder_names_are_safe_short_and_distinct(a, b):
    name_a, name_b = default_folder("run", a).name, default_folder("run", b).name
    assert name_a == default_folder("run", a).name  # deterministic
    assert re.fullmatch(r"run--[A-Za-z0-9._=+~-]+", name_a) and len(name_a) <= MAX_FOLDER_NAME
    assert not name_a.endswith((".", " "))
    same_fields = [re.sub(r"\[(\d+)\]", r".\1", t.strip()) for t in a] == \
        [re.sub(r"\[(\d+)\]", r".\1", t.strip()) for t in b]  # fleet[0] and fleet.0 are one field
    assert (name_a == name_b) == same_fields


def test_earlier_runs_files_are_removed_and_the_users_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = ["requests.csv", "latency.png", "served.png", "power.png", "capping.csv", "burst.csv", "failures.png",
             "throttling.png"]
    mine = ["notes.txt", "my-plot.png", "summary.json.bak"]
    for name in stale + mine:
        (out / name).write_text("from before")
    assert main(["run", str(tiny_file(tmp_path)), "--no-plots", "--quiet", "--out", str(out)]) == 0
    assert not [n for n in stale if (out / n).exists()]
    assert all((out / n).read_text() == "from before" for n in mine)
    assert is_complete(out)
    listed = json.loads((out / COMPLETE_MARKER).read_text())["files"]
    assert listed == ["jobs.csv", "manifest.json", "monthly.csv", "report.html", "scenario.json", "summary.json",
                      "timeseries.csv"]


def test_plots_written_are_all_known_to_the_cleaner(tmp_path):
    results = sim.run(tiny_file(tmp_path))
    out = results.save(tmp_path / "out", plots=True)
    written = {p.name for p in out.iterdir()}
    assert written <= set(output_folder.DCSIM_FILES), written - set(output_folder.DCSIM_FILES)
    assert "power.png" in written


@pytest.fixture
def saved(tmp_path):
    results = sim.run(tiny_file(tmp_path))
    out = results.save(tmp_path / "out", plots=False)
    return results, out


def test_interrupted_writing_keeps_the_earlier_whole_run(saved, monkeypatch):
    results, out = saved
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(self, staging, plots):
        (staging / "summary.json").write_text("{\"jobs\": {")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(results), "_write_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        results.save(out, plots=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert is_complete(out)
    assert not [p for p in out.parent.iterdir() if "dcsim-partial" in p.name]


def test_interrupted_move_leaves_the_folder_marked_incomplete(saved, monkeypatch, capsys):
    results, out = saved
    moves = []

    def replace_then_fail(src, dst):
        if moves:
            raise KeyboardInterrupt
        moves.append(dst)
        os.rename(src, dst)

    monkeypatch.setattr(output_folder.os, "replace", replace_then_fail)
    with pytest.raises(KeyboardInterrupt):
        results.save(out, plots=False)
    assert not is_complete(out) and not (out / COMPLETE_MARKER).exists()
    assert not [p for p in out.parent.iterdir() if "dcsim-partial" in p.name]
    monkeypatch.undo()
    assert main(["compare", str(out), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: holds no complete run" in err


@pytest.fixture
def unwritable(tmp_path):
    """A folder in which nobody, root included, can create files: a read-only one for a normal user;
    sysfs for root (permissions do not stop root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        yield folder
        folder.chmod(0o755)
    else:
        yield "/sys"


@pytest.mark.parametrize("case", ["empty", "a file", "under a file", "unwritable folder", "under unwritable"])
def test_out_mistakes_are_caught_before_simulating(case, tmp_path, unwritable, monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    out, expected = {
        "empty": ("", "--out: empty path"),
        "a file": (str(tmp_path / "afile"), "afile: is a file, not a folder"),
        "under a file": (str(tmp_path / "afile" / "run"), "afile is a file, not a folder"),
        "unwritable folder": (str(unwritable), "cannot write in"),
        "under unwritable": (os.path.join(unwritable, "new", "run"), "cannot write in"),
    }[case]
    monkeypatch.setattr(sim.runner, "run", lambda *a, **k: pytest.fail("simulated before checking --out"))
    assert main(["run", str(tiny_file(tmp_path)), "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dcsim: error: --out") and err.count("\n") == 1 and expected in err, err


def test_json_outputs_hold_no_nan_or_infinity(saved):
    import numpy as np

    results, out = saved
    results.summary["pue"] = float("inf")
    results.summary["jct_s"]["mean"] = np.float64("nan")
    results.manifest["wall_s"] = float("-inf")
    results.save(out, plots=False)

    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=reject)
    manifest = json.loads((out / "manifest.json").read_text(), parse_constant=reject)
    assert summary["pue"] is None and summary["jct_s"]["mean"] is None and manifest["wall_s"] is None
    assert summary["jct_s"]["p50"] == results.summary["jct_s"]["p50"]


def test_temporary_folder_is_a_sibling_and_removed(saved, monkeypatch):
    results, out = saved
    seen = []
    real_mkdtemp = tempfile.mkdtemp

    def spy(*args, **kwargs):
        seen.append(real_mkdtemp(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(output_folder.tempfile, "mkdtemp", spy)
    results.save(out, plots=False)
    assert len(seen) == 1 and os.path.dirname(seen[0]) == str(out.parent.resolve()) and not os.path.exists(seen[0])


def test_files_the_earlier_marker_lists_are_replaced_too(saved):
    results, out = saved
    (out / "future-output.csv").write_text("written by another dcsim version")
    marker = json.loads((out / COMPLETE_MARKER).read_text())
    marker["files"].append("future-output.csv")
    (out / COMPLETE_MARKER).write_text(json.dumps(marker))
    (out / "../escape.txt").write_text("not ours")
    marker["files"].append("../escape.txt")
    (out / COMPLETE_MARKER).write_text(json.dumps(marker))
    results.save(out, plots=False)
    assert not (out / "future-output.csv").exists() and (out.parent / "escape.txt").exists()


def test_a_read_only_parent_stages_inside_the_folder(saved, monkeypatch):
    results, out = saved
    real_mkdtemp = tempfile.mkdtemp
    places = []

    def parent_is_read_only(*args, dir=None, **kwargs):
        places.append(dir)
        if os.path.samefile(dir, out.parent):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(output_folder.tempfile, "mkdtemp", parent_is_read_only)
    results.save(out, plots=False)
    assert len(places) == 2 and os.path.samefile(places[1], out)
    assert is_complete(out) and not [p for p in out.iterdir() if "dcsim-partial" in p.name]


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(saved):
    """``kill -9`` while writing leaves a hidden staging folder (nothing can clean up then); the next run into
    the same folder removes it."""
    results, out = saved
    leftover = out.parent / f".{out.name}.dcsim-partial-abc123"
    leftover.mkdir()
    (leftover / "requests.csv").write_text("half a file")
    inside = out / ".dcsim-partial-xyz"
    inside.mkdir()
    results.save(out, plots=False)
    assert not leftover.exists() and not inside.exists() and is_complete(out)
