"""``dcsim report``: one self-contained HTML file for a run folder, or for several runs side by side.

What it holds, for one run (``report.html`` in the run folder; ``dcsim run`` writes it unless ``--no-report``):

* the scenario in brief, from ``scenario.json`` and ``manifest.json``: name, description, start, duration,
  seed, the scenario's SHA-256, and the fleet as a table (pool, accelerator, chips, owner, online window,
  deliveries);
* the key figures: the headline figures of ``dcsim compare`` (``sim.results.compare.headlines``) read from
  ``summary.json``; for a folder of seed replicas (a ``replicas.json`` whose ``figures`` map a summary key
  to ``mean``, ``ci95_low``, ``ci95_high``, ``n``) the mean and 95 % interval of each, with the plots and
  tables of the first replica (``replica-0``);
* every PNG the run wrote, embedded as a base64 ``data:`` URI;
* tables: per accelerator type, per pool, per service (and per service and accelerator type), ``monthly.csv``,
  and every figure of ``summary.json`` under its dotted key (folded).

For several runs (``compare-report.html``): each run's scenario in brief, the headline figures side by side
(with the change from the first run, as ``dcsim compare`` shows it) and the runs' plots in columns.

The file loads nothing from outside (no CDN, fonts or scripts from elsewhere), so it opens offline and can be
mailed. The same folder gives the same bytes: nothing time-dependent is written (no date, no wall time), and
every list is in a fixed order. A small inline script checks, after loading, that every image decoded and no
script error occurred, and records the outcome in the ``data-check`` attribute of ``<html>`` (``ok <images>``,
else what failed): the test suite reads it from headless Chromium.

For a sweep folder (``sweep-report.html``; ``sim.sweep.report`` reads the folder into a ``SweepReport``):
the scenario in brief (from the folder's ``scenario.json``), the design (kind, parameters and their values,
replicas, seeds), the points with each key figure as mean and 95 % interval over the point's replicas, the
failed runs with their errors, and per key figure one plot against each swept parameter with its 95 % band
(two parameters: one line per value of the other). The plots are drawn here (matplotlib, PNG without a
software version, so the same folder gives the same bytes).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.results.compare import Headline, SummaryError, _change, flatten, headlines, read_summary
from sim.results.output_folder import (
    COMPLETE_MARKER,
    PLOT_FILES,
    REPORT_FILE,
    OutputError,
    _listed_files,
    check_writable_folder,
    is_complete,
)

COMPARE_FILE = "compare-report.html"
SCENARIO_FILE = "scenario.json"
REPLICAS_FILE = "replicas.json"
FIRST_REPLICA = "replica-0"


@dataclass
class RunFolder:
    """What a report reads from one run folder."""

    label: str  # how the run is named in a comparison (the path as given)
    summary: dict
    manifest: dict = field(default_factory=dict)
    scenario: dict | None = None  # scenario.json: the scenario as run (overrides applied, defaults filled)
    monthly: pd.DataFrame | None = None
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes, in PLOT_FILES order
    intervals: dict | None = None  # summary key -> {mean, ci95_low, ci95_high, n} over seed replicas
    replicas: int | None = None


def read_run(path: str | Path) -> RunFolder:
    """The report's inputs from a complete run folder, or a replicas folder (``replicas.json`` and
    ``replica-0/``). Raises ``SummaryError`` (one line) when the folder holds no complete run."""
    folder = Path(path)
    intervals = replicas = None
    if folder.is_dir() and (folder / REPLICAS_FILE).is_file() and not is_complete(folder):
        intervals, replicas = _read_intervals(folder / REPLICAS_FILE)
        folder = folder / FIRST_REPLICA
    read_summary(folder)  # the checks and one-line errors of dcsim compare
    if not folder.is_dir():
        raise SummaryError(f"{folder}: give a run folder (dcsim run writes one), not a file")
    run = load_folder(folder, sorted(_listed_files(folder)), label=str(path))
    run.intervals, run.replicas = intervals, replicas
    return run


def load_folder(folder: Path, files: list[str], label: str = "") -> RunFolder:
    """Read the report's inputs from ``folder``, whose run files are ``files`` (a complete folder's marker
    lists them; ``Results.save`` passes the files it has just written)."""
    summary = read_json_object(folder / "summary.json")
    pngs = [name for name in files if name.endswith(".png")]
    order = {name: i for i, name in enumerate(PLOT_FILES)}
    pngs.sort(key=lambda name: (order.get(name, len(order)), name))
    monthly = None
    if "monthly.csv" in files:
        monthly = pd.read_csv(folder / "monthly.csv", dtype={"month": str})
    return RunFolder(
        label=label, summary=summary,
        manifest=read_json_object(folder / "manifest.json") if "manifest.json" in files else {},
        scenario=read_json_object(folder / SCENARIO_FILE) if SCENARIO_FILE in files else None,
        monthly=monthly, plots={name: (folder / name).read_bytes() for name in pngs})


def read_json_object(path: Path) -> dict:
    """A JSON object from ``path``; ``SummaryError`` (one line, naming the file) when it cannot be read as one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SummaryError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SummaryError(f"{path}: holds a JSON {type(data).__name__}, expected an object")
    return data


def _read_intervals(path: Path) -> tuple[dict, int | None]:
    """``figures`` of a replicas summary: key -> {mean, ci95_low, ci95_high, n}; entries of another shape
    are left out (the key figures then show the first replica's value)."""
    data = read_json_object(path)
    figures = data.get("figures")
    if not isinstance(figures, dict):
        raise SummaryError(f"{path}: no 'figures' object; expected the replicas summary dcsim run --replicas "
                           "writes")
    kept = {key: row for key, row in figures.items()
            if isinstance(row, dict) and all(_is_number(row.get(k)) for k in ("mean", "ci95_low", "ci95_high"))}
    replicas = data.get("replicas")
    return kept, replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None


@dataclass
class SweepReport:
    """What the report of a sweep folder shows (``sim.sweep.report.read_sweep`` fills it)."""

    label: str  # the folder as given
    manifest: dict  # sweep.json: scenario name and hash, design, parameters, points, replicas, seeds
    scenario: dict | None  # scenario.json: the scenario swept (before the points' overrides)
    parameters: list[str]
    headlines: list[Headline]  # the key figures the table has values for
    points: pd.DataFrame  # per point: point, parameters, runs, <key>.mean / .ci95_low / .ci95_high
    failed: pd.DataFrame  # the failed rows: point, replica, seed, parameters, error
    rows: int  # rows in the table


# ---------------------------------------------------------------------------------------------- writing


def write_report(runs: list[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of one run (default ``RUN_DIR/report.html``) or the comparison of several (default
    ``compare-report.html`` in the current folder); return the file written. Raises ``SummaryError`` for a
    folder without a complete run and ``OutputError`` for a file that cannot be written."""
    folders = [read_run(path) for path in runs]
    if out is None:
        target = Path(runs[0]) / REPORT_FILE if len(folders) == 1 else Path(COMPARE_FILE)
    else:
        target = check_out(out)
    text = single_run_html(folders[0]) if len(folders) == 1 else compare_html(folders)
    write_text_atomic(target, text)
    return target


def write_run_report(folder: Path, files: list[str]) -> None:
    """Write ``report.html`` into a run folder being saved (``Results.save``), from the files listed."""
    (folder / REPORT_FILE).write_text(single_run_html(load_folder(folder, files)), encoding="utf-8")


def check_out(out: str | Path) -> Path:
    """``--out FILE`` checked: not empty, not a folder, in a folder that can be written."""
    if str(out).strip() == "":
        raise OutputError("--out: empty path; give a file, e.g. --out report.html")
    target = Path(out)
    if target.is_dir():
        raise OutputError(f"--out {target}: is a folder; give the HTML file's name, e.g. {target / REPORT_FILE}")
    check_writable_folder(target.parent if str(target.parent) else Path("."), option=f"--out {target}: folder")
    return target


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target``, then move it over ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.chmod(temp, 0o666 & ~_umask())  # as an ordinary new file (mkstemp makes it private)
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------- pages


def single_run_html(run: RunFolder) -> str:
    """The report of one run."""
    name = run.summary.get("scenario", {}).get("name") or run.manifest.get("scenario") or "run"
    sections = [_scenario_section(run), _key_figures_section(run), _plots_section(run),
                _accelerator_section(run.summary), _pool_section(run), _service_section(run.summary),
                _monthly_section(run.monthly), _all_figures_section(run.summary)]
    return page(f"dcsim report: {name}", [s for s in sections if s])


def compare_html(runs: list[RunFolder]) -> str:
    """The runs side by side: scenarios in brief, headline figures, plots in columns."""
    labels = [_run_label(i, run) for i, run in enumerate(runs)]
    briefs = _table(["run", "folder", "scenario", "start", "duration", "seed", "fleet"],
                    [[label, run.label, *_brief_cells(run)] for label, run in zip(labels, runs)])
    sections = [f"<h2>Runs</h2>\n{briefs}", _compare_figures_section(runs, labels),
                _compare_plots_section(runs, labels)]
    return page("dcsim comparison: " + " vs ".join(_scenario_name(r) for r in runs), sections)


def sweep_html(sweep: SweepReport) -> str:
    """The report of a sweep folder."""
    name = sweep.manifest.get("scenario") or (sweep.scenario or {}).get("name") or "sweep"
    sections = [_sweep_scenario_section(sweep), _design_section(sweep), sweep_section(sweep),
                _failed_section(sweep)]
    return page(f"dcsim sweep report: {name}", [s for s in sections if s])


def sweep_section(sweep: SweepReport) -> str:
    """A sweep's points as a report section: per point its parameters, the runs that finished and each key
    figure as mean [95 % interval] over the point's replicas; then per key figure one plot against each swept
    parameter with its band."""
    heads, params = sweep.headlines, sweep.parameters
    header = ["point", *params, "runs", *[h.label + (f" ({h.unit})" if h.unit else "") for h in heads]]
    per_point = _per_point_seeds(sweep)
    if per_point:
        header.append("seeds")
    rows = []
    for record in sweep.points.to_dict("records"):
        row = [_Cell(str(int(record["point"]))), *[_param_text(record[p]) for p in params],
               _Cell(str(int(record["runs"])))]
        for h in heads:
            row.append(_Cell(_mean_interval(h, record)))
        if per_point:
            seeds = sweep.manifest["seeds"][int(record["point"])]
            row.append(", ".join(str(s) for s in seeds))
        rows.append(row)
    note = ('<p class="note">Each key figure (those <code>dcsim compare</code> leads with) as its mean over the '
            "point's replicas that finished, then its 95 % interval in brackets (Student t; none with one "
            "run).</p>")
    parts = ["<h2>Points</h2>", note, f'<div class="scroll">{_table(header, rows)}</div>']
    if params and heads and len(sweep.points):
        parts.append("<h2>Key figures against the swept parameters</h2>")
        parts.append('<p class="note">The mean over each point\'s replicas, with its 95 % interval as a band '
                     "(or a bar where the points do not form a line).</p>")
        figures = [_figure(f"{h.key} vs {p}", _sweep_plot(sweep, h, p), f"{h.label} against {p}")
                   for h in heads for p in params]
        parts.append('<div class="plots">\n' + "\n".join(figures) + "\n</div>")
    return "\n".join(parts)


def _sweep_scenario_section(sweep: SweepReport) -> str:
    scenario, manifest = sweep.scenario or {}, sweep.manifest
    rows = [["name", str(manifest.get("scenario") or scenario.get("name") or "?")], ["folder", sweep.label]]
    if scenario:
        rows += [["start", str(scenario.get("start"))], ["duration", _duration(scenario.get("duration"))],
                 ["seed", str(scenario.get("seed"))]]
    if manifest.get("scenario_sha256"):
        rows.append(["scenario SHA-256", str(manifest["scenario_sha256"])])
    if manifest.get("dcsim"):
        rows.append(["dcsim", str(manifest["dcsim"])])
    parts = ["<h2>Scenario</h2>"]
    description = str(scenario.get("description") or "").strip()
    if description:
        parts.append(f'<p class="desc">{_e(description)}</p>')
    parts.append(_table(["", ""], rows, show_header=False))
    if scenario.get("fleet") is not None:
        parts.append("<h3>Fleet (before the swept overrides)</h3>\n" + _fleet_table(scenario))
    else:
        parts.append(f'<p class="note">This sweep folder has no {SCENARIO_FILE} (written from this version on), '
                     "so only the scenario's name is shown.</p>")
    return "\n".join(parts)


DESIGN_TEXT = {"grid": "grid: every combination of the values (the first parameter varying slowest)",
               "zip": "zip: the i-th values of the parameters together",
               "lhs": "Latin hypercube: points drawn over the ranges, every stratum used once per parameter"}


def _design_section(sweep: SweepReport) -> str:
    manifest = sweep.manifest
    kind = str(manifest.get("design", "?"))
    points = manifest.get("points") or []
    replicas = manifest.get("replicas")
    rows = [["design", DESIGN_TEXT.get(kind, kind)]]
    if kind == "lhs" and manifest.get("lhs_seed") is not None:
        rows.append(["Latin hypercube seed", str(manifest["lhs_seed"])])
    rows.append(["points", f"{len(points):,}"])
    rows.append(["replicas", f"{replicas} per point (seeds spawned from the point's seed)" if replicas
                 else "1 per point (the point's own seed)"])
    rows.append(["runs in the table", f"{sweep.rows:,} of {sum(len(s) for s in manifest.get('seeds') or []):,}"
                 f" ({len(sweep.failed):,} failed)"])
    seeds = manifest.get("seeds") or []
    if seeds and not _per_point_seeds(sweep):
        rows.append(["seeds", ", ".join(str(s) for s in seeds[0]) + " (the same at every point: common random "
                     "numbers)"])
    parameter_rows = []
    for p in sweep.parameters:
        values = [point.get(p) for point in points if isinstance(point, dict)]
        distinct = list(dict.fromkeys(_param_text(v) for v in values))
        if kind == "lhs" and values and all(_is_number(v) for v in values):
            shown = f"{_param_text(min(values))} – {_param_text(max(values))} ({len(values)} draws)"
        else:
            shown = ", ".join(distinct)
        parameter_rows.append([p, shown])
    parts = ["<h2>Design</h2>", _table(["", ""], rows, show_header=False)]
    if parameter_rows:
        parts.append(_table(["parameter", "values"], parameter_rows))
    else:
        parts.append('<p class="note">No swept parameter: replicas of the scenario only.</p>')
    return "\n".join(parts)


def _failed_section(sweep: SweepReport) -> str:
    if sweep.failed.empty:
        return ""
    rows = [[_Cell(str(int(r["point"]))), _Cell(str(int(r["replica"]))), str(int(r["seed"])),
             *[_param_text(r[p]) for p in sweep.parameters], str(r["error"])]
            for r in sweep.failed.to_dict("records")]
    return (f"<h2>Failed runs</h2>\n<p class=\"note\">{len(rows)} run(s) raised an error; their points' figures "
            "are over the replicas that finished.</p>\n"
            + _table(["point", "replica", "seed", *sweep.parameters, "error"], rows))


def _per_point_seeds(sweep: SweepReport) -> bool:
    """Whether the points have different seeds (then each point's are listed with it)."""
    seeds = sweep.manifest.get("seeds") or []
    return any(s != seeds[0] for s in seeds)


def _mean_interval(h: Headline, record: dict) -> str:
    mean, low, high = (record[f"{h.key}.{s}"] for s in ("mean", "ci95_low", "ci95_high"))
    if mean is None or math.isnan(mean):
        return "n/a"
    text = h.show(float(mean))
    if not math.isnan(low):
        text += f" [{h.show(float(low))}, {h.show(float(high))}]"
    return text


def _param_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# sweep plots: small (two per row on a wide screen), no software version in the PNG (the same bytes)
SWEEP_PLOT_SIZE = (7.0, 4.0)
SWEEP_PLOT_DPI = 100
MAX_LINES = 8  # more groups than this: the points are drawn against the parameter alone


@dataclass
class SweepLine:
    """One line of a sweep plot: its label (the other parameters' values; ``None`` for the only line), the x
    positions (the parameter's values, or positions of text values), and the figure's mean and 95 % bounds
    in display units, sorted by x."""

    label: str | None
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    others_fixed: bool = True  # False: the other swept parameters vary along the line (zip, Latin hypercube)

    @property
    def joined(self) -> bool:
        """Drawn as a line with a band when each x occurs once and nothing else varies along it, else as points
        with interval bars."""
        return self.others_fixed and len(np.unique(self.x)) == len(self.x)


def sweep_lines(sweep: SweepReport, h: Headline, parameter: str) -> tuple[list[SweepLine], list | None]:
    """The lines of the plot of key figure ``h`` against ``parameter``: one per value of the other swept
    parameters in a grid (at most ``MAX_LINES``), else one. Also the text values in design order (their x are
    0, 1, ...), or ``None`` for a numeric parameter."""
    points = sweep.points
    others = [p for p in sweep.parameters if p != parameter]
    column = points[parameter]
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    order = list(dict.fromkeys(column.tolist()))  # design order, for text values
    groups = [((), points)]
    if others and sweep.manifest.get("design") == "grid":
        grouped = [(key if isinstance(key, tuple) else (key,), frame)
                   for key, frame in points.groupby(others, sort=False)]
        if len(grouped) <= MAX_LINES:
            groups = grouped
    lines = []
    for key, frame in groups:
        x = frame[parameter].to_numpy() if numeric else np.array([order.index(v) for v in frame[parameter]])
        sort = np.argsort(x, kind="stable")
        mean, low, high = (frame[f"{h.key}.{s}"].to_numpy(dtype=float)[sort] * h.scale
                           for s in ("mean", "ci95_low", "ci95_high"))
        label = ", ".join(f"{p}={_param_text(v)}" for p, v in zip(others, key)) if key else None
        lines.append(SweepLine(label, x[sort].astype(float), mean, low, high, others_fixed=bool(key) or not others))
    return lines, None if numeric else order


def _sweep_plot(sweep: SweepReport, h: Headline, parameter: str) -> bytes:
    """PNG: the mean of key figure ``h`` against ``parameter``, with the 95 % interval as a band; one line per
    value of the other swept parameters (a grid of two or more), else one line (one parameter, each value once)
    or points with interval bars (the other parameters vary too: a zip or Latin hypercube over several)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.results.plots import ACCELERATOR_COLOURS, STYLE

    lines, categories = sweep_lines(sweep, h, parameter)
    with plt.rc_context({**STYLE, "figure.figsize": SWEEP_PLOT_SIZE, "figure.dpi": SWEEP_PLOT_DPI,
                         "savefig.dpi": SWEEP_PLOT_DPI, "font.size": 10, "axes.titlesize": 11,
                         "axes.labelsize": 10, "legend.fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9}):
        fig, ax = plt.subplots()
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.91)
        for i, line in enumerate(lines):
            colour = ACCELERATOR_COLOURS[i % len(ACCELERATOR_COLOURS)]
            if line.joined:
                ax.plot(line.x, line.mean, marker="o", color=colour, label=line.label)
                ax.fill_between(line.x, line.low, line.high, color=colour, alpha=0.2, linewidth=0)
            else:
                ax.errorbar(line.x, line.mean, yerr=np.vstack([line.mean - line.low, line.high - line.mean]),
                            fmt="o", color=colour, capsize=3, label=line.label)
        if categories is not None:
            ax.set_xticks(range(len(categories)), [_param_text(v) for v in categories])
            ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_xlabel(parameter)
        ax.set_ylabel(h.label + (f" ({h.unit})" if h.unit else ""))
        ax.set_title(f"{h.label} against {parameter}")
        if any(line.label for line in lines):
            ax.legend(loc="best")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
    return buffer.getvalue()


def page(title: str, sections: list[str]) -> str:
    """A whole HTML document: the title, the sections in order, the style and the render check."""
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n<script>{CHECK_SCRIPT}</script>\n</head>\n"
            f"<body>\n<h1>{_e(title)}</h1>\n{body}\n</body>\n</html>\n")


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1400px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f3f3f3}
.desc{font-size:1.05em;color:#444}.scroll{overflow-x:auto}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.cols{display:grid;gap:1em}
.plots{display:grid;gap:0 1em;grid-template-columns:repeat(auto-fill,minmax(600px,1fr))}.note{color:#666;font-size:.9em}
"""

# records in <html data-check="..."> whether every image decoded and no script error occurred (in <head>, so
# it listens before anything in the body runs)
CHECK_SCRIPT = """
(function(){var errors=[];
window.addEventListener("error",function(e){errors.push(String(e.message||e.type));});
var logError=console.error;console.error=function(){errors.push(Array.prototype.join.call(arguments," "));
logError.apply(console,arguments);};
window.addEventListener("load",function(){var images=document.images,broken=[];
for(var i=0;i<images.length;i++){if(!images[i].complete||images[i].naturalWidth<1){broken.push(images[i].alt);}}
var problems=[];if(errors.length){problems.push("errors: "+errors.join("; "));}
if(broken.length){problems.push("broken images: "+broken.join(", "));}
var check=problems.length?problems.join("; "):"ok "+images.length;
document.documentElement.setAttribute("data-check",check);document.title+=check.indexOf("ok")===0?" OK":" FAILED";});
})();
"""


# ---------------------------------------------------------------------------------------------- sections


def _scenario_section(run: RunFolder) -> str:
    scenario, manifest, summary = run.scenario or {}, run.manifest, run.summary
    description = summary.get("scenario", {}).get("description") or manifest.get("description") or ""
    rows = [["name", _scenario_name(run)]]
    if scenario:
        rows += [["start", str(scenario.get("start"))], ["duration", _duration(scenario.get("duration"))]]
    else:
        rows.append(["duration", _duration(summary.get("horizon_s"))])
    seed = scenario.get("seed", manifest.get("seed"))
    if seed is not None:
        rows.append(["seed", str(seed)])
    if run.replicas:
        rows.append(["replicas", f"{run.replicas} seeds spawned from this seed; plots and tables of the first"])
    if manifest.get("scenario_sha256"):
        rows.append(["scenario SHA-256", manifest["scenario_sha256"]])
    version = manifest.get("versions", {}).get("dcsim")
    if version:
        rows.append(["dcsim", str(version)])
    parts = ["<h2>Scenario</h2>"]
    if description.strip():
        parts.append(f'<p class="desc">{_e(description.strip())}</p>')
    parts.append(_table(["", ""], rows, show_header=False))
    if scenario.get("fleet") is not None:
        parts.append("<h3>Fleet</h3>\n" + _fleet_table(scenario))
    else:
        parts.append(f'<p class="note">This run folder has no {SCENARIO_FILE} (written from this version on), '
                     "so the fleet is not shown.</p>")
    return "\n".join(parts)


def _fleet_table(scenario: dict) -> str:
    rows = []
    for pool in scenario["fleet"]:
        accel = _accelerator_id(pool)
        window = f"{pool.get('online_from') or 'start'} – {pool.get('online_until') or 'end of run'}"
        deliveries = "; ".join(f"{d['date']}: +{d['chips']:,}" for d in pool.get("deliveries") or []) or "–"
        rows.append([pool.get("name", ""), accel, _n(pool.get("count")), pool.get("owner", "owned"), window,
                     deliveries, pool.get("sharing", "dedicated")])
    return _table(["pool", "accelerator", "chips", "owner", "online", "deliveries", "sharing"], rows)


def _key_figures_section(run: RunFolder) -> str:
    flat = flatten(run.summary)
    rows = []
    for h in headlines(run.summary, run.summary):
        if h.key not in flat:
            continue
        row = [h.label, h.unit, _Cell(h.show(flat[h.key]))]
        if run.intervals is not None:
            stats = run.intervals.get(h.key)
            row[2] = _Cell(h.show(float(stats["mean"])) if stats else h.show(flat[h.key]))
            row.append(_Cell(f"{h.show(float(stats['ci95_low']))} – {h.show(float(stats['ci95_high']))}"
                             if stats else "n/a"))
        rows.append(row)
    header = ["figure", "unit", "value"]
    note = ""
    if run.intervals is not None:
        header = ["figure", "unit", "mean", "95 % interval"]
        note = (f'<p class="note">Mean and 95 % interval over {run.replicas or "the"} seed replicas '
                f"({REPLICAS_FILE}).</p>\n")
    return f"<h2>Key figures</h2>\n{note}{_table(header, rows)}"


def _plots_section(run: RunFolder) -> str:
    if not run.plots:
        return '<h2>Plots</h2>\n<p class="note">This run wrote no plots (--no-plots).</p>'
    figures = "\n".join(_figure(name, data) for name, data in run.plots.items())
    return f'<h2>Plots</h2>\n<div class="plots">\n{figures}\n</div>'


def _accelerator_section(summary: dict) -> str:
    util = summary.get("utilization_by_accelerator", {})
    jct = summary.get("jct_s_by_accelerator", {})
    cost = summary.get("money", {}).get("cost_per_completed_job_usd", {})
    accels = sorted(set(util) | set(jct) | set(cost))
    if not accels:
        return ""
    rows = []
    for a in accels:
        j, c = jct.get(a, {}) or {}, cost.get(a, {}) or {}
        rows.append([a, _pct(util.get(a)), _n(c.get("jobs")), _hours(j.get("mean")), _hours(j.get("p50")),
                     _hours(j.get("p99")), _n(c.get("mean_usd"))])
    return "<h2>Per accelerator type</h2>\n" + _table(
        ["accelerator", "utilization %", "jobs completed", "JCT mean h", "JCT p50 h", "JCT p99 h",
         "cost per job USD"], rows)


def _pool_section(run: RunFolder) -> str:
    money = run.summary.get("money", {}).get("by_pool_usd", {})
    shared = run.summary.get("shared_pools", {})
    names = [p["name"] for p in (run.scenario or {}).get("fleet", [])]
    pools = names + sorted((set(money) | set(shared)) - set(names))
    if not (money or shared):
        return ""
    rows = [[p, _n(money.get(p)), _n(shared.get(p, {}).get("inference_chip_hours")),
             _n(shared.get(p, {}).get("chip_hours_lent_to_training"))] for p in pools]
    return "<h2>Per pool</h2>\n" + _table(
        ["pool", "chip cost USD", "inference chip-hours", "chip-hours lent to training"], rows)


SERVICE_COLUMNS = (  # (header, key of an LLM service, key of a ranking service, scale)
    ("completed", "requests.completed", "requests.completed", None),
    ("SLO %", "slo_attainment", "slo_attainment", "%"),
    ("TTFT / latency p50 ms", "ttft_s.p50", "latency_s.p50", "ms"),
    ("TTFT / latency p99 ms", "ttft_s.p99", "latency_s.p99", "ms"),
    ("TPOT p99 ms", "tpot_s.p99", None, "ms"),
    ("tokens/s or items/s", "tokens_per_s", "items_per_s", None),
    ("cost per 1M tokens / requests USD", "cost_per_1m_tokens_usd", "cost_per_1m_requests_usd", None),
    ("busy fraction", "utilization", None, None),
    ("load / saturation %", "load_frac", None, "%"),
)


def _service_section(summary: dict) -> str:
    services = summary.get("inference", {})
    if not services:
        return ""
    rows = []
    for name in sorted(services):
        svc = services[name]
        ranking = svc.get("family") == "ranking"
        kind = f"{'ranking' if ranking else 'llm'}, {svc.get('fidelity', 'request')}"
        rows.append([name, "all", kind, *_service_cells(svc, ranking)])
        for accel in sorted(svc.get("by_accelerator", {})):
            rows.append([name, accel, "", *_service_cells(svc["by_accelerator"][accel], ranking)])
    return "<h2>Per service</h2>\n" + _table(
        ["service", "accelerator", "kind", *[c[0] for c in SERVICE_COLUMNS]], rows)


def _service_cells(data: dict, ranking: bool) -> list:
    flat = flatten(data)
    if "completed" in data and "requests.completed" not in flat:
        flat["requests.completed"] = data["completed"]
    cells = []
    for _, llm_key, ranking_key, scale in SERVICE_COLUMNS:
        key = ranking_key if ranking else llm_key
        value = flat.get(key) if key else None
        cells.append(_scaled(value, scale))
    return cells


def _monthly_section(monthly: pd.DataFrame | None) -> str:
    if monthly is None or monthly.empty:
        return ""
    columns = list(monthly.columns)
    rows = [[_Cell(_plain(v)) if c != "month" else str(v) for c, v in zip(columns, record)]
            for record in monthly.itertuples(index=False, name=None)]
    return f'<h2>By month (monthly.csv)</h2>\n<div class="scroll">{_table(columns, rows)}</div>'


def _all_figures_section(summary: dict) -> str:
    flat = flatten({k: v for k, v in summary.items() if k != "scenario"})
    rows = [[key, _Cell(_plain(flat[key]))] for key in sorted(flat)]
    return ("<h2>Every figure of summary.json</h2>\n<details><summary>"
            f"{len(rows)} figures, under their summary.json keys</summary>\n{_table(['key', 'value'], rows)}\n"
            "</details>")


def _compare_figures_section(runs: list[RunFolder], labels: list[str]) -> str:
    flats = [flatten(r.summary) for r in runs]
    utilization = {a: 0 for r in runs for a in r.summary.get("utilization_by_accelerator", {})}
    services = {name: svc for r in runs for name, svc in r.summary.get("inference", {}).items()}
    union = {"utilization_by_accelerator": utilization, "inference": services}
    rows = []
    for h in headlines(union, union):
        if not any(h.key in f for f in flats):
            continue
        first = flats[0].get(h.key)
        cells = [h.label, h.unit, _Cell(h.show(first) if h.key in flats[0] else "–")]
        for f in flats[1:]:
            value = f.get(h.key)
            change = _change(first, value, h.fraction)
            shown = h.show(value) if h.key in f else "–"
            cells.append(_Cell(shown + (f" ({change})" if change and change != "=" else "")))
        rows.append(cells)
    return ("<h2>Key figures</h2>\n<p class=\"note\">In brackets: the change from the first run (percentage "
            "points for shares).</p>\n" + _table(["figure", "unit", *labels], rows))


def _compare_plots_section(runs: list[RunFolder], labels: list[str]) -> str:
    order = {name: i for i, name in enumerate(PLOT_FILES)}
    names = sorted({n for r in runs for n in r.plots}, key=lambda n: (order.get(n, len(order)), n))
    if not names:
        return '<h2>Plots</h2>\n<p class="note">These runs wrote no plots.</p>'
    grid = f'<div class="cols" style="grid-template-columns:repeat({len(runs)},minmax(0,1fr))">'
    parts = ["<h2>Plots</h2>", grid + "".join(f"<div><b>{_e(label)}</b></div>" for label in labels) + "</div>"]
    for name in names:
        cells = [_figure(name, r.plots[name], f"{label}: {name}") if name in r.plots
                 else f'<p class="note">{_e(label)}: no {_e(name)}</p>' for label, r in zip(labels, runs)]
        parts.append(grid + "".join(f"<div>{c}</div>" for c in cells) + "</div>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- helpers


class _Cell(str):
    """A table cell holding a number (right-aligned)."""


def _table(columns: list[str], rows: list[list], show_header: bool = True) -> str:
    lines = ["<table>"]
    if show_header:
        lines.append("<tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>")
    for row in rows:
        lines.append("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if isinstance(c, _Cell) else f"<td>{_e(c)}</td>"
                                      for c in row) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _figure(name: str, data: bytes, caption: str | None = None) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{_e(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(caption or name)}</figcaption></figure>")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value) -> str:
    """A number as the tables show it: whole numbers with separators, others to 6 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not _is_number(value):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.6g}"


def _n(value) -> _Cell:
    if not _is_number(value):
        return _Cell("–" if value is None else str(value))
    return _Cell(f"{value:,}" if isinstance(value, int) else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}")


def _scaled(value, scale: str | None) -> _Cell:
    if not _is_number(value):
        return _Cell("–")
    factor = {"%": 100.0, "ms": 1e3}.get(scale or "", 1.0)
    if scale == "%":
        return _Cell(f"{value * factor:.2f}")
    return _n(value * factor if scale else value)


def _pct(value) -> _Cell:
    return _Cell("–" if not _is_number(value) else f"{value * 100:.1f}")


def _hours(seconds) -> _Cell:
    if not _is_number(seconds):
        return _Cell("–")
    hours = seconds / 3600
    return _Cell(f"{hours:,.0f}" if abs(hours) >= 1000 else f"{hours:.3g}")


def _duration(seconds) -> str:
    if not _is_number(seconds):
        return "?"
    days, hours = seconds / 86400, seconds / 3600
    if seconds >= 86400:
        return f"{days:g} day{'' if days == 1 else 's'}"
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


def _scenario_name(run: RunFolder) -> str:
    return str(run.summary.get("scenario", {}).get("name") or run.manifest.get("scenario") or run.label)


def _accelerator_id(pool: dict) -> str:
    """A pool's accelerator: its catalog id, or the id of a spec given inline."""
    accelerator = pool.get("accelerator")
    return str(accelerator.get("id", "custom")) if isinstance(accelerator, dict) else str(accelerator)


def _run_label(index: int, run: RunFolder) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[index] if index < len(letters) else f"run {index + 1}"


def _brief_cells(run: RunFolder) -> list:
    scenario = run.scenario or {}
    fleet = "; ".join(f"{p.get('name')}: {p.get('count', 0):,} × {_accelerator_id(p)} ({p.get('owner', 'owned')})"
                      for p in scenario.get("fleet", [])) or "–"
    seed = scenario.get("seed", run.manifest.get("seed"))
    return [_scenario_name(run), str(scenario.get("start", "–")),
            _duration(scenario.get("duration", run.summary.get("horizon_s"))), "–" if seed is None else str(seed),
            fleet]


__all__ = ["COMPARE_FILE", "COMPLETE_MARKER", "REPORT_FILE", "SCENARIO_FILE", "RunFolder", "SweepReport",
           "check_out", "compare_html", "load_folder", "page", "read_run", "single_run_html", "sweep_html",
           "sweep_section", "write_report", "write_run_report"]
