"""Request-level LLM serving: one kernel call over all of a service's replicas.

On a dedicated pool a service's replica groups each reserve ``count × chips_per_replica`` chips for the
whole run (``sim.fleet.allocation.reserve``); training sees only what is left. On a shared pool an
autoscaled group holds ``min_count`` replicas and the cluster places the others as
``sim.serving.autoscale`` turns them on. All replicas of a service, on whatever chip types, are served by
one call of the request-level kernel (``sim.kernels.serve_llm``) over the horizon, so the service's
router chooses among accelerator types request by request, among the replicas active at that time.
The autoscaler decides from the requests alone, so serving needs no SimPy process even on shared
pools.

Simplifications (stated in the README): a replica chip draws idle power plus the iteration's activity
(``sim.serving.activity``: its compute-bound share at full draw, the rest at the memory-bound share) times
the full-load increment while its replica iterates, and idle power otherwise (busy and energy-weighted busy
time per time bin come from the kernel); under ``admission`` the site-cap reservation and the reported peak
count replica chips at full load (``throttle``, ``shed``: at each bin's drawn power, ``sim.training.capping``);
iteration times come from the calibrated model of
``sim.serving.iteration_model`` (its docstring states its fidelity and limits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim import kernels
from sim.kernels.serving_reference import SWITCH_FAIL, SWITCH_GONE, SWITCH_OFF, SWITCH_ON, replica_tables
from sim.serving.failures import autoscaled_switches
from sim.serving.llm.plan import ROUTERS, GroupPlan


def kernel_switches(groups: list[GroupPlan], switches, outages=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The service's switch events over its replicas (groups' replicas numbered in order) for the kernel.

    Every replica starts active in the kernel; an autoscaled group's replicas are first switched off at
    t = 0 and then follow the autoscaler's events (its t = 0 block turns on the initial ones). A windowed
    group's replicas (``GroupPlan.window``) are *gone* (``SWITCH_GONE``: not even a fallback for requests
    the active replicas cannot hold) outside their window: gone at t = 0, on at its start, gone at its end
    (the autoscaler's events for the group say the same). Without windows the codes are the booleans of
    before (False, True), so runs without windows are unchanged. ``outages`` maps ``(service, group)`` to its
    replicas' drawn outages (``sim.serving.failures.draw_outages``): ``SWITCH_FAIL`` at each failure,
    ``SWITCH_ON`` at its return (at one instant, the failure first); an autoscaled group's are merged with the
    autoscaler's events (``sim.serving.failures.autoscaled_switches``: a replica back from repair is on only if
    the autoscaler has it on)."""
    outages = outages or {}
    windows = any(plan.window is not None for plan in groups) or bool(outages)
    dtype = np.int8 if windows else bool
    times, replicas, on, offset = [np.zeros(0)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=dtype)], 0
    for plan in groups:
        events = None if switches is None else switches.get((plan.service, plan.group))
        rows = outages.get((plan.service, plan.group))
        if events is not None and plan.window is None and rows is not None and len(rows):
            times.append(np.zeros(plan.replicas))  # on all run or autoscaled: outages merged with its events
            replicas.append(offset + np.arange(plan.replicas))
            on.append(np.full(plan.replicas, SWITCH_OFF, dtype=dtype))
            t, r, codes = autoscaled_switches(events, rows, plan.replicas)
            times.append(t)
            replicas.append(offset + r)
            on.append(codes.astype(dtype))
            offset += plan.replicas
            continue
        if events is not None:
            off = SWITCH_GONE if plan.window is not None else SWITCH_OFF
            times += [np.zeros(plan.replicas), events.switch_s]
            replicas += [offset + np.arange(plan.replicas), offset + events.switch_replica]
            on += [np.full(plan.replicas, off, dtype=dtype),
                   np.where(events.switch_on, SWITCH_ON, off).astype(dtype)]
        if rows is not None and len(rows) and plan.window is not None:  # no return after the window's end
            times.append(rows[:, 0])
            replicas.append(offset + rows[:, 2].astype(np.int64))
            on.append(np.full(len(rows), SWITCH_FAIL, dtype=dtype))
            rows = rows[rows[:, 1] < plan.window[1]]
            times.append(rows[:, 1])
            replicas.append(offset + rows[:, 2].astype(np.int64))
            on.append(np.full(len(rows), SWITCH_ON, dtype=dtype))
        elif rows is not None and len(rows):
            times.append(rows[:, :2].reshape(-1))
            replicas.append(offset + np.repeat(rows[:, 2].astype(np.int64), 2))
            on.append(np.tile(np.array([SWITCH_FAIL, SWITCH_ON], dtype=dtype), len(rows)))
        offset += plan.replicas
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")  # at one instant: the group order above, offs before ons
    return t[order], np.concatenate(replicas)[order], np.concatenate(on)[order]


def serve_requests(service, groups: list[GroupPlan], requests: pd.DataFrame, switches, horizon_s: float,
                   bin_width_s: float, outages=None) -> dict:
    """Serve one service's requests over its replicas (the router picks among them; only active replicas
    take new requests): per-request arrays, the group each request went to (-1: never placed), and per
    group the KV peak of its fullest replica [tokens], busy chip-seconds and energy-weighted busy chip-seconds
    (``sim.serving.activity``) per time bin, request-seconds in
    batches and KV token-seconds (the kernel's ``batch_seq_s`` and ``kv_token_s`` summed over its
    replicas). ``switches`` maps ``(service, group)`` to the autoscaler's ``GroupSwitches``; ``outages`` to a
    group's replica outages (``kernel_switches``); ``hit`` counts the failures that struck each request."""
    replica_int, replica_float = replica_tables([(p.replicas, p.kernel) for p in groups])
    group_of_replica = np.repeat(np.arange(len(groups)), [p.replicas for p in groups])
    slo, headroom = service.slo, service.router.slo_headroom_frac
    status, replica, first, finish, kv_peak, busy, batch_seq_s, kv_token_s, hit, energy = kernels.serve_llm(
        requests["arrival_s"].to_numpy(), requests["prompt_tokens"].to_numpy(),
        requests["output_tokens"].to_numpy(), replica_int, replica_float, ROUTERS[service.router.kind],
        slo.ttft_p99_ms / 1e3 * headroom if slo is not None else np.inf,
        slo.tpot_p99_ms / 1e3 * headroom if slo is not None else np.inf,
        *kernel_switches(groups, switches, outages), horizon_s=horizon_s, bin_width_s=bin_width_s)
    group_of = np.where(replica >= 0, group_of_replica[np.maximum(replica, 0)], -1)
    per_group = [group_of_replica == g for g in range(len(groups))]
    return {
        "requests": requests, "group": group_of, "status": status, "first_token_s": first, "finish_s": finish,
        "kv_peak": [int(kv_peak[rows].max()) for rows in per_group],
        "busy_chip_s": [busy[rows].sum(axis=0) * p.chips_per_replica for rows, p in zip(per_group, groups)],
        "energy_chip_s": [energy[rows].sum(axis=0) * p.chips_per_replica for rows, p in zip(per_group, groups)],
        "batch_seq_s": [float(batch_seq_s[rows].sum()) for rows in per_group],
        "kv_token_s": [float(kv_token_s[rows].sum()) for rows in per_group],
        "switches": [None if switches is None else switches.get((p.service, p.group)) for p in groups],
        "hit": hit, "failures_on": outages is not None,
        "outages": [None if outages is None else outages.get((p.service, p.group)) for p in groups]}
