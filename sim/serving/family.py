"""The one small interface every inference family implements, and what the runner hands it.

A *family* turns one scenario service into numbers. The serving stage (``sim.serving.stage``) calls
the steps of every service in this order, each step for all services before the next:

1. **plan** (the constructor): the replica groups and their kernel parameters, from the model, the
   chip and the group's settings; nothing random.
2. **draw**: the request table of a request-level service, from the ``inference`` stream in service
   order (before the autoscaler, which sizes groups from these requests).
3. **serve**: one kernel call over all of the service's replicas, whatever their chip types, with the
   autoscaler's switch events; a fluid service draws its traffic here (after every request-level
   draw, so adding a fluid service never changes a request-level one's requests).
4. **report**: busy chip-seconds per pool and time bin (for utilization) and energy-weighted ones (for power),
   the service's
   ``summary["inference"][name]`` entry, its rows of ``requests.csv`` and, for fluid services, the
   offered and served requests per bin.

A new family is one folder under ``sim/serving/`` with a ``ServiceRun`` subclass, registered in
``sim.serving.FAMILIES`` under the key ``family_key`` returns for its services.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ServingContext:
    """What every family needs from the run, and nothing more."""

    fleet: object  # sim.fleet.Fleet
    catalog: object  # sim.catalog.Catalog
    porting: tuple  # the scenario's porting grants
    horizon_s: float
    bin_width_s: float  # width of the time-series bins that busy chip-seconds are reported in
    base_dir: Path  # relative trace paths resolve against it
    rng: np.random.Generator  # "inference" stream: LLM requests, then fluid traffic, in service order
    ranking_rng: np.random.Generator  # "ranking" stream: ranking requests in service order
    start: dt.date | None = None  # the scenario's start date (growth points are calendar dates)
    failures: object = None  # sim.serving.failures.ServingFailures; None: replicas never fail
    failure_rng: np.random.Generator | None = None  # "serving_failures" stream: replica outages
    replica_clocks: dict | None = None  # (service, group) -> ((from_s, until_s, clock), ...) (sim.serving.throttle)


def family_key(service) -> str:
    """The registry key of a scenario service: ``llm-request``, ``llm-fluid``, ``ranking`` or ``ranking-fluid``."""
    if service.family == "ranking":
        return "ranking-fluid" if service.fidelity == "fluid" else "ranking"
    return f"llm-{service.fidelity}"


class ServiceRun(ABC):
    """One service of one family, through plan -> draw -> serve -> report."""

    #: replica groups that the autoscaler switches and whose chips count as held by inference
    scaled_groups: list = []
    #: drawn replica outages, ``(service, group)`` -> rows ``(fail_s, back_s, replica)`` (``sim.serving.failures``)
    outages: dict | None = None  # None: the run has no failures section

    def __init__(self, index: int, service, context: ServingContext):
        self.index, self.service, self.context = index, service, context

    @property
    def name(self) -> str:
        return self.service.name

    def draw(self) -> None:
        """Draw the service's requests (request-level families); the default draws nothing."""

    def failing_groups(self) -> list:
        """Plans of the groups whose replicas fail one by one (request level: every group, a windowed one while
        active, an autoscaled one while the autoscaler has a replica on; ``sim.serving.failures``), before any
        serving-burst copy exists (``sim.serving.burst.rental_outages`` draws theirs); default none."""
        return []

    def windowed_groups(self) -> list[tuple]:
        """``(window, pool, chips per replica, replicas, (service, group))`` of this service's windowed groups that
        are not in ``scaled_groups`` (whose windows the autoscaler's plan already carries); default none."""
        return []

    def burst_rentals(self) -> list[tuple]:
        """``(pool index, (times, counts))`` of each serving-burst group (``sim.serving.burst``): the chips its
        rentals hold online, in ``ResolvedPool.chip_steps`` form; default none."""
        return []

    def requests_for_scaling(self) -> pd.DataFrame | None:
        """The request table the autoscaler sizes this service's groups from (``None``: not autoscaled)."""
        return None

    @abstractmethod
    def serve(self, switches: dict) -> None:
        """Serve the horizon; ``switches`` maps ``(service, group)`` to the autoscaler's events."""

    @abstractmethod
    def busy_chip_seconds(self) -> list[tuple[int, np.ndarray]]:
        """``(pool index, busy chip-seconds per time-series bin)`` of every replica group."""

    def energy_chip_seconds(self) -> list[tuple[int, np.ndarray]]:
        """``(pool index, energy-weighted busy chip-seconds per time-series bin)`` of every replica group: busy
        chip-seconds × the work's activity (``sim.serving.activity``), what power and energy integrate; the
        default counts every busy second at full load."""
        return self.busy_chip_seconds()

    @abstractmethod
    def summary(self) -> dict:
        """The service's entry of ``summary["inference"]``."""

    def requests_table(self) -> pd.DataFrame | None:
        """Its rows of ``requests.csv`` (``None``: no request is simulated one by one)."""
        return None

    def cost_per_bin(self, edges: np.ndarray) -> tuple[str, np.ndarray, np.ndarray] | None:
        """The service's cost [USD] and its units per time-series bin (``edges`` [s]): ``("tokens", cost,
        output tokens)`` for an LLM service, ``("requests", cost, completed requests)`` for a ranking one,
        as its summary's ``cost_per_1m_*`` counts them over the run (``sim.serving.accounting``), so the bins
        add up to it; ``None`` when the family does not say."""
        return None

    def load_per_bin(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Fluid services: (bin edges [s], requests offered per bin, requests served per bin)."""
        return None

    def slo_per_bin(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Fluid services with an SLO: (bin edges [s], requests offered per bin, expected requests within the
        SLO per arrival bin); the offered sum is the summary's attainment denominator, the met sum its numerator."""
        return None


class FluidResults:
    """Mixed into the fluid families: their result dict carries ``edges``, ``offered_per_bin``,
    ``served_per_bin`` and ``met_per_bin``, read the same way for LLM and ranking services."""

    def load_per_bin(self):
        r = self.result
        return r["edges"], r["offered_per_bin"], r["served_per_bin"]

    def slo_per_bin(self):
        r = self.result
        return (r["edges"], r["offered_per_bin"], r["met_per_bin"]) if self.service.slo is not None else None
