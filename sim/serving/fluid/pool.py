"""Pooling a fluid service's alike replica groups into one chain, as balanced routers pool them.

The request-level routers that balance (``least-work``, ``jsq``, ``central``, ``slo-aware``) level the
batches across all of a service's replicas, not within each replica group; a chain per group would
see each group's replicas idle while another group's queue up, and read the busy fraction low (about
9 % with two groups of two H100s). So, for balanced routers, groups whose replicas are alike — the same
kernel parameters (chip, model, limits, KV capacity) and chips per replica — are served as one group
with their replicas summed (``pool``), and its results are split back by replica share (``split``):
counts, tokens, busy time, served and backlog per bin, the headroom amounts, and the weights of the
latency components (so each group keeps the pooled latency distribution).

Simplification: groups of different chips (or limits) keep a chain each, at their static share of
the load (``sim.serving.fluid.split``); their busy fraction still reads low by a few per cent (the
README's cross-fidelity table has the measured gap). Round-robin routing is not pooled: it splits
blindly, one chain per replica.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.serving.fluid.split import mix
from sim.serving.fluid.traffic import Lengths

SCALED = ("offered", "completed", "unfinished", "output_tokens", "busy_chip_s", "energy_chip_s", "served_per_bin",
          "backlog_per_bin", "met", "met_per_bin", "saturation_tokens", "batch_fill_s", "kv_token_s")


def pool(groups: list, lengths: list[Lengths], balanced: bool = True) -> tuple[list, list[Lengths], list[list[int]]]:
    """Merge the groups with alike replicas (under a ``balanced`` router; otherwise none): the merged plans
    (the first member's, with the replicas summed), their loads (the members' summed; their moments
    agree, being alike), and each merged group's members by index, in first-appearance order."""
    members: dict[tuple, list[int]] = {}
    for index, plan in enumerate(groups):
        members.setdefault(_alike(plan) if balanced else (index,), []).append(index)
    merged = list(members.values())
    plans = [replace(groups[m[0]], replicas=sum(groups[i].replicas for i in m)) for m in merged]
    loads = [mix([(1.0, lengths[i]) for i in m]) for m in merged]
    return plans, loads, merged


def split(groups: list, served: list[dict], merged: list[list[int]]) -> list[dict]:
    """Each original group's part of its merged group's results, by replica share (module docstring)."""
    out: list[dict | None] = [None] * len(groups)
    for result, members in zip(served, merged):
        total = sum(groups[i].replicas for i in members)
        for i in members:
            out[i] = result if len(members) == 1 else _scaled(result, groups[i].replicas / total)
    return out


def _scaled(result: dict, share: float) -> dict:
    """A merged group's results times ``share``: the amounts and the latency components' weights."""
    part = {**result, **{name: result[name] * share for name in SCALED}}
    for metric in ("ttft", "e2e", "tpot"):
        part[metric] = {**result[metric], "weight": result[metric]["weight"] * share}
    return part


def _alike(plan) -> tuple:
    """What makes two groups' replicas interchangeable for the chain: kernel parameters, chips per replica."""
    return (plan.chips_per_replica, tuple(sorted((k, _frozen(v)) for k, v in plan.kernel.items())),
            getattr(plan, "window", None),  # groups active over different windows keep a chain each
            getattr(plan, "availability", 1.0))  # and so do groups up different shares of the time (failures)


def _frozen(value):
    return tuple(np.ravel(value).tolist()) if isinstance(value, (list, np.ndarray)) else value
