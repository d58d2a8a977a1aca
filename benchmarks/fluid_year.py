"""Fluid fidelity at fleet scale: one simulated year of 20 LLM services at diurnal load, 1-minute bins.

Usage:  python benchmarks/fluid_year.py [--services N] [--duration 1y] [--bin 1min]

Each service is Llama 3 8B on 8 H100 replicas (services 0, 2, 4, … route with least-work, the others
round-robin) with a diurnal Poisson generator at a different mean rate and peak hour, log-normal prompts
(a different median each, so no two services share length statistics) and exponential outputs.
Runs ``sim.run`` end to end (fleet build, fluid serving, time series, summary;
no plots, no files) after a short warm-up run, and prints ``services=… bins=… wall_s=… bins_per_s=… cpu_s=…
peak_rss_mb=…``, where bins counts fluid bins over all services (cpu_s: process time, which other load
on the machine does not inflate).
"""

from __future__ import annotations

import argparse
import resource
import time


def scenario_text(services: int, duration: str, bin_width: str, name: str = "fluid-year") -> str:
    chips = services * 8
    blocks = []
    for s in range(services):
        router = "least-work" if s % 2 == 0 else "round-robin"
        blocks.append(f"""
    - name: svc{s:02d}
      model: llama3-8b
      fidelity: fluid
      fluid_bin: {bin_width}
      replicas: [{{pool: h100, count: 8, chips_per_replica: 1}}]
      router: {{kind: {router}}}
      traffic:
        generator:
          rate_per_s: {4.0 + 0.5 * s:g}
          prompt_tokens: {{lognormal: {{median: {600 + 20 * s}, sigma: 0.8}}}}
          output_tokens: {{exponential: {{mean: 150}}}}
          diurnal: {{amplitude_frac: 0.6, peak_hour: {(10 + s) % 24}}}
      slo: {{ttft_p99_ms: 500, tpot_p99_ms: 60}}""")
    return f"""
schema_version: 1
name: {name}
seed: 5
start: 2026-01-01
duration: {duration}
fleet:
  - {{name: h100, accelerator: h100-sxm, count: {chips}, chips_per_server: 8, servers_per_rack: 4}}
workloads:
  inference:{"".join(blocks)}
outputs:
  plots: false
  timeseries_interval: 1h
"""


def main() -> None:
    import sim
    from sim.scenario.units import parse_duration_s

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--duration", default="1y")
    parser.add_argument("--bin", default="1min")
    args = parser.parse_args()
    sim.run(sim.load_text(scenario_text(2, "1d", args.bin, "warm-up"), "warm-up"))
    scenario = sim.load_text(scenario_text(args.services, args.duration, args.bin), "fluid-year")
    start, cpu = time.perf_counter(), time.process_time()
    results = sim.run(scenario)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    bins = args.services * int(round(parse_duration_s(args.duration) / parse_duration_s(args.bin)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = results.summary["inference"]["svc00"]
    print(f"services={args.services} duration={args.duration} bin={args.bin} bins={bins} wall_s={wall:.2f} "
          f"bins_per_s={bins / wall:,.0f} cpu_s={cpu:.2f} peak_rss_mb={peak_mb:.0f} "
          f"svc00_offered={first['requests']['offered']} "
          f"svc00_utilization={first['utilization']:.3f} svc00_ttft_p99_s={first['ttft_s']['p99']:.3f}", flush=True)


if __name__ == "__main__":
    main()
