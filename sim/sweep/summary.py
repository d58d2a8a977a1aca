"""A sweep's table read back per point: each figure's mean and 95 % interval over the point's replicas, and
the short text ``dcsim sweep`` prints."""

from __future__ import annotations

import math

import pandas as pd

from sim.results.compare import Headline, format_table
from sim.sweep.intervals import interval
from sim.sweep.table import ERROR, KEY_COLUMNS

MAX_PRINTED_POINTS = 40
MAX_PRINTED_ERRORS = 10


def figure_columns(table: pd.DataFrame, parameters) -> list[str]:
    return [c for c in table.columns if c not in (*KEY_COLUMNS, *parameters, ERROR)]


def point_intervals(table: pd.DataFrame, parameters, figures: list[str] | None = None) -> pd.DataFrame:
    """One row per point: ``point``, the parameters, ``runs`` (rows without error) and, per figure,
    ``<figure>.mean``, ``<figure>.ci95_low``, ``<figure>.ci95_high`` over the point's replicas that ran."""
    figures = figure_columns(table, parameters) if figures is None else figures
    rows = []
    for point, group in table.groupby("point", sort=True):
        ok = group[group[ERROR].isna()]
        row = {"point": point, **{p: group[p].iloc[0] for p in parameters}, "runs": len(ok)}
        for figure in figures:
            stats = interval(ok[figure].to_numpy()) if figure in ok else interval([])
            row.update({f"{figure}.mean": stats["mean"], f"{figure}.ci95_low": stats["ci95_low"],
                        f"{figure}.ci95_high": stats["ci95_high"]})
        rows.append(row)
    return pd.DataFrame(rows)


def _headlines(table: pd.DataFrame) -> list[Headline]:
    rows = [Headline("jobs.completed", "jobs done", ""), Headline("jct_s.mean", "JCT mean", "h", 1 / 3600),
            Headline("facility_energy_kwh", "energy", "MWh", 1e-3)]
    for column in table.columns:
        if column.startswith("inference.") and column.endswith(".slo_attainment") and column.count(".") == 2:
            rows.append(Headline(column, f"{column.split('.')[1]} SLO", "%", 100, True))
    return [h for h in rows if h.key in table.columns and table[h.key].notna().any()]


def sweep_text(table: pd.DataFrame, parameters) -> str:
    """Per point: its parameters and the headline figures as mean [95 % interval] over its replicas; then
    the failed rows with their errors."""
    heads = _headlines(table)
    summary = point_intervals(table, parameters, [h.key for h in heads])
    header = ["point", *parameters, "runs", *[f"{h.label}" + (f" ({h.unit})" if h.unit else "") for h in heads]]
    lines = []
    for _, row in summary.head(MAX_PRINTED_POINTS).iterrows():
        cells = [str(int(row["point"])), *[_param(row[p]) for p in parameters], str(int(row["runs"]))]
        for h in heads:
            mean, low, high = row[f"{h.key}.mean"], row[f"{h.key}.ci95_low"], row[f"{h.key}.ci95_high"]
            text = _show(h, mean)
            if not math.isnan(low):
                text += f" [{_show(h, low)}, {_show(h, high)}]"
            cells.append(text)
        lines.append(cells)
    text = format_table(header, lines)
    if len(summary) > MAX_PRINTED_POINTS:
        text += f"\n... {len(summary) - MAX_PRINTED_POINTS} more points in the table"
    failed = table[table[ERROR].notna()]
    for _, row in failed.head(MAX_PRINTED_ERRORS).iterrows():
        text += f"\nfailed: point {int(row['point'])} replica {int(row['replica'])}: {row[ERROR]}"
    if len(failed) > MAX_PRINTED_ERRORS:
        text += f"\n... {len(failed) - MAX_PRINTED_ERRORS} more failed rows (column 'error')"
    return text


def _param(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(headline: Headline, value: float) -> str:
    return "n/a" if math.isnan(value) else headline.show(float(value))
