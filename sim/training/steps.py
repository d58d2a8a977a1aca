"""Step time, MFU and bottleneck of every transformer training job on every pool, from its parallel layout.

Jobs whose model has layers and a hidden size (``ModelSpec.has_layout``) take this path; the others keep the
roofline (``sim.kernels.training_time_s``). Jobs are grouped into unique *shapes* (model, gang, layout,
global batch, sequence length, stack); each shape's candidate layouts (one if given, the search's list if
``auto``; ``sim.training.layout``) go through one call of the step-time kernel (``sim.kernels.step_time_s``)
for all pools, and each (shape, pool) keeps its fastest fitting candidate. Nothing is computed per job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import kernels
from sim.fleet.network import level_arrays
from sim.kernels.reference import STATUS_OK
from sim.training import layout as layouts
from sim.training.power import activity_factor, phase_activities

STATUS_NO_LAYOUT = 5
NO_LAYOUT_REASON = "no-layout-for-the-gang"


@dataclass
class StepPlan:
    """Per job (N) and pool (P). ``applies``: the job takes the step-time path; ``tokens_per_step``: global batch ×
    sequence length; ``layout`` indexes ``labels`` (-1 where nothing runs); ``activity``: the share of its dynamic
    power a running job draws (``sim.training.power``; 1 off the step-time path); others as
    ``kernels.step_time_s``."""

    applies: np.ndarray
    tokens_per_step: np.ndarray
    step_s: np.ndarray
    mfu: np.ndarray
    bottleneck: np.ndarray
    share: np.ndarray
    status: np.ndarray
    layout: np.ndarray
    labels: list[str]
    compute_share: np.ndarray | None = None
    memory_share: np.ndarray | None = None
    activity: np.ndarray | None = None


def _per_value(column: np.ndarray, of_value) -> np.ndarray:
    """``of_value`` of each distinct value of ``column``, spread back over the rows (one call per value)."""
    codes, unique = pd.factorize(column, use_na_sentinel=False)
    return np.array([of_value(v) for v in unique])[codes] if len(column) else np.zeros(0)


def applies_to(models: np.ndarray, catalog) -> np.ndarray:
    """Per job: its model is a transformer with layers and hidden size (the step-time path applies)."""
    return _per_value(models, lambda m: bool(getattr(catalog.models.get(m), "has_layout", False))).astype(bool)


def job_batch(jobs: pd.DataFrame, catalog) -> tuple[np.ndarray, np.ndarray]:
    """Global batch [sequences] and sequence length [tokens] of each job, defaults filled in: one sequence per
    chip per step (times the given micro-batch, so a given layout divides it), the model's ``microbatch_samples``."""
    chips = np.maximum(jobs["chips"].to_numpy(np.int64), 1)
    batch = jobs["global_batch"].to_numpy(np.float64)
    seq = jobs["seq_len"].to_numpy(np.float64)
    default_seq = _per_value(jobs["model"].to_numpy(), lambda m: float(getattr(catalog.models.get(m),
                                                                               "microbatch_samples", 1.0)))
    given_mb = _per_value(jobs["layout"].to_numpy(), lambda text: layouts.decode(text).micro_batch if text else 1)
    seq = np.where(np.isnan(seq), default_seq, seq)
    batch = np.where(np.isnan(batch), chips * given_mb, batch)
    return batch, seq


def plan_steps(jobs: pd.DataFrame, catalog, accelerators, networks, max_gang_chips, efficiency: np.ndarray,
               materialized_attention: bool = False) -> StepPlan:
    """The step plan of ``jobs`` on pools with these accelerators, ``sim.fleet.network.NetworkLevels`` and
    largest gangs; ``efficiency`` is N×P (the stack's fraction of peak, 0 where it does not run).
    ``materialized_attention``: the attention scores go through HBM (no fused flash attention; the fidelity
    benchmark's 2021–22 Megatron-LM rows); simulated jobs run today's stacks, which fuse attention."""
    n, p = len(jobs), len(accelerators)
    applies = applies_to(jobs["model"].to_numpy(), catalog)
    plan = StepPlan(applies=applies, tokens_per_step=np.zeros(n), step_s=np.full((n, p), np.inf),
                    mfu=np.zeros((n, p)), bottleneck=np.zeros((n, p), np.int8), share=np.zeros((n, p)),
                    status=np.zeros((n, p), np.int8), layout=np.full((n, p), -1, np.int64), labels=[],
                    compute_share=np.zeros((n, p)), memory_share=np.zeros((n, p)), activity=np.ones((n, p)))
    rows = np.flatnonzero(applies)
    if len(rows) == 0 or p == 0:
        return plan
    sub = jobs.iloc[rows]
    batch, seq = job_batch(sub, catalog)
    plan.tokens_per_step[rows] = batch * seq
    rounded = np.ascontiguousarray(efficiency[rows])  # jobs with the same stack share a row of efficiencies
    eff_code = pd.factorize(rounded.view(np.dtype((np.void, rounded.dtype.itemsize * p))).reshape(-1))[0]
    keys = pd.DataFrame({"model": sub["model"].to_numpy(), "chips": sub["chips"].to_numpy(),
                         "layout": sub["layout"].to_numpy(), "batch": batch, "seq": seq,
                         "eff": eff_code.reshape(-1)})
    shape_of = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    first = np.unique(shape_of, return_index=True)[1]
    max_domain = int(max(net.chips[0] for net in networks))
    cand_cache: dict[tuple, list] = {}
    owner, cands, eff_rows = [], [], []
    for u, j in enumerate(first):
        model = catalog.models[keys["model"].iat[j]]
        given = keys["layout"].iat[j]
        key = (model.id, int(keys["chips"].iat[j]), given, float(batch[j]), float(seq[j]))
        if key not in cand_cache:
            cand_cache[key] = [layouts.decode(given)] if given else layouts.candidates(
                model, key[1], int(batch[j]), int(seq[j]), max_domain)
        found = cand_cache[key]
        owner += [u] * len(found)
        cands += [(model, c, batch[j], seq[j]) for c in found]
        eff_rows += [rows[j]] * len(found)
    owner = np.asarray(owner, dtype=np.int64)
    result = _evaluate(cands, accelerators, networks, max_gang_chips, efficiency[np.asarray(eff_rows, np.int64)],
                       materialized_attention)
    step, status = result[0], result[4]
    n_shapes = len(first)
    best_row = np.full((n_shapes, p), -1, np.int64)
    shape_status = np.full((n_shapes, p), STATUS_NO_LAYOUT, np.int8)
    bounds = np.searchsorted(owner, np.arange(n_shapes + 1))  # candidates of a shape are contiguous
    for u in range(n_shapes):
        lo, hi = bounds[u], bounds[u + 1]
        if hi == lo:
            continue
        best = lo + np.argmin(step[lo:hi], axis=0)  # the first minimum: search order breaks ties
        fits = np.isfinite(step[best, np.arange(p)])
        best_row[u] = np.where(fits, best, -1)
        shape_status[u] = np.where(fits, STATUS_OK, status[lo:hi].min(axis=0))  # most basic reason
    labels: dict[str, int] = {}
    shape_label = np.full((n_shapes, p), -1, np.int64)
    for u, q in zip(*np.nonzero(best_row >= 0)):
        shape_label[u, q] = labels.setdefault(cands[best_row[u, q]][1].label(), len(labels))
    safe = np.maximum(best_row, 0)

    def pick(values, fill):
        return np.where(best_row >= 0, values[safe, np.arange(p)[None, :]], fill)

    best_step = pick(step, np.inf)
    plan.step_s[rows] = best_step[shape_of]
    plan.mfu[rows] = pick(result[1], 0.0)[shape_of]
    plan.bottleneck[rows] = pick(result[2], 0).astype(np.int8)[shape_of]
    plan.share[rows] = pick(result[3], 0.0)[shape_of]
    plan.status[rows] = shape_status[shape_of]
    plan.layout[rows] = shape_label[shape_of]
    plan.labels = list(labels)
    plan.compute_share[rows] = pick(result[5], 0.0)[shape_of]
    plan.memory_share[rows] = pick(result[6], 0.0)[shape_of]
    memory_activity, communication_activity, _ = phase_activities(catalog)
    plan.activity = activity_factor(plan.compute_share, plan.memory_share, memory_activity, communication_activity)
    return plan


def merge_plans(plans: list[StepPlan], epoch_of_job: np.ndarray) -> StepPlan:
    """One plan from per-porting-epoch plans (``sim.training.ramps``): each job's rows from its arrival epoch."""
    if len(plans) == 1:
        return plans[0]
    rows = np.arange(len(epoch_of_job))
    labels: dict[str, int] = {}
    layouts_ = []
    for plan in plans:  # layout indices into one label list
        remap = np.array([labels.setdefault(text, len(labels)) for text in plan.labels] + [-1], dtype=np.int64)
        layouts_.append(remap[plan.layout])
    pick = lambda name: np.stack([getattr(plan, name) for plan in plans])[epoch_of_job, rows]  # noqa: E731
    return StepPlan(applies=plans[0].applies, tokens_per_step=plans[0].tokens_per_step, step_s=pick("step_s"),
                    mfu=pick("mfu"), bottleneck=pick("bottleneck"), share=pick("share"), status=pick("status"),
                    layout=np.stack(layouts_)[epoch_of_job, rows], labels=list(labels),
                    compute_share=pick("compute_share"), memory_share=pick("memory_share"),
                    activity=pick("activity"))


def _evaluate(cands, accelerators, networks, max_gang_chips, efficiency, materialized_attention=False):
    """One kernel call over every candidate (rows) and pool (columns)."""
    table = np.array([(m.params, m.activated_params, m.expert_params, m.layers, m.hidden_size, m.heads,
                       m.experts_per_token, m.train_bytes_per_param, s, b, c.micro_batch,
                       c.tp, c.pp, c.dp, c.cp, c.ep, c.zero, c.recompute, c.vp)
                      for m, c, b, s in cands], dtype=np.float64).reshape(-1, 19)
    real = [np.ascontiguousarray(table[:, k]) for k in range(11)]
    whole = [np.ascontiguousarray(table[:, k]).astype(np.int64) for k in range(11, 19)]
    tp, pp, dp, cp, ep, zero, recompute, vp = whole
    levels = level_arrays(list(networks))
    return kernels.step_time_s(
        *real[:10], tp, pp, dp, cp, ep, zero, real[10], recompute, vp,
        np.full(len(table), int(materialized_attention), dtype=np.int64),
        np.array([a.peak_flops for a in accelerators], dtype=np.float64),
        np.array([a.memory_bandwidth_tbps * 1e12 for a in accelerators], dtype=np.float64),
        np.array([a.memory_gb * 1e9 for a in accelerators], dtype=np.float64),
        levels["level_chips"], levels["level_bandwidth_bps"], levels["level_latency_s"], levels["torus_dims"],
        np.asarray(max_gang_chips, dtype=np.float64), np.ascontiguousarray(efficiency, dtype=np.float64),
    )
