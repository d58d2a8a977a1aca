"""The run's results: summary, tables, exact time-series bins, plots and manifest."""

from sim.results.results import Results

__all__ = ["Results"]
