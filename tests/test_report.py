"""``dcsim report``: one self-contained HTML file per run (written by ``dcsim run``) or per comparison, that
renders in a real browser (headless Chromium) with its images and key figures, and the same bytes each time."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.results.output_folder import COMPLETE_MARKER
from sim.results.report_html import load_folder, page, single_run_html
from tests.conftest import SCENARIOS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,2000", "--virtual-time-budget=5000"]
CLASSROOM = str(SCENARIOS / "classroom-hetero.yaml")
ONE_DAY = ["--set", "duration=1d", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A day of the classroom scenario, and the same day with another seed, as ``dcsim run`` writes them."""
    root = tmp_path_factory.mktemp("runs")
    out = {"base": root / "base", "seed8": root / "seed8"}
    assert main(["run", CLASSROOM, *ONE_DAY, "--out", str(out["base"])]) == 0
    assert main(["run", CLASSROOM, *ONE_DAY, "--set", "seed=8", "--out", str(out["seed8"])]) == 0
    return out


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_dcsim_run_writes_a_self_contained_report(runs):
    folder = runs["base"]
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "report.html" in json.loads((folder / COMPLETE_MARKER).read_text())["files"]
    # nothing loaded from elsewhere: every src is a data URI, no stylesheet or script link, no URL at all
    assert not re.search(r"https?://|<link|@import|url\(", text)
    assert set(re.findall(r'src="([a-z]+):', text)) == {"data"}
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) >= 4 and text.count("<img ") == len(pngs)
    for png in pngs:  # every plot embedded whole
        assert base64.b64encode(png.read_bytes()).decode() in text
    s = summary(folder)
    assert f"<td class=\"n\">{s['jobs']['completed']:,}</td>" in text  # key figure: jobs completed
    for pool, accel in (("gpu-h100", "h100-sxm"), ("tpu-v6e", "tpu-v6e"), ("asic-mtia", "mtia-v2")):
        assert f"<td>{pool}</td>\n<td>{accel}</td>" in text.replace("</td><td>", "</td>\n<td>")
    assert "2026-01-05" in text and "Why the right chip for the right job matters" in text
    assert "By month (monthly.csv)" in text and "<td>2026-01</td>" in text


def test_the_same_run_gives_the_same_bytes_and_no_report_skips_it(runs, tmp_path):
    written = (runs["base"] / "report.html").read_bytes()
    again = tmp_path / "again"
    assert main(["run", CLASSROOM, *ONE_DAY, "--no-report", "--out", str(again)]) == 0  # the run repeated
    assert not (again / "report.html").exists()
    assert "report.html" not in json.loads((again / COMPLETE_MARKER).read_text())["files"]
    assert main(["report", str(again)]) == 0  # written from the folder: the bytes dcsim run wrote
    assert (again / "report.html").read_bytes() == written


def test_a_run_without_plots_or_scenario_json_says_so(runs, capsys, tmp_path):
    files = [f for f in sorted(p.name for p in runs["base"].iterdir()) if not f.endswith(".png")]
    text = single_run_html(load_folder(runs["base"], files))
    assert "<img" not in text and "This run wrote no plots" in text
    older = single_run_html(load_folder(runs["base"], [f for f in files if f != "scenario.json"]))
    assert "<h3>Fleet</h3>" in text and "<h3>Fleet</h3>" not in older and "has no scenario.json" in older
    assert main(["report", str(runs["base"]), "--out", str(tmp_path / "r" / "mine.html")]) == 0
    assert capsys.readouterr().out.strip() == f"report in {tmp_path / 'r' / 'mine.html'}"
    assert (tmp_path / "r" / "mine.html").read_bytes() == (runs["base"] / "report.html").read_bytes()


def test_compare_report_puts_runs_side_by_side(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(runs["base"]), str(runs["seed8"])]) == 0
    text = (tmp_path / "compare-report.html").read_text()
    a, b = summary(runs["base"]), summary(runs["seed8"])
    assert f"<td>{runs['base']}</td>" in text and f"<td>{runs['seed8']}</td>" in text
    # mean JCT in hours, side by side, with the change from A
    row = re.search(r"<tr><td>JCT mean</td><td>h</td>(.*?)</tr>", text)[1]
    ja, jb = a["jct_s"]["mean"], b["jct_s"]["mean"]
    assert ja != jb and f">{ja / 3600:.4g}<" in row and f">{jb / 3600:.4g} ({(jb - ja) / ja:+.1%})<" in row
    pngs = len(list(runs["base"].glob("*.png"))) + len(list(runs["seed8"].glob("*.png")))
    assert text.count("<img ") == pngs and "grid-template-columns:repeat(2," in text


def test_replicas_summary_shows_intervals(runs, tmp_path):
    folder = tmp_path / "replicas"
    shutil.copytree(runs["base"], folder / "replica-0")
    figures = {"jobs.completed": {"n": 4, "mean": 61.5, "std": 2.0, "ci95_low": 58.0, "ci95_high": 65.0,
                                  "min": 59.0, "max": 64.0}}
    (folder / "replicas.json").write_text(json.dumps({"replicas": 4, "figures": figures}))
    assert main(["report", str(folder)]) == 0
    text = (folder / "report.html").read_text()
    assert "<th>95 % interval</th>" in text and "over 4 seed replicas" in text
    assert re.search(r"<td>jobs completed</td><td>jobs</td><td class=\"n\">61.5</td><td class=\"n\">58 – 65</td>",
                     text)


@pytest.mark.parametrize("case", ["missing", "empty-folder", "file", "out-is-folder"])
def test_bad_report_input_is_one_line_and_exit_2(runs, tmp_path, capsys, case):
    (tmp_path / "empty").mkdir()
    args = {"missing": [str(tmp_path / "nowhere")], "empty-folder": [str(tmp_path / "empty")],
            "file": [str(runs["base"] / "summary.json")],
            "out-is-folder": [str(runs["base"]), "--out", str(tmp_path / "empty")]}[case]
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dcsim: error: ") and err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------ in a real browser


def chromium(html_file: Path, *mode: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends "
                    "chromium; .ci/run does) to check that the report renders")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *mode,
                               html_file.resolve().as_uri()], capture_output=True, text=True, timeout=60)


def rendered_dom(html_file: Path) -> str:
    done = chromium(html_file, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_in_chromium_with_its_images_and_figures(runs, tmp_path):
    report = runs["base"] / "report.html"
    dom = rendered_dom(report)
    images = len(list(runs["base"].glob("*.png")))
    check = re.search(r'<html[^>]* data-check="([^"]*)"', dom)
    assert check and check[1] == f"ok {images}", check and check[1]  # every image decoded, no script error
    assert "<title>dcsim report: classroom-hetero OK</title>" in dom
    s = summary(runs["base"])
    assert f"{s['jobs']['completed']:,}" in dom and "utilization h100-sxm" in dom
    shot = tmp_path / "shot.png"
    done = chromium(report, f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(shot)
    assert pixels.shape[:2] == (2000, 1400)
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 50, "the screenshot is nearly blank"  # text, tables and plots drawn


def test_the_render_check_catches_a_broken_image_and_a_script_error(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(page("t", ['<img alt="bad.png" src="data:image/png;base64,AAAA">',
                                 "<script>undefinedFunction();</script>"]))
    check = re.search(r'<html[^>]* data-check="([^"]*)"', rendered_dom(broken))[1]
    assert check.startswith("errors: ") and "undefinedFunction" in check and check.endswith("broken images: bad.png")
