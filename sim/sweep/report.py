"""A sweep folder's report: ``sweep-report.html`` from ``sweep.json``, ``sweep.parquet`` and ``scenario.json``.

This module reads the folder and computes what the report shows (per point, each key figure's mean and 95 %
interval over the point's replicas, ``sim.sweep.summary.point_intervals``); ``sim.results.report_html``
renders it (tables, and one plot per key figure and swept parameter). The key figures are those ``dcsim
compare`` leads with (``sim.results.compare.headlines``), kept when the table has a value for them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from sim.results.compare import SummaryError, headlines
from sim.results.report_html import SweepReport, check_out, read_json_object, sweep_html, write_text_atomic
from sim.sweep.summary import point_intervals
from sim.sweep.table import ERROR, KEY_COLUMNS, MANIFEST, SCENARIO, TABLE

SWEEP_REPORT_FILE = "sweep-report.html"


def is_sweep_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a sweep's manifest (``sweep.json``)."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def read_sweep(path: str | Path) -> SweepReport:
    """What the report of the sweep folder ``path`` shows. Raises ``SummaryError`` (one line) when the folder
    holds no readable sweep."""
    folder = Path(path)
    manifest = read_json_object(folder / MANIFEST)
    if manifest.get("kind") != "dcsim-sweep" or not isinstance(manifest.get("parameters"), list):
        raise SummaryError(f"{folder / MANIFEST}: not a dcsim sweep manifest (no kind 'dcsim-sweep')")
    if not (folder / TABLE).is_file():
        raise SummaryError(f"{folder}: no {TABLE} yet (the sweep finished no row); run or --resume the sweep first")
    try:
        table = pd.read_parquet(io.BytesIO((folder / TABLE).read_bytes()), engine="pyarrow")
    except (OSError, ValueError) as exc:
        raise SummaryError(f"{folder / TABLE}: cannot read it as a sweep table ({exc})") from None
    parameters = [str(p) for p in manifest["parameters"]]
    missing = [c for c in (*KEY_COLUMNS, *parameters, ERROR) if c not in table.columns]
    if missing:
        raise SummaryError(f"{folder / TABLE}: not this sweep's table (missing columns {', '.join(missing)})")
    scenario = read_json_object(folder / SCENARIO) if (folder / SCENARIO).is_file() else None
    heads = key_figures(table)
    points = point_intervals(table, parameters, [h.key for h in heads])
    failed = table.loc[table[ERROR].notna(), [*KEY_COLUMNS, *parameters, ERROR]].reset_index(drop=True)
    return SweepReport(label=str(path), manifest=manifest, scenario=scenario, parameters=parameters,
                       headlines=heads, points=points, failed=failed, rows=len(table))


def key_figures(table: pd.DataFrame) -> list:
    """The headline figures of ``dcsim compare`` that the table has a value for, in its order."""
    utilization = {c.split(".", 1)[1]: 0 for c in table.columns if c.startswith("utilization_by_accelerator.")}
    services: dict[str, dict] = {}
    for column in table.columns:
        parts = column.split(".")
        if parts[0] == "inference" and len(parts) > 2:
            services.setdefault(parts[1], {})
    for name, service in services.items():  # a ranking service reports latency_s, not ttft_s
        if f"inference.{name}.latency_s.p99" in table.columns and f"inference.{name}.ttft_s.p99" not in table.columns:
            service["family"] = "ranking"
    shape = {"utilization_by_accelerator": utilization, "inference": services}
    return [h for h in headlines(shape, shape) if h.key in table.columns and table[h.key].notna().any()]


def write_sweep_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the sweep folder ``path`` (default ``path/sweep-report.html``); return the file.
    Raises ``SummaryError`` for a folder without a readable sweep, ``OutputError`` for an unwritable file."""
    report = read_sweep(path)
    target = Path(path) / SWEEP_REPORT_FILE if out is None else check_out(out)
    write_text_atomic(target, sweep_html(report))
    return target
