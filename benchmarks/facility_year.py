"""What the facility model adds to a run: a simulated year at hourly weather for a 100k-chip fleet.

Usage:  python benchmarks/facility_year.py [--chips 100000] [--days 365] [--jobs 20000]

Fleet (shares of ``--chips``): air-cooled H100 (40 %), MTIA v2 on rear-door heat exchangers (30 %) and liquid
TPU v6e (30 %) at the temperate built-in climate, with a daily-profile energy price; a training stream of
``--jobs`` Philly-runtime jobs and one fluid chat service. Runs ``sim.run`` end to end (``total_s``, after a
short warm-up run that compiles the kernels), then times the facility step alone on that run's IT power per
hourly bin (``facility_s``: the weather, cooling-plant, price and carbon kernels, embodied carbon, the summary and
monthly figures: what the runner calls), and prints ``chips=… days=… facility_s=… total_s=…``.
"""

from __future__ import annotations

import argparse
import time


def scenario_text(chips: int, days: int, jobs: int) -> str:
    h100, mtia, tpu = (max(domain, int(chips * frac) // domain * domain)
                       for frac, domain in ((0.4, 32), (0.3, 72), (0.3, 32)))
    return f"""
schema_version: 1
name: facility-year
seed: 3
start: 2026-01-01
duration: {days}d
site:
  climate: greensboro
  electricity_usd_per_kwh: {{mean: 0.075, daily: [0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1, 1, 1.1, 1.1, 1.2, 1.2, 1.2, 1.3,
                                                 1.3, 1.3, 1.2, 1.1, 1, 1, 0.9, 0.9, 0.8, 0.8]}}
fleet:
  - {{name: h100, accelerator: h100-sxm, count: {h100}, chips_per_server: 8, servers_per_rack: 4}}
  - {{name: mtia, accelerator: mtia-v2, count: {mtia}, chips_per_server: 24, servers_per_rack: 3,
     cooling: rear-door}}
  - {{name: tpu, accelerator: tpu-v6e, count: {tpu}, chips_per_server: 8, servers_per_rack: 4, cooling: liquid}}
workloads:
  inference:
    - name: chat
      model: llama3-70b
      fidelity: fluid
      replicas: [{{pool: h100, count: 64, chips_per_replica: 8, token_budget: 2048}}]
      traffic:
        generator:
          rate_per_s: 40
          prompt_tokens: {{lognormal: {{median: 1000, sigma: 0.9}}}}
          output_tokens: {{exponential: {{mean: 250}}}}
          diurnal: {{amplitude_frac: 0.6, peak_hour: 15}}
  training:
    generator:
      jobs: {jobs}
      arrival_rate_per_hour: {jobs / (days * 24):g}
      chips: {{8: 0.5, 64: 0.3, 512: 0.2}}
      models: {{llama3-8b: 0.6, bert-large: 0.4}}
      stacks: {{portable: 1.0}}
      duration_s: {{empirical: philly-runtime}}
      reference_accelerator: h100-sxm
"""


def main() -> None:
    import numpy as np

    import sim
    from sim import facility
    from sim.fleet import build_fleet
    from sim.validation.checks import scenario_catalog

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    sim.run(sim.load_text(scenario_text(2_000, 2, 50), "warm-up.yaml"))  # compile the kernels outside the timing
    scenario = sim.load_text(scenario_text(args.chips, args.days, args.jobs), "facility-year.yaml")
    started = time.perf_counter()
    results = sim.run(scenario)
    total_s = time.perf_counter() - started
    ts = results.timeseries
    fleet = build_fleet(scenario, scenario_catalog(scenario))
    horizon = float(scenario.duration)
    edges = np.append(ts["time_s"].to_numpy(), horizon)
    pool_it = {p.name: ts[f"it_power_kw.{p.name}"].to_numpy() for p in fleet.pools}
    ledger = results.ledger
    started = time.perf_counter()
    model = facility.facility_model(scenario.site, fleet.site)
    fleet = facility.planning_site(model, fleet)
    run = facility.evaluate(model, fleet, edges, pool_it, scenario.start, horizon)
    facility.series_columns(run)
    facility.summary_fields(model, run, ts["it_power_kw"].to_numpy(), edges, ledger.month_edges_s, ledger.months,
                            results.summary["peak_it_power_kw"] * 1e3)
    facility.monthly_columns(run, ts["it_power_kw"].to_numpy(), edges, ledger.month_edges_s)
    facility_s = time.perf_counter() - started
    print(f"chips={sum(p.count for p in fleet.pools)} days={args.days} facility_s={facility_s:.3f} "
          f"total_s={total_s:.1f} pue_mean={results.summary['facility']['pue_mean']:.3f}")


if __name__ == "__main__":
    main()
