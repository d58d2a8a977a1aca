"""Money: the dated ledger of what the site costs (capex, depreciation, maintenance, rental, energy) and
its figures per calendar month, built after training and serving from plain values."""

from sim.money.calendar import month_edges
from sim.money.ledger import CATEGORIES, COST_CATEGORIES, Ledger, build_ledger
from sim.money.report import job_costs_usd, job_energy_kwh, money_summary, monthly_table

__all__ = ["CATEGORIES", "COST_CATEGORIES", "Ledger", "build_ledger", "job_costs_usd", "job_energy_kwh",
           "money_summary", "month_edges", "monthly_table"]
