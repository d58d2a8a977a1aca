"""The figures that examples/classroom-walkthrough.md quotes, computed by dcsim's own code.

    python examples/classroom_walkthrough.py [--out DIR]

prints every figure and writes them to DIR/figures.json (default outputs/classroom-walkthrough/). Two kinds:

* ``chip.*``, ``model.*``, ``roofline.*``, ``fit.*``, ``network.*``, ``perf_per_w.*``: the training roofline of
  each model on each chip of scenarios/classroom-hetero.yaml, taken apart with the training kernel itself
  (``sim.kernels.reference.training_time_s``): each term (compute, memory, network) is the kernel's step time
  with the other two roofs made unlimited, so these are the numbers the simulator uses, not a re-derivation.
* ``run.*``: a full run of the scenario (a week of 600 generated jobs): where the scheduler put each model.

tests/test_examples.py runs this and fails when a figure in the walk-through disagrees with it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

import sim
from sim.catalog.efficiency import efficiency_matrix
from sim.kernels import reference as kernel
from sim.validation.checks import scenario_catalog

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "classroom-hetero.yaml"
UNLIMITED = 1e30  # a roof no step reaches
GANG = 8  # chips per job for the roofline comparison: one H100 server, inside every chip's scale-up domain
BIG_GANG = 16  # chips per job for the interconnect figure: two H100 servers


def _step(model, accel, efficiency: float, gang: int, compute=True, memory=True, network=True) -> tuple[float, int]:
    """(step time [s], status) of one micro-step of ``model`` on ``gang`` chips of ``accel``, from the kernel;
    a roof switched off is made unlimited."""
    one = np.ones(1)
    time, status = kernel.training_time_s(
        one * model.microbatch_samples * gang, one * model.train_flop_per_sample, one * model.params,
        one * model.train_bytes_per_param, one * model.activation_bytes_per_sample, one * model.microbatch_samples,
        one * model.embedding_params, one * gang,
        one * (accel.peak_flops if compute else UNLIMITED),
        one * (accel.memory_bandwidth_tbps * 1e12 if memory else UNLIMITED),
        one * (accel.memory_gb * 1e9), one * (accel.scale_up_bandwidth_gbps * 1e9 if network else UNLIMITED),
        one * (accel.scale_out_bandwidth_gbps * 1e9 if network else UNLIMITED),
        one * accel.scale_up_domain_chips, np.array([math.inf]), np.array([[efficiency]]))
    return float(time[0, 0]), int(status[0, 0])


def roofline_figures(scenario) -> dict:
    catalog = scenario_catalog(scenario)
    chips = [catalog.accelerators[p.accelerator] for p in scenario.fleet]
    models = [catalog.models[m] for m in scenario.workloads.training.generator.models]
    figures: dict = {}
    for a in chips:
        native = max(a.stacks.values())  # the chip's best stack (cuda, xla, mtia)
        bandwidth = a.memory_bandwidth_tbps * 1e12
        figures[f"chip.{a.id}"] = {
            "bf16_tflops": a.bf16_tflops, "memory_bandwidth_tbps": a.memory_bandwidth_tbps, "memory_gb": a.memory_gb,
            "tdp_w": a.tdp_w, "native_efficiency": native, "scale_up_gbps": a.scale_up_bandwidth_gbps,
            "scale_up_domain_chips": a.scale_up_domain_chips, "scale_out_gbps": a.scale_out_bandwidth_gbps,
            # the ridge point: the arithmetic intensity above which a step is compute-bound [FLOP/B]
            "ridge": a.peak_flops / bandwidth, "ridge_native": a.peak_flops * native / bandwidth}
    h100 = catalog.accelerators["h100-sxm"]
    for m in models:
        for a in chips:
            native = max(a.stacks.values())
            compute, _ = _step(m, a, native, GANG, memory=False, network=False)
            memory, _ = _step(m, a, native, GANG, compute=False, network=False)
            # FLOPs and bytes of one micro-step on one chip, recovered from the kernel's two terms (per chip,
            # they do not depend on the gang size)
            flops, moved = compute * a.peak_flops * native, memory * a.memory_bandwidth_tbps * 1e12
            figures.setdefault(f"model.{m.id}", {"intensity": flops / moved, "params_b": m.params / 1e9,
                                                 "train_bytes_per_param": m.train_bytes_per_param})
            step, status = _step(m, a, native, GANG)
            assert status == kernel.STATUS_OK, (m.id, a.id, status)
            network, _ = _step(m, a, native, GANG, compute=False, memory=False)
            assert math.isclose(step, max(compute, memory, network), rel_tol=1e-9), (m.id, a.id)  # the terms add up
            rate = m.microbatch_samples / step  # samples/s per chip
            h100_rate = m.microbatch_samples / _step(m, h100, max(h100.stacks.values()), GANG)[0]
            figures[f"roofline.{m.id}.{a.id}"] = {
                "bound": "memory" if memory > compute else "compute",
                "compute_roof_frac": min(compute / memory, 1.0),  # share of the derated compute roof reached
                "samples_per_s": rate, "speed_vs_h100": rate / h100_rate, "time_vs_h100": h100_rate / rate}
            # samples per kJ of the chip's TDP (the simulator's busy power is TDP x (1 + the same server
            # overhead for every chip), so the ranking is the same)
            figures[f"perf_per_w.{m.id}.{a.id}"] = {"samples_per_kj": rate / a.tdp_w * 1e3}
            figures[f"fit.{m.id}.{a.id}"] = {"min_chips": _smallest_gang(m, a, native)}
    llama = catalog.models["llama3-8b"]
    for a in chips:
        native = max(a.stacks.values())
        network, _ = _step(llama, a, native, BIG_GANG, compute=False, memory=False)
        compute, _ = _step(llama, a, native, BIG_GANG, memory=False, network=False)
        figures[f"network.llama3-8b.{a.id}"] = {"gang": BIG_GANG, "network_s": network, "compute_s": compute,
                                                "network_over_compute": network / compute,
                                                "crosses_domain": int(BIG_GANG > a.scale_up_domain_chips)}
    tpu = catalog.accelerators["tpu-v6e"]
    cuda_on_tpu = efficiency_matrix(np.array(["cuda"]), [tpu], scenario.porting)[0, 0]
    figures["porting.cuda.tpu-v6e"] = {"efficiency": cuda_on_tpu, "of_native": cuda_on_tpu / max(tpu.stacks.values())}
    return figures


def _smallest_gang(model, accel, efficiency: float) -> int:
    """The fewest chips whose memory holds the model's training state and activations (the kernel's check)."""
    for gang in range(1, 1025):
        if _step(model, accel, efficiency, gang)[1] != kernel.STATUS_OUT_OF_MEMORY:
            return gang
    raise ValueError(f"{model.id} does not fit on 1024 {accel.id}")


def run_figures(scenario) -> dict:
    results = sim.run(scenario)
    s, jobs = results.summary, results.jobs
    started = jobs[jobs["start_s"].notna() & np.isfinite(jobs["start_s"])].copy()
    end = np.minimum(started["end_s"].fillna(s["horizon_s"]), s["horizon_s"])
    started["chip_hours"] = (end - started["start_s"]) * started["chips"] * started["chip_share"] / 3600
    hours = started.groupby(["model", "accelerator"])["chip_hours"].sum()
    placed = started.groupby(["model", "accelerator"]).size()
    figures: dict = {"run": {"jobs_submitted": s["jobs"]["submitted"], "jobs_completed": s["jobs"]["completed"],
                             "jct_mean_h": s["jct_s"]["mean"] / 3600, "peak_facility_kw": s["peak_facility_power_kw"],
                             "power_cap_kw": s["power_cap_kw"]}}
    for accel, util in s["utilization_by_accelerator"].items():
        figures[f"run.{accel}"] = {"utilization": util, "jct_mean_h": s["jct_s_by_accelerator"][accel]["mean"] / 3600}
    for model in sorted(started["model"].unique()):
        for accel in hours[model].index:
            figures[f"run.{model}.{accel}"] = {"chip_hours_share": hours[model][accel] / hours[model].sum(),
                                               "jobs": int(placed[model][accel]),
                                               "jobs_share": placed[model][accel] / placed[model].sum()}
    by_stack = started.groupby(["software_stack", "accelerator"]).size()
    for (stack, accel), count in by_stack.items():
        figures.setdefault(f"run.stack.{stack}", {})[accel] = int(count)
    return figures


def figures(scenario_path: str | Path = SCENARIO) -> dict:
    """Every figure the walk-through quotes, as a nested dict (dotted paths as in the markers)."""
    scenario = sim.load(scenario_path)
    flat = {**roofline_figures(scenario), **run_figures(scenario)}
    nested: dict = {}
    for key, values in flat.items():
        node = nested
        for part in key.split("."):
            node = node.setdefault(part, {})
        node.update(values)
    return nested


def _lines(data: dict, prefix: str = ""):
    for key, value in sorted(data.items()):
        if isinstance(value, dict):
            yield from _lines(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}: {value:.6g}" if isinstance(value, float) else f"{prefix}{key}: {value}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/classroom-walkthrough", help="folder for figures.json")
    args = parser.parse_args(argv)
    data = figures()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print("\n".join(_lines(data)))
    print(f"figures in {out / 'figures.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
