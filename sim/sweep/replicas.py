"""Replicas of one scenario: the same scenario run with ``N`` seeds spawned from its own, and every figure
as a mean with a 95 % interval over them (``sim.sweep.intervals``).

What is replicated is everything drawn from the seed: generated jobs and their arrivals, sizes, models and
durations, inference traffic, ranking request sizes, and every other stream of ``sim.rng``. A trace replayed
as recorded is the same in every replica, so only what the scenario draws at random varies.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.results.compare import format_table, headlines
from sim.results.output_folder import DCSIM_FILES, check_writable_folder
from sim.results.results import Results, json_text
from sim.sweep.figures import summary_figures
from sim.sweep.intervals import interval, intervals
from sim.sweep.seeds import replica_seeds
from sim.sweep.table import write_atomic

REPLICA_FOLDER = "replica-{k}"
_REPLICA_RE = re.compile(r"^replica-\d+$")
BAND = (5, 95)  # percentiles of the time-series band over replicas


@dataclass(repr=False)
class Replicas:
    """``N`` runs of one scenario with spawned seeds: ``results[k]`` ran with ``seeds[k]``."""

    scenario: object
    seeds: list[int]
    results: list[Results]

    @property
    def figures(self) -> pd.DataFrame:
        """One row per replica: ``replica``, ``seed`` and every figure of its summary (floats)."""
        rows = [{"replica": k, "seed": seed, **summary_figures(r.summary)}
                for k, (seed, r) in enumerate(zip(self.seeds, self.results))]
        frame = pd.DataFrame(rows)
        names = sorted(c for c in frame.columns if c not in ("replica", "seed"))
        return frame[["replica", "seed", *names]]

    @property
    def summary(self) -> pd.DataFrame:
        """One row per figure: ``n, mean, std, ci95_low, ci95_high, min, max`` over the replicas."""
        table = self.figures
        return intervals(table, [c for c in table.columns if c not in ("replica", "seed")])

    def timeseries_band(self) -> pd.DataFrame:
        """Per time bin and numeric time-series column: the mean over replicas and the 5th and 95th
        percentiles (``<column>.mean``, ``<column>.p5``, ``<column>.p95``); bins are the same in every
        replica (same horizon and interval)."""
        series = [r.timeseries for r in self.results]
        columns = [c for c in series[0].columns
                   if c != "time_s" and pd.api.types.is_numeric_dtype(series[0][c]) and all(c in s for s in series)]
        band = {"time_s": series[0]["time_s"].to_numpy()}
        for column in columns:
            stack = np.vstack([s[column].to_numpy(dtype=float) for s in series])
            band[f"{column}.mean"] = stack.mean(axis=0)
            band[f"{column}.p{BAND[0]}"] = np.percentile(stack, BAND[0], axis=0)
            band[f"{column}.p{BAND[1]}"] = np.percentile(stack, BAND[1], axis=0)
        return pd.DataFrame(band)

    def table(self) -> str:
        """The headline figures (those ``dcsim compare`` leads with) as mean, 95 % interval, min and max."""
        first, last = self.results[0].summary, self.results[-1].summary
        figures = self.figures
        rows = []
        for h in headlines(first, last):
            if h.key not in figures:
                continue
            stats = interval(figures[h.key].to_numpy())
            rows.append([h.label, h.unit, _show(h, stats["mean"]),
                         f"[{_show(h, stats['ci95_low'])}, {_show(h, stats['ci95_high'])}]",
                         f"{_show(h, stats['min'])} – {_show(h, stats['max'])}"])
        return format_table(["figure", "unit", "mean", "95 % interval", "min – max"], rows)

    def __repr__(self) -> str:
        name = getattr(self.scenario, "name", "?")
        return f"Replicas({name!r}, {len(self.results)} replicas, seeds {self.seeds})"

    def save(self, directory: str | Path, plots: bool | None = None, report: bool = True) -> Path:
        """Write each replica's run into ``directory/replica-<k>/`` (as ``Results.save``, without a report of
        its own) and the summaries beside them: ``replicas.json`` (seeds and every figure's interval),
        ``replicas.csv`` (the intervals, one row per figure), ``timeseries_band.csv``, and (unless ``report``
        is false) ``report.html``: the key figures as mean and interval, with the first replica's plots
        (``sim.results.report_html``). dcsim's files of an earlier plain run in ``directory`` and replica
        folders beyond this run's count are removed, so nothing stale is read as this run."""
        folder = check_writable_folder(directory, option="output folder")
        folder.mkdir(parents=True, exist_ok=True)
        for k, results in enumerate(self.results):
            results.save(folder / REPLICA_FOLDER.format(k=k), plots=plots, report=False)
        for name in DCSIM_FILES:
            (folder / name).unlink(missing_ok=True)
        for stale in folder.iterdir():
            if _REPLICA_RE.match(stale.name) and int(stale.name.split("-")[1]) >= len(self.results):
                shutil.rmtree(stale, ignore_errors=True)
        summary = self.summary
        record = {"scenario": getattr(self.scenario, "name", None), "seed": getattr(self.scenario, "seed", None),
                  "replicas": len(self.results), "seeds": self.seeds, "confidence": 0.95,
                  "figures": {name: row for name, row in summary.to_dict("index").items()}}
        write_atomic(folder / "replicas.json", lambda p: p.write_text(json_text(record), encoding="utf-8"))
        write_atomic(folder / "replicas.csv", lambda p: summary.to_csv(p))
        write_atomic(folder / "timeseries_band.csv", lambda p: self.timeseries_band().to_csv(p, index=False))
        if report:
            from sim.results.report_html import write_report

            write_report([folder])
        return folder


def _show(headline, value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else headline.show(float(value))


def run_replicas(scenario, replicas: int, progress: bool = False) -> Replicas:
    """Run ``scenario`` once per seed spawned from its seed, in this process, and keep every ``Results``."""
    from sim import runner

    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ValueError(f"replicas: give a whole number of at least 1, got {replicas!r}")
    seeds = replica_seeds(scenario.seed, replicas)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=replicas, unit="replica", desc="dcsim: replicas", leave=False)
    results = []
    try:
        for seed in seeds:
            results.append(runner.run(scenario.with_overrides({"seed": seed}, via="replica")))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Replicas(scenario, seeds, results)
