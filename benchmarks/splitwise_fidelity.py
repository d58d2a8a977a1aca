"""How close dcsim's iteration model is to measured LLM serving latencies (Splitwise, ISCA'24).

Usage:
    python benchmarks/splitwise_fidelity.py                  # errors of the committed constants
    python benchmarks/splitwise_fidelity.py --fit llama2-70b # refit on one model, report both

Data: ``benchmarks/data/splitwise-perf/perf_model.csv`` (SplitwiseSim, MIT; see SOURCE.md there):
measured prefill time of a batch and mean time per decode iteration for Llama-2-70B (tensor
parallelism 2/4/8) and BLOOM-176B (TP 8) on DGX-A100, DGX-H100 and power-capped DGX-H100. Repeats
are reduced to their median. A prefill is one point per (prompt size, batch size): the runs that differ
only in output length repeat the same prefill. It is one iteration of ``batch × prompt`` tokens, each
request attending causally over its own prompt (``attended = batch · prompt(prompt+1)/2``), with no
decoders.

A decode point is one iteration of ``batch`` decoders at the run's mean context. What the rows mean:
``e2e_time = prompt_time + (token_size − 1) · token_time`` (median ratio 1.001; 603 of the 840
uncapped repeats within 0.5 %): the prefill yields the first token, and ``token_time`` is the mean
over the run's decode iterations; iteration ``i`` reads ``prompt + i`` tokens per request. 172
repeats, all batch-1 runs with outputs of 128–8,192 tokens, stop early: ``e2e_time`` then implies a
shorter run (e.g. ~650 decode iterations for every output length ≥ 1,024 of Llama-2 at TP 8 on
A100, as a sequence that ends at an end-of-text token would). So the decode iterations actually run
are taken from ``e2e_time`` per repeat (see ``decode_context``).

Points measured faster than the chips' peak FLOP/s and HBM bandwidth allow are
dropped (the Llama-2 TP-2 batch-64 prefills: 32,768 tokens in 0.36–0.79 s) and counted in the
output.

Predictions come from ``sim.serving.iteration_model`` with the CUDA stack efficiency of the catalog
chip and its ``serving_layer_overhead_us``. ``--fit MODEL`` fits, on that model's A100 and H100 points,
the shared constants and one per-layer fixed cost per chip (deterministic coordinate descent on
log(predicted / measured), squared, each device × phase weighted equally; MEMORY_EFFICIENCY stays at
its prior) and reports with them; the other model is held out. A model measured at one TP degree
cannot separate the all-reduce latency from the per-layer cost, so that fit holds the all-reduce step
latency at 0. The power-capped H100 is reported against the uncapped chip and never fitted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from sim.catalog import builtin_catalog
from sim.serving.iteration_model import Calibration, iteration_time_s, layer_overhead_s, replica_iteration

DATA = Path(__file__).resolve().parent / "data" / "splitwise-perf" / "perf_model.csv"
CHIPS = {"a100-80gb": "a100-sxm", "h100-80gb": "h100-sxm", "h100-80gb-pcap": "h100-sxm"}
DEVICES = {"a100-80gb": "a100", "h100-80gb": "h100", "h100-80gb-pcap": "h100-pcap"}
FIT_HARDWARE = ("a100-80gb", "h100-80gb")
FITTED_ON = "llama2-70b"  # the model the committed constants were fitted on
FIT_CHIPS = tuple(CHIPS[h] for h in FIT_HARDWARE)  # each gets its own per-layer fixed cost
FREE = ("compute_scale", "link_efficiency", "per_seq_layer_s", "allreduce_step_latency_s")
START = Calibration(compute_scale=1.0, link_efficiency=0.5, allreduce_step_latency_s=1e-5, per_seq_layer_s=1e-5)
START_LAYER_S = 1e-4


def load_points(path: Path = DATA) -> pd.DataFrame:
    """Measured points: model, hardware, tp, phase, tokens, decoders, context_tokens, attended, measured_s."""
    keys = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    raw = pd.read_csv(path)
    runs = (raw.assign(decode_context=decode_context(raw))
            .groupby(keys, as_index=False)[["prompt_time", "token_time", "decode_context"]].median())
    prefill = runs.drop_duplicates(keys[:5]).assign(
        phase="prefill", tokens=lambda r: r.batch_size * r.prompt_size, decoders=0.0, context_tokens=0.0,
        attended=lambda r: r.batch_size * r.prompt_size * (r.prompt_size + 1) / 2.0,
        measured_s=lambda r: r.prompt_time / 1e3)
    decode = runs.assign(
        phase="decode", tokens=lambda r: r.batch_size, decoders=lambda r: r.batch_size,
        context_tokens=lambda r: r.batch_size * r.decode_context, attended=lambda r: r.context_tokens,
        measured_s=lambda r: r.token_time / 1e3)
    points = pd.concat([prefill, decode], ignore_index=True).rename(columns={"tensor_parallel": "tp"})
    return points[["model", "hardware", "tp", "phase", "tokens", "decoders", "context_tokens", "attended",
                   "measured_s"]]


def decode_context(raw: pd.DataFrame) -> pd.Series:
    """Mean context [tokens] of one request over a run's decode iterations.

    Iteration ``i`` (1 … S) of a request reads and attends to ``prompt + i`` tokens, so the mean is
    ``prompt + (S + 1) / 2``. The decode iterations actually run, ``S = (e2e − prompt_time) /
    token_time``, are at most ``token_size − 1`` (the prefill produces the first token) and fewer in
    runs that stopped early; out-of-range values are clipped to ``[1, token_size − 1]``."""
    steps = ((raw.e2e_time - raw.prompt_time) / raw.token_time).clip(lower=1.0, upper=raw.token_size - 1.0)
    return raw.prompt_size + (steps + 1.0) / 2.0


def physically_possible(points: pd.DataFrame) -> np.ndarray:
    """Mask of points no faster than the roofline at 100 % of peak FLOP/s and HBM bandwidth."""
    ideal = Calibration(compute_scale=1e9, memory_efficiency=1.0, layer_overhead_s=0.0,
                        allreduce_step_latency_s=0.0, link_efficiency=1e30, per_seq_layer_s=0.0)
    return points.measured_s.to_numpy() >= predict(points, ideal, dict.fromkeys(set(CHIPS.values()), 0.0))


class Predictor:
    """Predicts the points' times for any calibration and per-chip layer costs (rows grouped once).

    ``chip_layer_s`` maps a catalog chip id to a per-layer fixed cost [s] that replaces the chip's
    catalog value; chips not in it keep theirs."""

    def __init__(self, points: pd.DataFrame):
        catalog = builtin_catalog()
        self.groups = []
        for (model, hardware, tp), rows in points.groupby(["model", "hardware", "tp"]):
            chip = catalog.accelerators[CHIPS[hardware]]
            columns = tuple(rows[c].to_numpy(float) for c in ("tokens", "decoders", "context_tokens", "attended"))
            self.groups.append((catalog.models[model], chip, int(tp), chip.stack_efficiency("cuda"),
                                points.index.get_indexer(rows.index), columns))
        self.n = len(points)

    def __call__(self, calibration: Calibration, chip_layer_s: dict[str, float] | None = None) -> np.ndarray:
        out = np.empty(self.n)
        for model, chip, tp, efficiency, where, columns in self.groups:
            if chip_layer_s and chip.id in chip_layer_s:
                chip = chip.model_copy(update={"serving_layer_overhead_us": chip_layer_s[chip.id] * 1e6})
            params = replica_iteration(model, chip, tp, efficiency, calibration)
            out[where] = iteration_time_s(params, *columns)
        return out


def predict(points: pd.DataFrame, calibration: Calibration | None = None,
            chip_layer_s: dict[str, float] | None = None) -> np.ndarray:
    """Predicted time [s] of every point (catalog per-layer costs unless ``chip_layer_s`` replaces them)."""
    return Predictor(points.reset_index(drop=True))(calibration or Calibration(), chip_layer_s)


def catalog_layer_s() -> dict[str, float]:
    """The per-layer fixed cost [s] the committed model uses for each chip of the data."""
    catalog = builtin_catalog()
    return {chip: layer_overhead_s(catalog.accelerators[chip]) for chip in sorted(set(CHIPS.values()))}


def usable_points(path: Path = DATA) -> tuple[pd.DataFrame, int]:
    """The physically possible points, and how many were dropped."""
    points = load_points(path)
    possible = physically_possible(points)
    return points[possible].reset_index(drop=True), int((~possible).sum())


def fit(points: pd.DataFrame, model: str) -> tuple[Calibration, dict[str, float]]:
    """Shared constants and per-chip layer costs [s] that minimise the mean over (device, phase) of
    the mean squared log error on ``model``. The calibration's own ``layer_overhead_s`` is left at
    the committed default: every fitted chip has its own."""
    rows = points[(points.model == model) & points.hardware.isin(FIT_HARDWARE)].reset_index(drop=True)
    predictor, measured = Predictor(rows), rows.measured_s.to_numpy()
    cells = [np.flatnonzero(mask) for mask in (rows.hardware + rows.phase).pipe(pd.get_dummies).T.to_numpy()]
    free = FREE if rows.tp.nunique() > 1 else FREE[:-1]
    cal = START if free == FREE else dataclasses.replace(START, allreduce_step_latency_s=0.0)
    values = {**{name: getattr(cal, name) for name in free}, **dict.fromkeys(FIT_CHIPS, START_LAYER_S)}

    def split(v: dict[str, float]) -> tuple[Calibration, dict[str, float]]:
        return (dataclasses.replace(cal, **{name: v[name] for name in free}),
                {chip: v[chip] for chip in FIT_CHIPS})

    def loss(v: dict[str, float]) -> float:
        error = np.log(predictor(*split(v)) / measured)
        return float(np.mean([np.mean(error[cell] ** 2) for cell in cells]))

    best, step = loss(values), 1.0
    while step > 1e-4:
        improved = False
        for name in values:
            for sign in (1.0, -1.0):
                value = values[name] * np.exp(sign * step)
                if name == "link_efficiency" and value > 1.0:
                    continue
                trial = dict(values, **{name: float(value)})
                trial_loss = loss(trial)
                if trial_loss < best:
                    values, best, improved = trial, trial_loss, True
        if not improved:
            step /= 2.0
    return split(values)


def errors(points: pd.DataFrame, calibration: Calibration | None = None,
           chip_layer_s: dict[str, float] | None = None) -> pd.DataFrame:
    """Per (device, phase, model): points, median absolute and median signed relative error."""
    ratio = predict(points, calibration, chip_layer_s) / points.measured_s.to_numpy() - 1.0
    table = points.assign(device=points.hardware.map(DEVICES), abs_error=np.abs(ratio), bias=ratio)
    return (table.groupby(["device", "phase", "model"], sort=True)
            .agg(n=("bias", "size"), mdape=("abs_error", "median"), bias=("bias", "median")).reset_index())


def report(table: pd.DataFrame, fitted_on: str) -> list[str]:
    """One line per device × phase × model of an ``errors`` table, then a one-line summary."""
    lines = []
    for row in table.itertuples():
        role = "(in sample)" if row.model == fitted_on else "(held out)"
        if row.device == "h100-pcap":
            role = "(power-capped; predicted as uncapped h100, never fitted)"
        lines.append(f"device={row.device} phase={row.phase} model={row.model} {role} n={row.n} "
                     f"mdape={row.mdape:.1%} bias={row.bias:+.1%}")
    return lines + [summary(table, fitted_on)]


def summary(table: pd.DataFrame, fitted_on: str, target: float = 0.15) -> str:
    """Worst in-sample and held-out cell (power-capped H100 excluded) against the target."""
    table = table[table.device != "h100-pcap"]
    parts = []
    for label, rows in (("in-sample", table[table.model == fitted_on]),
                        ("held-out", table[table.model != fitted_on])):
        worst = rows.loc[rows.mdape.idxmax()]
        parts.append(f"{label} max mdape={worst.mdape:.1%} ({worst.device} {worst.phase} {worst.model}), "
                     f"{int((rows.mdape <= target).sum())}/{len(rows)} cells <= {target:.0%}")
    return "summary: " + "; ".join(parts)


def describe(calibration: Calibration, chip_layer_s: dict[str, float]) -> str:
    shared = {k: v for k, v in dataclasses.asdict(calibration).items() if k != "layer_overhead_s"}
    chips = " ".join(f"layer_overhead_us[{chip}]={value * 1e6:.4g}" for chip, value in chip_layer_s.items())
    return " ".join(f"{k}={v:.4g}" for k, v in shared.items()) + " " + chips + \
        f" default layer_overhead_us={calibration.layer_overhead_s * 1e6:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", metavar="MODEL", choices=["llama2-70b", "bloom-176b"],
                        help="fit the constants on this model's A100 and H100 points, then report")
    args = parser.parse_args()
    points, dropped = usable_points()
    calibration, chip_layer_s, fitted_on = Calibration(), catalog_layer_s(), FITTED_ON
    if args.fit:
        (calibration, fitted), fitted_on = fit(points, args.fit), args.fit
        chip_layer_s = dict(chip_layer_s, **fitted)
    print(f"constants ({'fitted now' if args.fit else 'committed'}, on {fitted_on}): "
          f"{describe(calibration, chip_layer_s)}")
    print(f"points={len(points)} dropped_as_faster_than_peak={dropped}")
    for line in report(errors(points, calibration, chip_layer_s), fitted_on):
        print(line)


if __name__ == "__main__":
    main()
