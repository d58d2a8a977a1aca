"""Training failures on pools that hold inference replicas placed by the reservation schedule (autoscaled and
windowed groups, ``sim.training.sharing``): such pools get the failure stream like any pool, and a scale-up short of
chips away for repair books them (the schedule has precedence, a replica never waits). The rule by hand on a
stepped cluster, an end-to-end run, and a randomized stress run checked after every event."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import simpy

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.policies.registry import registry
from sim.training import sharing
from sim.training.cluster import Cluster
from sim.training.failures import REPAIR, FailureProcess, resolve_failures
from sim.training.prepare import prepare_jobs
from sim.training.simulate import simulate_training
from sim.workload import training_jobs
from tests.conftest import BASE, scenario_from
from tests.test_engine import assert_accounted
from tests.test_shared_pools import shared_scenario

HOUR, DAY = 3600.0, 86400.0
ZERO = {"gpu": 0, "memory": 0, "network": 0, "host": 0, "software": 0, "maintenance": 0}


# -- the rule by hand ---------------------------------------------------------------------------------------
def stepped_cluster(tmp_path):
    """A cluster that is not run: a 24-chip H100 pool (three 8-chip domains) shared with a Llama 3 70B group (one
    8-chip replica held all run, up to three), one 8-chip CUDA job, failures at zero rates (timers by hand)."""
    data = shared_scenario(gpu_chips=24, count=3, jobs=1)
    data["failures"] = {"rates_per_1000_chip_days": ZERO}
    scenario = scenario_from(data, tmp_path)
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    jobs = training_jobs(scenario, None)
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting)
    config = resolve_failures(scenario, catalog, fleet, jobs)
    kind = registry("scheduler")[scenario.policy.scheduler.kind]
    cluster = Cluster(simpy.Environment(), fleet, prepared, 2 * DAY, lambda c: kind(c, scenario.policy.scheduler),
                      scaling_schedule=[], failures=config, failure_rng=np.random.default_rng(0))
    return cluster


def send_to_repair(cluster, pool: int, domain: int, chips: int, until_s: float) -> None:
    """What ``FailureProcess._fail`` does to a free server: its chips leave until ``until_s``."""
    fails = cluster.failures
    parts = cluster.allocators[pool].take(domain, chips)
    fails._push(until_s, REPAIR, pool, parts)
    fails.down_since[fails.sequence] = (pool, cluster.now, chips)  # the tests call ``fire`` themselves


def scale(cluster, t: float, delta: int) -> bool:
    """Apply one schedule entry of ``delta`` replicas of group 0 at ``t``; whether training was preempted."""
    cluster.now = t
    cluster.scaling_schedule = [(t, 0, 0, 8, delta), (np.inf, -1, -1, 0, 0)]
    _, requeued, _ = sharing.apply_scaling(cluster, t, 0, set())
    return requeued


@pytest.mark.parametrize("repair_ends_first", [True, False])
def test_a_scale_up_short_of_repaired_chips_books_them_until_both_end(tmp_path, repair_ends_first):
    """Domains: the held replica, the job, a server in repair. The first scale-up preempts the job (as without
    failures); the second finds no chip free or held by training and books the server in repair: placed at once,
    the chips come back to training only when both the repair has ended and the replica has left."""
    cluster = stepped_cluster(tmp_path)
    allocator = cluster.allocators[0]
    assert allocator.free_chips == 16
    cluster.now = 0.0
    assert cluster.try_start(0, 0)
    free = [d for d in range(3) if allocator.free[d] == 8]
    assert len(free) == 1
    repair_end, leave = (10 * HOUR, 20 * HOUR) if repair_ends_first else (20 * HOUR, 10 * HOUR)
    send_to_repair(cluster, 0, free[0], 8, until_s=repair_end)
    assert allocator.free_chips == 0
    assert scale(cluster, HOUR, +1)  # the job is preempted for the first replica (free + training suffice)
    assert cluster.placement == {} and cluster.failures.booked_replicas[0] == 0
    assert not scale(cluster, 2 * HOUR, +1)  # nothing left to preempt: the repair is booked
    replica = cluster.replica_placements[0][-1]
    assert type(replica) is sharing.BookedReplica and tuple(replica) == ((free[0], 8),)
    assert [(r[1], r[2]) for r in replica.bookings] == [(free[0], 8)]
    assert cluster.failures.booked_replicas[0] == 1 and allocator.free_chips == 0
    if repair_ends_first:
        cluster.now = repair_end
        cluster.failures.fire(repair_end, set())
        assert allocator.free_chips == 0  # the repaired server is the replica's now
        assert replica.bookings == [] and cluster.failures.booked == {}
        assert not scale(cluster, leave, -1)
    else:
        assert not scale(cluster, leave, -1)
        assert allocator.free_chips == 0  # the replica left, its server is still in repair
        assert cluster.failures.booked == {}
        cluster.now = repair_end
        cluster.failures.fire(repair_end, set())
    assert allocator.free_chips == 8 and allocator.free[free[0]] == 8  # back at the later of the two
    # down until the booking (2 h), the replica's while booked, down again from its leaving to the repair's end
    down = [(0.0, 2 * HOUR)] + ([] if repair_ends_first else [(leave, repair_end)])
    assert cluster.failures.down_since == {} and cluster.failures.down_chip_s[0] == 8 * sum(b - a for a, b in down)
    assert [(since, end, chips) for _, since, end, chips in cluster.failures.down_log] == [(a, b, 8) for a, b in down]


def test_scale_up_that_training_can_make_room_for_preempts_as_before(tmp_path):
    """With a server in repair but a domain of training, the scale-up preempts (most recently started first) and
    books nothing: the shortfall rule applies only when free and training chips cannot give the replica."""
    cluster = stepped_cluster(tmp_path)
    cluster.now = 0.0
    assert cluster.try_start(0, 0)
    domain = next(d for d in range(3) if cluster.allocators[0].free[d] == 8)
    send_to_repair(cluster, 0, domain, 4, until_s=5 * HOUR)  # half a domain: 4 chips free stay there
    assert scale(cluster, HOUR, +1)
    assert type(cluster.replica_placements[0][-1]) is tuple and cluster.failures.booked == {}
    assert cluster.allocators[0].free_chips == 4


# -- end to end ---------------------------------------------------------------------------------------------
def write_trace(path, days: int) -> None:
    """An Azure-format trace: one request a minute, and a 20-minute burst of 500 requests a minute at 10:00 each
    day (the autoscaler adds replicas then)."""
    quiet = np.arange(0.0, days * DAY, 60.0)
    bursts = [np.arange(d * DAY + 10 * HOUR, d * DAY + 10 * HOUR + 1200.0, 0.12) for d in range(days)]
    seconds = np.sort(np.concatenate([quiet, *bursts]))
    stamps = pd.Timestamp("2023-11-16 00:00:00") + pd.to_timedelta(seconds, unit="s")
    pd.DataFrame({"TIMESTAMP": stamps.strftime("%Y-%m-%d %H:%M:%S.%f") + "0", "ContextTokens": 2000,
                  "GeneratedTokens": 500}).to_csv(path, index=False)


def scheduled_pools(tmp_path, days: int = 3) -> dict:
    """Two 32-chip H100 pools: ``gpu`` shared with an autoscaled Llama 3 70B group (1 to 3 replicas of 8 chips),
    ``gpu2`` holding a windowed group of two replicas on the second day; CUDA jobs of 4 and 8 chips; GPU failures
    at 150 per 1,000 chip-days with 12 h repairs."""
    write_trace(tmp_path / "trace.csv", days)
    data = copy.deepcopy(BASE)
    data.update(duration=f"{days}d", seed=3)
    data["fleet"] = [
        {"name": "gpu", "accelerator": "h100-sxm", "count": 32, "chips_per_server": 8, "servers_per_rack": 2,
         "sharing": "shared"},
        {"name": "gpu2", "accelerator": "h100-sxm", "count": 32, "chips_per_server": 8, "servers_per_rack": 2}]
    data["workloads"]["training"]["generator"].update(
        jobs=90, arrival_rate_per_hour=1.5, chips={4: 0.5, 8: 0.5}, models={"bert-large": 1.0},
        stacks={"cuda": 1.0}, duration_s={"lognormal": {"median": 3 * HOUR, "sigma": 0.8}})
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-70b",
        "replicas": [
            {"pool": "gpu", "count": 3, "chips_per_replica": 8,
             "autoscale": {"min_count": 1, "interval": "5min", "target_utilization_frac": 0.7}},
            {"pool": "gpu2", "count": 2, "chips_per_replica": 8, "active_from": "2026-01-02",
             "active_until": "2026-01-03"}],
        "traffic": {"trace": {"format": "azure-llm-2023", "path": "trace.csv"}}}]
    data["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 150.0}, "repair_time": {"gpu": "12h"}}
    return data


def test_pools_with_scheduled_replicas_get_failures_and_interruptions(tmp_path, captured):
    """The autoscaled group's pool and the windowed group's pool both have replicas placed by the schedule; both
    now see failures, repairs and interrupted jobs, and neither is listed in ``pools_without_failures``."""
    results = sim.run(scenario_from(scheduled_pools(tmp_path), tmp_path))
    cluster = captured[0]
    assert {pool for _, _, pool, _, delta in cluster.scaling_schedule if delta > 0} == {0, 1}
    failures = results.summary["failures"]
    assert failures["pools_without_failures"] == []
    assert failures["repairs_by_pool"]["gpu"] > 0 and failures["repairs_by_pool"]["gpu2"] > 0
    assert failures["availability_by_pool"]["gpu"] < 1 and failures["availability_by_pool"]["gpu2"] < 1
    interrupted = {pool for _, pool, _ in cluster.failures.interrupt_log}
    assert interrupted == {0, 1} and failures["interruptions"] > 0
    assert failures["events_on_unavailable_chips"] > 0  # replicas' chips (and chips in repair) are struck too
    assert results.summary["inference"]["chat"]["replica_hours"] > 3 * 24 + 2 * 24  # the autoscaled group scaled up
    assert_accounted(results)


def test_a_window_opening_over_repairs_runs_end_to_end(tmp_path, captured):
    """The windowed group takes all four domains of its pool on day 2 while GPU failures at 600 per 1,000 chip-days
    with 48 h repairs keep servers away: its replicas are placed at once with repairs booked, the run ends with
    every job accounted for, and the pool's chips come back to training after the window."""
    data = scheduled_pools(tmp_path)
    data["workloads"]["inference"][0]["replicas"][1]["count"] = 4
    data["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 600.0}, "repair_time": {"gpu": "48h"}}
    results = sim.run(scenario_from(data, tmp_path))
    fails = captured[0].failures
    assert fails.booked_replicas[1] > 0 and fails.booked == {}  # every booking ended by the horizon
    series = results.timeseries.set_index("time_s")
    assert (series.loc[DAY:2 * DAY - 1, "inference_chips.gpu2"] == 32).all()  # none waited
    # a booked chip counts once, as the replica's: repair and replica chips together never exceed the pool
    assert (series.loc[DAY:2 * DAY - 1, "repair_chips.gpu2"] == 0).all()
    assert (series["repair_chips.gpu2"] + series["inference_chips.gpu2"] <= 32 + 1e-9).all()
    jobs = results.jobs
    assert ((jobs["pool"] == "gpu2") & (jobs["end_s"] > 2 * DAY + HOUR)).any()  # training there after the window
    assert_accounted(results)


# -- stress: high rates, long repairs, a window opening while servers are in repair -------------------------
def stress_scenario(tmp_path):
    """Two 64-chip H100 pools of 8-chip domains, each shared with a group of 8-chip (``gpu``) or 4-chip (``gpu2``: two
    a domain) replicas, one of each held all run; failures far above any profile with 48 h GPU and host repairs and
    rack failures (two domains a rack), so half the servers are away at times."""
    data = copy.deepcopy(BASE)
    data.update(duration="12d")
    data["fleet"] = [
        {"name": "gpu", "accelerator": "h100-sxm", "count": 64, "chips_per_server": 8, "servers_per_rack": 2,
         "sharing": "shared"},
        {"name": "gpu2", "accelerator": "h100-sxm", "count": 64, "chips_per_server": 8, "servers_per_rack": 2,
         "sharing": "shared"}]
    data["workloads"]["training"]["generator"].update(
        jobs=400, arrival_rate_per_hour=1.5, chips={1: 0.3, 4: 0.2, 8: 0.3, 16: 0.2}, models={"bert-large": 1.0},
        stacks={"cuda": 1.0}, duration_s={"lognormal": {"median": 4 * HOUR, "sigma": 1.0}})
    autoscale = {"min_count": 1, "interval": "5min", "target_utilization_frac": 0.7}
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-70b",
        "replicas": [{"pool": "gpu", "count": 7, "chips_per_replica": 8, "autoscale": autoscale},
                     {"pool": "gpu2", "count": 10, "chips_per_replica": 4, "autoscale": autoscale}],
        "traffic": {"generator": {"rate_per_s": 0.01, "prompt_tokens": {"fixed": 2000},
                                  "output_tokens": {"fixed": 500}}}}]
    data["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 80.0, "host": 20.0, "network": 20.0},
                        "repair_time": {"gpu": "48h", "host": "48h", "network": "24h"}, "rack_share": 0.5,
                        "checkpoint_interval": "30min"}
    return scenario_from(data, tmp_path)


def random_schedule(rng: np.random.Generator, horizon_s: float) -> list[tuple]:
    """A reservation schedule by hand: every 1 to 8 h each group moves to a random count (``gpu``: 0 to 6 replicas
    beyond the one held, ``gpu2``: 0 to 9), and from day 4 to day 5 both hold their most (a window opening)."""
    times = np.cumsum(rng.uniform(1, 8, size=int(horizon_s / HOUR))) * HOUR
    times = sorted({float(t) for t in times if t < horizon_s and not 4 * DAY < t < 5 * DAY} | {4 * DAY})
    entries, counts = [], [0, 0]
    for t in times:
        for group, (chips, most) in enumerate([(8, 6), (4, 9)]):
            target = most if t == 4 * DAY else int(rng.integers(0, most + 1))
            if target != counts[group]:
                entries.append((t, group, group, chips, target - counts[group]))
                counts[group] = target
    entries.sort(key=lambda e: (e[0], e[4] > 0, e[1]))
    return entries


def chip_accounts(cluster, initial_free: list[list[int]]) -> None:
    """Assert the allocator's invariants and, per domain and per pool, free + training + repair + replicas + held
    == the chips there (booked chips counted once, as the replica's)."""
    fails = cluster.failures
    for pool, allocator in enumerate(cluster.allocators):
        domains = range(len(allocator.size))
        assert allocator.free_chips == sum(allocator.free[d] for d in domains if d not in allocator.closed)
        assert all(0 <= allocator.free[d] <= allocator.size[d] for d in domains)
        assert all(d in allocator.buckets[allocator.free[d]] for d in domains)
        assert all(bool(allocator.mask >> level & 1) == bool(bucket) for level, bucket in enumerate(allocator.buckets))
        training = sharing.training_chips(cluster, pool)
        repair = fails.repair_chips(pool)
        replicas: dict[int, int] = {}
        for group, placements in cluster.replica_placements.items():
            if cluster.group_pool[group] == pool:
                for parts in placements:
                    for d, n in parts:
                        replicas[d] = replicas.get(d, 0) + n
        booked: dict[int, int] = {}
        for group, placements in cluster.replica_placements.items():
            for parts in placements if cluster.group_pool[group] == pool else ():
                for record in getattr(parts, "bookings", ()):
                    assert record[3] is parts and any(r is record for r in fails.booked[record[0]])
                    booked[record[1]] = booked.get(record[1], 0) + record[2]
        held = [allocator.size[d] - initial_free[pool][d] for d in domains]
        for d in domains:
            assert allocator.free[d] + training.get(d, 0) + repair.get(d, 0) + replicas.get(d, 0) + held[d] \
                == allocator.size[d], (pool, d)
            assert booked.get(d, 0) <= replicas.get(d, 0)
        in_repair = sum(chips for p, _, chips in fails.down_since.values() if p == pool)
        assert in_repair == sum(repair.values())  # booked chips are the replica's, not down
        assert allocator.free_chips + sum(training.values()) + sum(repair.values()) + sum(replicas.values()) \
            + sum(held) == cluster.pools[pool].count


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_stress_with_repairs_at_a_window_keeps_every_invariant(tmp_path, monkeypatch, seed):
    """A randomized reservation schedule on two shared pools under failure rates 50 times the profile's with
    48 h repairs: after every event the chips add up, no replica waits (every group holds its scheduled count
    the instant after each schedule entry), repairs are booked (the window opening at day 4 finds servers in
    repair), and every job ends completed, running, queued or rejected."""
    scenario = stress_scenario(tmp_path)
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    jobs = training_jobs(scenario, None)
    jobs.loc[jobs["chips"] == 1, "chip_share"] = 0.5  # shared chips too
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting)
    horizon = float(scenario.duration)
    schedule = random_schedule(np.random.default_rng(seed), horizon)
    initial_free = [list(a.free) for a in fleet.new_allocators()]
    checks = {"events": 0, "booked_at_window": 0}

    def checked(function):
        def wrapper(self, *args):
            out = function(self, *args)
            cluster = self if isinstance(self, Cluster) else self.cluster
            chip_accounts(cluster, initial_free)
            checks["events"] += 1
            return out
        return wrapper

    apply_scaling = sharing.apply_scaling

    def scaling(cluster, t, index, freed):
        out = apply_scaling(cluster, t, index, freed)
        for group in (0, 1):
            due = sum(e[4] for e in schedule if e[0] <= t and e[1] == group)
            assert len(cluster.replica_placements.get(group, [])) == due  # placed at the instant: none waits
        if t == 4 * DAY:
            checks["booked_at_window"] = sum(cluster.failures.booked_replicas)
        chip_accounts(cluster, initial_free)
        return out

    monkeypatch.setattr(sharing, "apply_scaling", scaling)
    monkeypatch.setattr(FailureProcess, "fire", checked(FailureProcess.fire))
    monkeypatch.setattr(Cluster, "try_start", checked(Cluster.try_start))
    monkeypatch.setattr(Cluster, "_complete", checked(Cluster._complete))
    config = resolve_failures(scenario, catalog, fleet, jobs)
    cluster = simulate_training(fleet, prepared, horizon, scenario.policy.scheduler, scaling_schedule=schedule,
                                failures=config, failure_rng=np.random.default_rng(seed))
    out = cluster.outcome()
    fails = cluster.failures
    assert checks["events"] > 1000
    assert checks["booked_at_window"] > 0 and sum(fails.booked_replicas) >= checks["booked_at_window"]
    assert sum(fails.interruptions) > 50 and fails.repairs.sum() > 20
    states = set(out["state"].tolist())
    assert states <= {"completed", "running", "queued", "rejected", "beyond-horizon"} and "completed" in states
    assert (out["state"] == "completed").sum() > 100


def test_without_failures_the_booking_rule_is_never_reached(tmp_path, monkeypatch):
    """Without ``failures`` a scale-up takes the path it always took (results stay byte-identical: the scenario
    goldens check it)."""
    def refuse(*args):
        raise AssertionError("booking without failures")

    monkeypatch.setattr(sharing, "book_replica", refuse)
    monkeypatch.setattr(sharing, "fits_without_training", refuse)
    data = scheduled_pools(tmp_path, days=2)
    del data["failures"]
    results = sim.run(scenario_from(data, tmp_path))
    assert results.summary["training"]["preemptions"] > 0 and "failures" not in results.summary
