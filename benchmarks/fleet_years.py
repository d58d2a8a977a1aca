"""The planner's question at fleet scale: two simulated years of a 100k-chip fleet whose capacity changes at
dates, a rented pool with a contract window, a training stream of 200k jobs and ten fluid services.

Usage:  python benchmarks/fleet_years.py [--years 2] [--jobs 200000] [--chips 100000]

Fleet (shares of ``--chips``): owned H100 (40 %) and MTIA v2 (30 %) from the start, TPU v6e rented from month 3
to month 18 (10 %), owned TPU v7 from month 14 (20 %). Deliveries are whole pools coming online at their dates
(deliveries that join one pool arrive with that capability). Training: ``--jobs`` generated jobs of 8–1,024 chips
arriving over the horizon with 50 %/year growth, Philly runtimes. Inference: six Llama services (70B on the
H100s, 8B on the H100s) and four DLRM ranking services on MTIA, all at the fluid fidelity, diurnal, growing
75 %/year. Runs ``sim.run`` end to end (build, serving, training, money, results; no plots, no files) after a
short warm-up run that compiles the kernels, and prints ``years=… chips=… jobs=… services=10 wall_s=…
peak_rss_mb=… completed=… cost_musd=…``.
"""

from __future__ import annotations

import argparse
import resource
import time


def scenario_text(years: int, jobs: int, chips: int, name: str = "fleet-years") -> str:
    def share(frac: float, domain: int) -> int:
        return max(domain, int(chips * frac) // domain * domain)

    h100, mtia, tpu_cloud, tpu_own = share(0.4, 32), share(0.3, 72), share(0.1, 32), share(0.2, 64)
    llm = [("chat-70b-{}", "llama3-70b", 8, 48, 30.0), ("code-8b-{}", "llama3-8b", 1, 256, 60.0)]
    services = []
    for k in range(3):
        for pattern, model, per_replica, count, rate in llm:
            services.append(f"""
    - name: {pattern.format(k)}
      model: {model}
      fidelity: fluid
      replicas: [{{pool: h100, count: {count}, chips_per_replica: {per_replica}, token_budget: 2048}}]
      traffic:
        generator:
          rate_per_s: {rate * (1 + 0.2 * k):g}
          prompt_tokens: {{lognormal: {{median: {900 + 100 * k}, sigma: 0.8}}}}
          output_tokens: {{exponential: {{mean: 200}}}}
          diurnal: {{amplitude_frac: 0.6, peak_hour: {(12 + 5 * k) % 24}}}
          growth: {{per_year: 0.75}}
      slo: {{ttft_p99_ms: 1000, tpot_p99_ms: 100}}""")
    for k in range(4):
        services.append(f"""
    - name: feed-{k}
      model: dlrm-dcnv2
      family: ranking
      fidelity: fluid
      replicas: [{{pool: mtia, count: 256, chips_per_replica: 1, max_batch: 1, max_queue_delay_ms: 2}}]
      traffic:
        generator:
          rate_per_s: {3000 + 500 * k}
          items_per_request: {{lognormal: {{median: 4000, sigma: 0.5}}}}
          diurnal: {{amplitude_frac: 0.5, peak_hour: {(6 * k) % 24}}}
          growth: {{per_year: 0.75}}
      slo: {{latency_p99_ms: 25}}""")
    rate_per_hour = jobs / (years * 8760 * 1.3)  # growth of 50 %/year raises the mean rate by about 1.3 over 2 y
    return f"""
schema_version: 1
name: {name}
seed: 8
start: 2026-01-01
duration: {years}y
site: {{pue: 1.2, electricity_usd_per_kwh: 0.07, carbon_g_per_kwh: 350}}
fleet:
  - {{name: h100, accelerator: h100-sxm, count: {h100}, chips_per_server: 8, servers_per_rack: 4}}
  - {{name: mtia, accelerator: mtia-v2, count: {mtia}, chips_per_server: 24, servers_per_rack: 3}}
  - {{name: tpu-cloud, accelerator: tpu-v6e, count: {tpu_cloud}, chips_per_server: 8, servers_per_rack: 4,
     cooling: liquid, owner: rented, online_from: 2026-03-01, online_until: 2027-06-30}}
  - {{name: tpu-own, accelerator: tpu-v7, count: {tpu_own}, chips_per_server: 4, servers_per_rack: 16,
     cooling: liquid, online_from: 2027-03-01}}
porting:
  - {{from_stack: cuda, accelerator: tpu-v6e, efficiency_frac: 0.6}}
  - {{from_stack: cuda, accelerator: tpu-v7, efficiency_frac: 0.6}}
  - {{from_stack: xla, accelerator: h100-sxm, efficiency_frac: 0.6}}
workloads:
  training:
    generator:
      jobs: {jobs}
      arrival_rate_per_hour: {rate_per_hour:.4g}
      growth: {{per_year: 0.5}}
      chips: {{8: 0.4, 16: 0.25, 64: 0.2, 256: 0.1, 1024: 0.05}}
      models: {{llama3-8b: 0.4, bert-large: 0.2, dlrm-dcnv2: 0.2, resnet50: 0.2}}
      stacks: {{cuda: 0.5, xla: 0.25, mtia: 0.1, portable: 0.15}}
      duration_s: {{empirical: philly-runtime}}
      reference_accelerator: h100-sxm
  inference:{"".join(services)}
policy:
  scheduler: {{kind: hetero-aware, objective: earliest-finish}}
outputs:
  plots: false
  timeseries_interval: 1h
"""


def main() -> None:
    import sim

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--chips", type=int, default=100_000)
    args = parser.parse_args()
    sim.run(sim.load_text(scenario_text(args.years, 500, args.chips, "warm-up"), "warm-up.yaml"))
    scenario = sim.load_text(scenario_text(args.years, args.jobs, args.chips), "fleet-years.yaml")
    start = time.perf_counter()
    results = sim.run(scenario)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chips = sum(p.count for p in scenario.fleet)
    s = results.summary
    print(f"years={args.years} chips={chips} jobs={s['jobs']['in_input']} services={len(s['inference'])} "
          f"wall_s={wall:.2f} peak_rss_mb={peak_mb:.0f} completed={s['jobs']['completed']} "
          f"cost_musd={s['money']['total_cost_usd'] / 1e6:.1f}")


if __name__ == "__main__":
    main()
