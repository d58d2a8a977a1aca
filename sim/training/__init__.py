"""The training cluster: job preparation (run times per pool), the wait queue, the SimPy process, and
the cluster side of sharing pools with inference (placing replicas, preempting jobs)."""

from sim.training.prepare import PreparedJobs, prepare_jobs
from sim.training.simulate import simulate_training

__all__ = ["PreparedJobs", "prepare_jobs", "simulate_training"]
