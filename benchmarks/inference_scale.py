"""End-to-end speed of inference serving: the Azure conversation trace at 1×, 10× and 100×.

Usage:  python benchmarks/inference_scale.py

Each scale and fidelity runs ``sim.run`` on a scenario with one service (Llama 3 8B on H100 replicas,
replicas growing with the scale so the load stays stable) in a fresh subprocess, after a warm-up run,
and prints ``requests=N fidelity=request|fluid wall_s=… requests_per_s=… peak_rss_mb=…``. Wall time
includes reading and scaling the trace, serving and computing results (no plots, no files). The fluid
lines use 1-minute bins; their time is mostly reading and scaling the trace.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

SCALES = (1, 10, 100)
FIDELITIES = ("request", "fluid")


def scenario_text(scale: float, replicas: int, name: str = "bench", fidelity: str = "request") -> str:
    chips = replicas // 8 * 8 + 8
    return f"""
schema_version: 1
name: {name}
seed: 3
start: 2026-01-01
duration: 2h
fleet:
  - {{name: h100, accelerator: h100-sxm, count: {chips}, chips_per_server: 8, servers_per_rack: 4}}
workloads:
  inference:
    - name: chat
      model: llama3-8b
      fidelity: {fidelity}
      replicas: [{{pool: h100, count: {replicas}, chips_per_replica: 1}}]
      traffic:
        trace: {{format: azure-llm-2023, path: azure-llm-2023/AzureLLMInferenceTrace_conv.csv, scale: {scale}}}
      slo: {{ttft_p99_ms: 500, tpot_p99_ms: 60}}
outputs:
  plots: false
  timeseries_interval: 10min
"""


def one_run(scale: float, fidelity: str) -> None:
    import sim

    replicas = max(1, int(scale * 0.6 + 0.999))
    sim.run(sim.load_text(scenario_text(1, 1, "warm-up", fidelity), "warm-up"))
    scenario = sim.load_text(scenario_text(scale, replicas, fidelity=fidelity), "bench")
    start = time.perf_counter()
    results = sim.run(scenario)
    wall = time.perf_counter() - start
    chat = results.summary["inference"]["chat"]
    offered = chat["requests"]["offered"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"requests={offered} fidelity={fidelity} scale={scale:g} replicas={replicas} wall_s={wall:.2f} "
          f"requests_per_s={offered / wall:,.0f} peak_rss_mb={peak_mb:.0f} "
          f"completed={chat['requests']['completed']} slo_attainment={chat['slo_attainment']:.3f} "
          f"utilization={chat['utilization']:.3f} ttft_p99_s={chat['ttft_s']['p99']:.3f}", flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one_run(float(sys.argv[2]), sys.argv[3])
        return
    for fidelity in FIDELITIES:
        for scale in SCALES:
            subprocess.run([sys.executable, __file__, "--one", str(scale), fidelity], check=True)


if __name__ == "__main__":
    main()
