"""Calibration of the failure model: simulated against published interruption and failure rates.

Usage:  python benchmarks/failures.py [--seeds 5]

Each row of ``benchmarks/data/failures/failures_published.csv`` (sources in ``SOURCE.md`` there) is simulated as
one pool of the row's accelerator holding one synchronous gang of the row's chips that runs for the row's window
(plus whole servers of hot spares, so that the gang restarts at once), with ``failures: {profile:
llm-cluster-typical}``, over ``--seeds`` seeds. It prints the published figure, the simulated mean and range, and
their ratio. Metrics: ``interruptions`` of the gang over the window (``unplanned``: maintenance left out),
``failures_per_1000_node_days`` (failure events striking the pool's chips per 1,000 nodes-days),
``mttf_h`` (window / interruptions of the gang) and ``chip_mtbf_h`` (chip-hours per failure event).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import sim

DATA = Path(__file__).resolve().parent / "data" / "failures" / "failures_published.csv"


def scenario_text(row: dict, seed: int) -> str:
    chips, per_node = int(row["chips"]), int(row["chips_per_node"])
    spares = max(64, chips // 32 // per_node * per_node)
    return f"""
schema_version: 1
name: calibrate-{row['case']}
seed: {seed}
start: 2026-01-01
duration: {row['days']}d
fleet:
  - {{name: pool, accelerator: {row['accelerator']}, count: {chips + spares}, chips_per_server: {per_node},
     servers_per_rack: 4}}
workloads:
  training:
    generator:
      jobs: 1
      arrival_rate_per_hour: 1
      chips: {{{chips}: 1.0}}
      models: {{llama3-70b: 1.0}}
      stacks: {{portable: 1.0}}
      duration_s: {{fixed: 1e9}}
failures: {{profile: llm-cluster-typical, checkpoint_interval: optimal, hot_spares: {{pool: {spares}}}}}
outputs:
  plots: false
"""


def simulated(row: dict, seed: int) -> float:
    summary = sim.run(sim.load_text(scenario_text(row, seed), f"calibrate-{row['case']}")).summary["failures"]
    chips, days = int(row["chips"]), float(row["days"])
    interruptions = summary["interruptions"]
    if row["classes"] == "unplanned":
        interruptions -= summary["interruptions_by_cause"]["maintenance"]
    metric = row["metric"]
    if metric == "interruptions":
        return float(interruptions)
    if metric == "mttf_h":
        return days * 24 / interruptions if interruptions else float("inf")
    if metric == "failures_per_1000_node_days":  # events over the gang's chips, the pool's spares aside
        return summary["events"] / (chips / int(row["chips_per_node"]) * days) * 1000
    if metric == "chip_mtbf_h":
        return chips * days * 24 / summary["events"] if summary["events"] else float("inf")
    raise ValueError(f"unknown metric {metric!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per row (seeds 1..N)")
    args = parser.parse_args()
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    print(f"{'case':<26} {'metric':<28} {'published':>10} {'simulated':>10} {'range':>17} {'sim/pub':>8}  source")
    for row in rows:
        values = [simulated(row, seed) for seed in range(1, args.seeds + 1)]
        mean, published = statistics.fmean(values), float(row["published"])
        print(f"{row['case']:<26} {row['metric']:<28} {published:>10.3g} {mean:>10.3g} "
              f"{f'{min(values):.3g}-{max(values):.3g}':>17} {mean / published:>8.2f}  {row['source']}", flush=True)


if __name__ == "__main__":
    main()
