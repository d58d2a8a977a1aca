"""Speed of the request-level LLM serving kernel alone (without trace reading and results).

Usage:  python benchmarks/inference_kernel.py

Replays the Azure LLM conversation trace (Splitwise, 19,366 requests in ~1 h) at 1×, 10× and 100× its
rate, scaled by superposing time-shifted copies, through one group of Llama-3-8B replicas on H100s
(one chip each, continuous batching, 8,192-token budget, chunked prefill, least-work routing). The
number of replicas grows with the scale so that the load stays stable. One line per scale:
``requests=N scale=… replicas=… wall_s=… requests_per_s=… done=… p50_ttft_s=… peak_rss_mb=…``.
Numba's compile time is printed apart; the timed runs use a warm kernel.
"""

from __future__ import annotations

import resource
import time
from importlib import resources
from pathlib import Path

import numpy as np

from sim.catalog import builtin_catalog
from sim.kernels.serving_compiled import serve_llm
from sim.kernels.serving_reference import ROUTER_LEAST_WORK, no_switches, replica_tables
from sim.workload.requests import read_azure_llm, scale_requests

TRACE = Path(str(resources.files("sim.workload").joinpath("traces", "azure-llm-2023",
                                                          "AzureLLMInferenceTrace_conv.csv")))


def kernel_parameters() -> dict:
    catalog = builtin_catalog()
    chip, model = catalog.accelerators["h100-sxm"], catalog.models["llama3-8b"]
    return dict(token_budget=8192, max_seqs=256, kv_capacity_tokens=300_000, chunked_prefill=True,
                flop_per_token=2.0 * model.params, flops_per_s=chip.peak_flops * chip.stacks["cuda"],
                weight_bytes=2.0 * model.params, kv_bytes_per_token=131_072.0,
                bytes_per_s=chip.memory_bandwidth_tbps * 1e12 * 0.8, overhead_s=0.003)


def run(requests, replicas: int, params: dict, horizon_s: float):
    replica_int, replica_float = replica_tables([(replicas, params)])
    return serve_llm(requests["arrival_s"].to_numpy(), requests["prompt_tokens"].to_numpy(),
                     requests["output_tokens"].to_numpy(), replica_int, replica_float, ROUTER_LEAST_WORK, np.inf,
                     np.inf, *no_switches(), horizon_s, 3600.0)


def main() -> None:
    trace = read_azure_llm(TRACE)
    params = kernel_parameters()
    start = time.perf_counter()
    tiny = trace.iloc[:50]
    run(tiny, 2, params, 1e5)
    print(f"numba_compile_or_cache_load_s={time.perf_counter() - start:.2f}")
    for scale in (1, 10, 100):
        requests = scale_requests(trace, scale, np.random.default_rng(scale))
        replicas = max(1, int(np.ceil(0.45 * scale)))
        arrival = requests["arrival_s"].to_numpy()
        start = time.perf_counter()
        status, _, first, *_ = run(requests, replicas, params, float(arrival[-1]) + 3600.0)
        wall = time.perf_counter() - start
        done = status == 0
        ttft = np.median(first[done] - arrival[done])
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"requests={len(requests)} scale={scale} replicas={replicas} wall_s={wall:.2f} "
              f"requests_per_s={len(requests) / wall:,.0f} done={done.mean():.3f} p50_ttft_s={ttft:.3f} "
              f"peak_rss_mb={peak_mb:.0f}", flush=True)


if __name__ == "__main__":
    main()
