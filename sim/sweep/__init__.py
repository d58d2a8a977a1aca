"""Sweeps and replicas: many runs of one scenario, as one tidy table or as figures with intervals.

* ``sweep(scenario, grid=..., replicas=k, executor=...)``: one row per (point, replica) (``sim.sweep.execute``)
* ``run_replicas(scenario, n)``: ``n`` seeds spawned from the scenario's, every figure as mean and 95 %
  interval (``sim.sweep.replicas``)
* designs (grid, zip, Latin hypercube): ``sim.sweep.design``; the table and its folder: ``sim.sweep.table``
"""

from sim.sweep.design import Design, SweepError, make_design, parse_grid_option
from sim.sweep.execute import SweepRun, dask_client, run_sweep, sweep
from sim.sweep.intervals import interval, intervals, student_t_quantile
from sim.sweep.replicas import Replicas, run_replicas
from sim.sweep.seeds import replica_seeds

__all__ = ["Design", "Replicas", "SweepError", "SweepRun", "dask_client", "interval", "intervals", "make_design",
           "parse_grid_option", "replica_seeds", "run_replicas", "run_sweep", "student_t_quantile", "sweep"]
