"""The site power cap while training runs: the cap schedule and the ``throttle`` / ``shed`` policies
(``sim.policies.capping`` defines them and the clock/power/speed curves).

The cluster (``sim.training.cluster``) asks ``fits(busy_w)`` before a start, calls ``fire(t)`` at a cap change
(``site.power_cap_mw`` as a dated schedule) or an inference power change, and ``after(t)`` at the end of every
event. Power here is the cluster's committed facility power (idle floor of every chip, inference, training jobs at
their clock). Under ``admission`` inference is counted through its reservation at full load
(``Fleet.committed_floor_w``), as admission control always did. Under ``throttle`` and ``shed`` it is counted as
it draws: serving runs before training, so its facility power per time bin is known (``inference``: the bin's
busy chip-seconds / bin width × each chip's busy increment, at the replicas' clocks); the reservation is replaced
by the first bin's value and each later bin whose value differs is an event, like a cap change. Simplification:
inference is flat within a bin (its mean), so peaks within a bin are not seen; the bin means of site power stay
within the cap. Every action is recorded (``rows``: ``capping.csv``, with the job's ``priority``), and so is the
committed power after each event (``trace``), which the tests hold to the cap.

Priorities (``workloads.training.generator.priority`` / ``trace.priority``, default 0): the jobs kept first are the
highest priority, then the earliest started (``_order``): ``throttle`` slows the lowest-priority jobs first,
``shed`` pauses them first, last started first within a priority. Admission ignores priority (a high-priority job
waits for power like any other).

A clock change settles the job's work: ``done`` full-speed seconds at ``at``, then ``speed`` full-speed seconds per
second; the completion moves to ``at + (work − done) / speed``. A job preempted while throttled (by inference, a
leaving pool, a failure or ``shed``) keeps the work done up to its last checkpoint (``work_done_s``).
Simplifications: with ``failures``, failure draws stay at their wall-clock times. The cluster's committed power (the
cap check and ``trace``) counts training at full load times its clock; the results' power and energy count each job
at its activity factor (``sim.training.power``) times its clock, so the corrections (``power_events``) are scaled by
that factor and also kept per job (``outcome``'s ``job_it_correction_j``, for the jobs' own energy).
Rack and row budgets (``sim.training.budgets``) act through the same policy: a job's clock is the lowest that the
site cap and the racks and rows it is in allow (``_throttle``), and ``shed`` sheds until every budget holds; each
row of ``rows`` names the budget that acted.
"""

from __future__ import annotations

import heapq
import math

from sim.fleet import within_cap
from sim.policies.capping import clocks_within, power_frac, speed_frac
from sim.training import sharing

COMPUTE = 0  # code of "compute" in sim.kernels.BOTTLENECKS
_EXACT = 1 << 1074  # every finite float is an integer number of 2^-1074


def _exact(x: float) -> int:
    """``x`` as an exact integer number of 2^-1074."""
    n, d = x.as_integer_ratio()
    return n * (_EXACT // d)


class PowerCap:
    """Cap schedule and capping policy of one run; ``schedule`` is ``((t [s], cap [W]), ...)`` in time order."""

    def __init__(self, cluster, policy, schedule, compute_share, priorities=None, inference=None, activity=None):
        self.cluster = cluster
        self.budgets = cluster.budgets  # rack and row budgets (``sim.training.budgets``); None without
        self.policy = policy
        self.kind = policy.kind
        self.min_clock = policy.min_clock
        for t, w in schedule:  # dates up to the start: the latest one's cap holds from t = 0
            if t <= 0.0:
                cluster.power_cap_w = w
        self.changes = [(t, w) for t, w in schedule if t > 0.0]
        self.priority = priorities  # per job (None: all 0)
        # inference counted as it draws (throttle, shed): ``(bin starts [s], facility power [W], reserved [W])``
        self.inference_w = 0.0
        self.inference_changes: list[tuple[float, float]] = []  # (t [s], facility power from then [W])
        self.next_inference = 0
        if inference is not None and self.kind in ("throttle", "shed"):
            starts, watts, reserved = inference
            self.inference_w = float(watts[0]) if len(watts) else 0.0
            cluster.committed_w += self.inference_w - reserved
            last = self.inference_w
            for t, w in zip(starts[1:].tolist(), watts[1:].tolist()):
                if w != last:
                    self.inference_changes.append((t, w))
                    last = w
        self._next()
        self.compute_share = compute_share  # N×P clock-sensitive share of each job's step (policy docstring)
        self.state: dict[int, list] = {}  # job -> [run start, work, done, at, speed, clock, history, pool]
        # (t, pool, IT power change [W], chips below full clock change) at each clock change and at the end of a
        # throttled run: the results add them to the power of running jobs at their activity (``power_events``)
        self.corrections: list[tuple[float, int, float, float]] = []
        self.correction_jobs: list[int] = []  # the job of each entry of ``corrections``
        self.correction_power: list[float] = []  # the job's ``power_frac`` of its new clock, per entry
        self.activity = activity  # N×P share of dynamic power a running job draws (None: 1)
        self.rows: list[tuple] = []
        self.trace: list[tuple[float, float, float]] = []  # (t, committed facility power [W], cap [W]) under a cap
        self.throttled_chip_s = 0.0
        self.lost_chip_s = 0.0  # chip-seconds of full-speed work not done because of slower clocks
        self.shed_jobs = 0
        self._binding: dict[int, str] = {}  # job -> the budget that set its clock below full, while it is below
        # committed power kept incrementally: per running job below full clock, the power its clock saves
        # (``_job_w × (1 − power_frac(clock))``) as an exact integer in units of 2^-1074 W, and their exact sum, so
        # that ``committed_w`` rounds once, as a ``math.fsum`` over the running jobs would
        self._saved: dict[int, int] = {}
        self._saved_total = 0
        self._ended: list[int] = []  # jobs that ended (``ended``) since the last ``_forget_ended``
        self._seq: dict[int, int] = {}  # job -> when it entered ``state`` (the order ``_forget_ended`` closes them)
        self._next_seq = 0
        self._throttled = None  # ``budgets.generation`` when ``_throttle`` last set the clocks

    # -- power --------------------------------------------------------------------------------------
    def _job_w(self, job: int) -> float:
        c = self.cluster
        return c.busy_chips[job] * c.dynamic_w[c.pool_of[job]]

    def _clock(self, job: int) -> float:
        st = self.state.get(job)
        return st[5] if st is not None and st[0] == self.cluster.start_s[job] else 1.0

    def committed_w(self) -> float:
        """Committed facility power now, training jobs at their clocks [W]: the cluster's count at full clock less
        the power the slower clocks save, kept exactly at each clock change and job end (``_saved``), rounded once
        (equal to ``math.fsum`` of the savings of the running jobs)."""
        return self.cluster.committed_w - self._saved_total / _EXACT

    def _save(self, job: int, f: float) -> None:
        """``job`` runs at clock ``f`` from now: its saving in ``_saved``."""
        old = self._saved.pop(job, 0)
        new = _exact(self._job_w(job) * (1.0 - power_frac(f))) if f != 1.0 else 0
        if f != 1.0:
            self._saved[job] = new
        self._saved_total += new - old

    def ended(self, job: int) -> None:
        """``job`` completed or was preempted (the cluster's ``_complete``): its saving leaves the committed power,
        and its throttled time is closed at the end of the event (``_forget_ended``)."""
        self._saved_total -= self._saved.pop(job, 0)
        if job in self.state:
            self._ended.append(job)

    def fits(self, busy_w: float) -> bool:
        """Whether a job adding ``busy_w`` at full load may start (``throttle``: every job at the minimum clock)."""
        c = self.cluster
        if self.kind != "throttle" or c.power_cap_w is None:
            return within_cap(c.committed_w + busy_w, c.power_cap_w)
        floor = c.committed_w - math.fsum(self._job_w(j) for j in c.placement)
        low = power_frac(self.min_clock)
        return within_cap(floor + low * (math.fsum(self._job_w(j) for j in c.placement) + busy_w), c.power_cap_w)

    # -- events -------------------------------------------------------------------------------------
    def fire(self, t: float) -> bool:
        """The cap or inference's power changes at ``t``; return True (waiting jobs are tried again)."""
        while self.changes and self.changes[0][0] <= t:
            _, cap = self.changes.pop(0)
            self.rows.append((t, self.kind, "cap", -1, "", math.nan, 0.0, self.committed_w(), cap, None, "site"))
            self.cluster.power_cap_w = cap
        changes = self.inference_changes
        while self.next_inference < len(changes) and changes[self.next_inference][0] <= t:
            w = changes[self.next_inference][1]
            self.cluster.committed_w += w - self.inference_w
            self.inference_w = w
            self.next_inference += 1
        self._next()
        return True

    def _next(self) -> None:
        cap_s = self.changes[0][0] if self.changes else math.inf
        changes = self.inference_changes
        self.next_s = min(cap_s, changes[self.next_inference][0] if self.next_inference < len(changes) else math.inf)

    def after(self, t: float) -> bool:
        """Act at the end of the event at ``t``; return whether jobs were shed (requeued)."""
        self._forget_ended(t)
        c = self.cluster
        shed = False
        capped = c.power_cap_w is not None or self.budgets is not None
        if self.kind == "throttle" and capped:
            shed = self._throttle(t)
        elif self.kind == "shed" and capped:
            shed = self._shed_until_within(t)
        if c.power_cap_w is not None:
            self.trace.append((t, self.committed_w(), c.power_cap_w))
        if self.budgets is not None:
            self.budgets.record(t)
            self.budgets.observe()
        return shed

    def _order(self) -> list[int]:
        """Running jobs, kept first: highest priority first, then earliest current start (ties: lower index)."""
        c = self.cluster
        if self.priority is None:
            return sorted(c.placement, key=lambda j: (c.start_s[j], j))
        priority = self.priority
        return sorted(c.placement, key=lambda j: (-priority[j], c.start_s[j], j))

    def _key(self):
        """The sort key of ``_order`` (kept first), for a few jobs without sorting them all."""
        c = self.cluster
        if self.priority is None:
            return lambda j: (c.start_s[j], j)
        priority = self.priority
        return lambda j: (-priority[j], c.start_s[j], j)

    def _priority(self, job: int) -> int:
        return 0 if self.priority is None else int(self.priority[job])

    def _shed_until_within(self, t: float) -> bool:
        """Shed the last jobs in keep order while the site, or a rack or row with training in it, is over."""
        c = self.cluster
        if c.power_cap_w is None and not self.budgets.any_over():  # budgets only, and they hold: nothing to do
            return False
        shed = False
        if c.power_cap_w is not None:
            order = self._order()
            while order and not within_cap(self.committed_w(), c.power_cap_w):
                job = order.pop()
                self._shed(job, t)
                shed = True
        while self.budgets is not None and (victim := self.budgets.over(self._key())) is not None:
            self._shed(victim[0], t, victim[1])
            shed = True
        return shed

    def _shed(self, job: int, t: float, budget: str = "site") -> None:
        c = self.cluster
        w = self._job_w(job) * power_frac(self._clock(job))
        pool = c.pool_of[job]
        self._settle(job, t)
        st = self.state.get(job)
        if st is not None and st[0] == c.start_s[job]:
            self._correct(t, job, st[7], st[5], 1.0)
        sharing.preempt(c, job, t)
        self.state.pop(job, None)
        self._seq.pop(job, None)
        self.shed_jobs += 1
        self.rows.append((t, self.kind, "shed", job, c.pools[pool].name, 0.0, w, self.committed_w(), c.power_cap_w,
                          self._priority(job),
                          budget))

    def _throttle(self, t: float) -> bool:
        """Clocks for the running jobs: each budget (the site cap, each rack and row) computes its members' clocks
        in keep order (``clocks_within``), and a job runs at the lowest of the clocks of the budgets it is in.
        Lowering a clock only lowers power, so every budget then holds: each one holds with its own clocks, and
        the others' can only be lower. A budget that even the minimum clock does not hold sheds its last job."""
        c = self.cluster
        if c.power_cap_w is None and self._throttled == self.budgets.generation:
            return False  # budgets only, and no budget changed since the clocks were last set: they stand
        shed = False
        key = self._key()
        while True:
            if c.power_cap_w is not None:
                order = self._order()
                clocks = {job: 1.0 for job in order}
            else:  # budgets only: a job in no budget over at full clock runs at full clock (or is restored to it)
                order = None
                clocks = {job: 1.0 for job in self._saved}
            binding = {}
            if c.power_cap_w is not None:
                floor = c.committed_w - math.fsum(self._job_w(j) for j in order)
                site = clocks_within(c.power_cap_w * (1.0 + 1e-12) - floor, [self._job_w(j) for j in order],
                                     self.min_clock)
                if site is None and order:
                    self._shed(order[-1], t)  # even the minimum clock is over the cap (a cap drop): shed the last
                    shed = True
                    continue
                clocks.update(zip(order, site or ()))
            if self.budgets is not None and (order or order is None and c.placement):
                victim = self.budgets.clocks(key, clocks, binding, self.min_clock)
                if victim is not None:
                    self._shed(victim[0], t, victim[1])
                    shed = True
                    continue
            break
        changes = [(f > self._clock(job), job, f) for job, f in clocks.items() if abs(f - self._clock(job)) > 1e-12]
        if order is None:
            changes.sort(key=lambda change: key(change[1]))  # as ``_order`` lists them
        for _, job, f in sorted(changes, key=lambda c: c[0]):  # lower clocks first: within the cap after each row
            budget = binding.get(job, "site") if f < 1.0 else self._binding.pop(job, "site")
            if f < 1.0:
                self._binding[job] = budget
            self._set_clock(job, f, t, budget)
        self._throttled = self.budgets.generation if self.budgets is not None and c.power_cap_w is None else None
        return shed

    # -- per-job work ---------------------------------------------------------------------------------
    def _track(self, job: int) -> list:
        c = self.cluster
        st = self.state.get(job)
        if st is None or st[0] != c.start_s[job]:
            start = c.start_s[job]
            st = [start, c.end_s[job] - start, 0.0, start, 1.0, 1.0, [(start, 0.0, 1.0)], c.pool_of[job]]
            if job not in self.state:
                self._seq[job] = self._next_seq
                self._next_seq += 1
            self.state[job] = st
        return st

    def _settle(self, job: int, t: float) -> None:
        """Bring the job's work done up to ``t`` and count throttled chip-time since the last change."""
        st = self.state.get(job)
        if st is None or st[0] != self.cluster.start_s[job]:
            return
        dt = t - st[3]
        if st[5] < 1.0 and dt > 0:
            chips = self.cluster.busy_chips[job]
            self.throttled_chip_s += dt * chips
            self.lost_chip_s += dt * chips * (1.0 - st[4])
        st[2] += dt * st[4]
        st[3] = t

    def _set_clock(self, job: int, f: float, t: float, budget: str = "site") -> None:
        c = self.cluster
        st = self._track(job)
        self._settle(job, t)
        pool = c.pool_of[job]
        st[4] = speed_frac(f, float(self.compute_share[job, pool]))
        action = "throttle" if f < st[5] else "restore"
        self._correct(t, job, pool, st[5], f)
        if self.budgets is not None:
            self.budgets.set_clock(job, f)
        st[5] = f
        self._save(job, f)
        st[6].append((t, st[2], st[4]))
        old_end = c.end_s[job]
        new_end = t + max(st[1] - st[2], 0.0) / st[4]
        c.end_s[job] = new_end
        if math.isfinite(old_end):
            if c.failures is None:
                sharing._remove_from_heap(c.completions, (old_end, job))
            else:  # as sharing.preempt: the old entry stays in the heap, skipped when it comes due
                c.stale_completions.add((old_end, job))
            heapq.heappush(c.completions, (new_end, job))
            if c.track_release_times:
                sharing._remove_from_heap(c.pool_ends[pool], old_end)
                heapq.heappush(c.pool_ends[pool], new_end)
        self.rows.append((t, self.kind, action, job, c.pools[pool].name, f, self._job_w(job) * power_frac(f),
                          self.committed_w(), c.power_cap_w, self._priority(job), budget))

    def _forget_ended(self, t: float) -> None:
        """Close the throttled time of runs that ended (completed or preempted) since the last event."""
        c = self.cluster
        state = self.state
        ended = {j for j in self._ended if j in state and (j not in c.placement or state[j][0] != c.start_s[j])}
        self._ended.clear()
        for job in sorted(ended, key=self._seq.__getitem__):  # in the order they entered ``state``
            st = self.state.pop(job)
            del self._seq[job]
            end = min(t, st[3] + max(st[1] - st[2], 0.0) / st[4])
            if st[5] < 1.0 and end > st[3]:
                chips = c.busy_chips[job]
                self.throttled_chip_s += (end - st[3]) * chips
                self.lost_chip_s += (end - st[3]) * chips * (1.0 - st[4])
            self._correct(end, job, st[7], st[5], 1.0)

    def _correct(self, t: float, job: int, pool: int, old: float, new: float) -> None:
        """Record the IT power and throttled-chip change of ``job`` going from clock ``old`` to ``new`` at ``t``."""
        if old == new:
            return
        p = self.cluster.pools[pool]
        chips = self.cluster.busy_chips[job]
        it_w = chips * (p.busy_w_with_server - p.idle_w_with_server) * (power_frac(new) - power_frac(old))
        if self.activity is not None:
            it_w *= float(self.activity[job, pool])
        throttled = chips * ((new < 1.0) - (old < 1.0))
        self.corrections.append((t, pool, it_w, throttled))
        self.correction_jobs.append(job)
        self.correction_power.append(power_frac(new))

    def power_events(self) -> dict[int, tuple]:
        """Per pool: ``(times, IT power changes [W], throttled chip changes)`` arrays (``corrections``)."""
        import numpy as np

        out = {}
        for pool in sorted({row[1] for row in self.corrections}):
            rows = np.array([(t, w, n) for t, p, w, n in self.corrections if p == pool], dtype=np.float64)
            out[pool] = (rows[:, 0], rows[:, 1], rows[:, 2])
        return out

    def job_corrections_j(self, horizon_s: float) -> "object":
        """Per job: IT energy its clock changes saved up to ``horizon_s`` [J] (≤ 0): each correction holds from its
        time until a later one of the same job undoes it (the run's end restores the full clock)."""
        import numpy as np

        out = np.zeros(len(self.cluster.arrival))
        if self.corrections:
            t = np.array([row[0] for row in self.corrections])
            w = np.array([row[2] for row in self.corrections])
            np.add.at(out, np.asarray(self.correction_jobs, dtype=np.int64), w * np.maximum(horizon_s - t, 0.0))
        return out

    def job_clocks(self) -> dict:
        """Every clock change of a training job, in the order made: ``time_s``, ``job`` and ``power_frac`` (the
        share of its full-clock dynamic power the job draws from then on: ``power_frac`` of its new clock; each run
        starts at 1 and its end restores 1). The checkpoint dips follow it (``sim.results.checkpoints``)."""
        import numpy as np

        return {"time_s": np.array([row[0] for row in self.corrections], dtype=np.float64),
                "job": np.array(self.correction_jobs, dtype=np.int64),
                "power_frac": np.array(self.correction_power, dtype=np.float64)}

    def work_done_s(self, job: int, t: float) -> float:
        """Full-speed seconds of work the current run of ``job`` had done by ``t`` (wall time since its start when
        its clock never changed)."""
        st = self.state.get(job)
        start = self.cluster.start_s[job]
        if st is None or st[0] != start:
            return t - start
        at, done, speed = st[6][0]
        for entry in st[6]:
            if entry[0] > t:
                break
            at, done, speed = entry
        return done + (t - at) * speed

    def outcome(self, horizon_s: float) -> dict:
        """``rows`` (capping.csv), the power ``trace``, throttled and lost chip-hours, jobs shed."""
        c = self.cluster
        for job, st in self.state.items():  # runs still going at the horizon
            if st[5] < 1.0 and horizon_s > st[3]:
                chips = c.busy_chips[job]
                self.throttled_chip_s += (horizon_s - st[3]) * chips
                self.lost_chip_s += (horizon_s - st[3]) * chips * (1.0 - st[4])
        self.state.clear()
        self._seq.clear()
        return {"rows": self.rows, "trace": self.trace, "power_events": self.power_events(),
                "job_it_correction_j": self.job_corrections_j(horizon_s), "job_clocks": self.job_clocks(),
                **({"budgets": self.budgets.outcome()} if self.budgets is not None else {}),
                "throttled_chip_hours": self.throttled_chip_s / 3600.0,
                "lost_chip_hours": self.lost_chip_s / 3600.0, "shed_jobs": self.shed_jobs}


def compute_shares(jobs) -> "object":
    """N×P clock-sensitive share of each job's step on each pool (``sim.policies.capping`` docstring)."""
    import numpy as np

    shape = jobs.duration_s.shape
    steps = jobs.steps
    if steps is None:
        return np.ones(shape)
    share = np.where(steps.bottleneck == COMPUTE, steps.share, 1.0 - steps.share)
    return np.where(steps.applies[:, None] & (steps.step_s > 0) & np.isfinite(steps.step_s), share, 1.0)
