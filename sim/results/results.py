"""``Results``: one object holding a run's summary, tables and manifest; renderers read from it.

Building a ``Results`` writes nothing; ``save(dir)`` writes ``summary.json``, ``jobs.csv``,
``timeseries.csv``, ``monthly.csv`` (when the run made one), ``procurement.csv`` (when the scenario orders chips),
``burst.csv`` (with ``policy.burst``), ``capping.csv`` (with ``policy.power_cap`` throttle/shed or a cap
schedule), ``manifest.json``, ``scenario.json`` (the scenario as run),
``requests.csv`` when ``outputs.requests_csv`` asks for it, (unless disabled) the PNG plots and ``report.html``
(``sim.results.report_html``), through a temporary folder, then marks the folder complete
(``sim.results.output_folder``). The JSON files hold no ``NaN`` or ``Infinity``: non-finite numbers are
written as ``null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.results.compute import iso_datetimes
from sim.results.output_folder import write_run


@dataclass(repr=False)
class Results:
    summary: dict
    jobs: pd.DataFrame
    timeseries: pd.DataFrame
    manifest: dict
    scenario: object = field(repr=False, default=None)
    requests: pd.DataFrame | None = field(repr=False, default=None)  # inference requests, one row each
    # fluid services: name -> (bin edges [s], requests offered per bin, requests served per bin)
    fluid_load: dict = field(repr=False, default_factory=dict)
    ledger: object = field(repr=False, default=None)  # sim.money.Ledger: the run's dated cost entries
    monthly: pd.DataFrame | None = field(repr=False, default=None)  # one row per calendar month (monthly.csv)
    procurement: pd.DataFrame | None = field(repr=False, default=None)  # one row per order (procurement.csv)
    burst: pd.DataFrame | None = field(repr=False, default=None)  # policy.burst's rental events (burst.csv)
    capping: pd.DataFrame | None = field(repr=False, default=None)  # power-cap actions (capping.csv)

    def save(self, directory: str | Path, plots: bool | None = None, report: bool = True) -> Path:
        """Write every output file into ``directory`` (created if needed) and return it; ``report=False``
        leaves out ``report.html``.

        The files are written into a temporary sibling folder, then moved in; dcsim's files of an earlier
        run there are deleted (other files are kept) and ``run-complete.json`` is written last. Raises
        ``OutputError`` when the folder cannot be written."""
        want_plots = plots if plots is not None else (self.scenario is None or self.scenario.outputs.plots)

        def write(out: Path) -> None:
            self._write_files(out, want_plots)
            if report:
                from sim.results.report_html import write_run_report

                write_run_report(out, sorted(p.name for p in out.iterdir()))

        return write_run(directory, write, self.manifest.get("scenario", ""))

    def _write_files(self, out: Path, plots: bool) -> None:
        (out / "summary.json").write_text(json_text(self.summary), encoding="utf-8")
        (out / "manifest.json").write_text(json_text(self.manifest), encoding="utf-8")
        if self.scenario is not None:  # the scenario as run; its canonical SHA-256 is the manifest's
            (out / "scenario.json").write_text(json_text(self.scenario.model_dump(mode="json")), encoding="utf-8")
        self.jobs.to_csv(out / "jobs.csv", index=False)
        iso_datetimes(self.timeseries).to_csv(out / "timeseries.csv", index=False)  # datetime as ISO text
        if self.monthly is not None:
            self.monthly.to_csv(out / "monthly.csv", index=False)
        if self.procurement is not None:
            self.procurement.to_csv(out / "procurement.csv", index=False)
        if self.burst is not None:
            self.burst.to_csv(out / "burst.csv", index=False)
        if self.capping is not None:
            self.capping.to_csv(out / "capping.csv", index=False)
        if self.requests is not None and self.scenario is not None and self.scenario.outputs.requests_csv:
            sampled_rows(self.requests, self.scenario.outputs.requests_csv_fraction).to_csv(
                out / "requests.csv", index=False)
        if plots:
            from sim.results.plots import write_plots

            write_plots(self, out)

    def __repr__(self) -> str:
        """One line: scenario name, horizon, job counts and services (not the tables)."""
        s, j = self.summary, self.summary.get("jobs", {})
        services = ", ".join(s.get("inference", {})) or "none"
        return (f"Results({self.manifest.get('scenario', '?')!r}, horizon {_days(s.get('horizon_s'))}, jobs "
                f"{j.get('submitted')} submitted / {j.get('completed')} completed / {j.get('running')} running / "
                f"{j.get('queued')} queued / {j.get('rejected')} rejected, services: {services})")

    def table(self) -> str:
        """A short plain-text table of the headline numbers (what the CLI prints)."""
        s = self.summary
        j = s["jobs"]
        lines = [
            f"jobs       submitted {j['submitted']}  completed {j['completed']}  running {j['running']}  "
            f"queued {j['queued']}  rejected {j['rejected']}  beyond horizon {j['beyond_horizon']}",
            f"JCT        {_stat_line(s['jct_s'])}" + _censoring(s.get("jct_s_counts")),
            f"queue wait {_stat_line(s['queue_wait_s'])}",
            f"still wait {j['queued']} jobs queued at the end"
            + (f", waiting since arrival: {_stat_line(s['still_queued_wait_s'])}" if j["queued"] else ""),
        ]
        if "training" in s:  # preemptions: by inference on shared pools, or by pools that leave
            t = s["training"]
            lent = ", ".join(f"{name} {pool['chip_hours_lent_to_training']:,.0f}"
                             for name, pool in s.get("shared_pools", {}).items())
            lines.append(f"preempted  jobs {t['preempted_jobs']}  preemptions {t['preemptions']}  "
                         f"lost {t['lost_chip_hours']:,.1f} chip-h  deferred jobs {t['deferred_jobs']}"
                         + (f"  lent chip-h: {lent}" if lent else ""))
        for accel, util in sorted(s["utilization_by_accelerator"].items()):
            lines.append(f"util       {accel:<14} {util:7.1%}")
        cap = s["power_cap_kw"]
        lines.append(f"power      peak facility {s['peak_facility_power_kw'] / 1e3:.3f} MW"
                     + (f" of cap {cap / 1e3:.3f} MW" if cap else " (no cap)"))
        lines.append(f"energy     {s['facility_energy_kwh'] / 1e3:,.1f} MWh  ${s['energy_cost_usd']:,.0f}  "
                     f"{s['carbon_kg'] / 1e3:,.1f} tCO2e  chips ${s['fleet_cost_usd']:,.0f}")
        for name, svc in s.get("inference", {}).items():
            r, slo = svc["requests"], svc["slo_attainment"]
            if svc.get("family") == "ranking":
                lines.append(
                    f"service    {name}: completed {r['completed']} of {r['offered']} offered, rejected "
                    f"{r['rejected']}, unfinished {r['unfinished']}; latency p99 {_ms(svc['latency_s']['p99'])}"
                    + (f", SLO {slo:.1%}" if slo is not None else ""))
                continue
            lines.append(
                f"service    {name}: completed {r['completed']} of {r['offered']} offered, rejected {r['rejected']}, "
                f"unfinished {r['unfinished']}; TTFT p99 {_ms(svc['ttft_s']['p99'])}, "
                f"TPOT p99 {_ms(svc['tpot_s']['p99'])}" + (f", SLO {slo:.1%}" if slo is not None else ""))
        return "\n".join(lines)


def json_text(data: dict) -> str:
    """``data`` as indented, key-sorted JSON text; NaN and ±Infinity (not JSON) become ``null``."""
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _days(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 86400:g} d" if seconds >= 86400 else f"{seconds / 3600:g} h"


def _censoring(counts: dict | None) -> str:
    """What the JCT figures leave out: ``  (over 512 completed jobs; left out: 40 still queued, …)``."""
    if not counts:
        return ""
    left = [f"{n} {why.replace('_', ' ')}" for why, n in counts.items() if why != "included" and n]
    return f"  (over {counts['included']} completed jobs" + (f"; left out: {', '.join(left)})" if left else ")")


def _stat_line(stats: dict) -> str:
    if stats["mean"] is None:
        return "n/a"
    return "  ".join(f"{k} {_hours(v)}" for k, v in stats.items())


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.0f} ms"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}h" if seconds >= 360 else f"{seconds:.0f}s"


def sampled_rows(requests: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """A systematic sample of ``fraction`` of each service's rows, in their order (deterministic: row ``i``
    of a service is kept when ``floor((i + 1)·fraction) > floor(i·fraction)``; all rows at 1)."""
    if fraction >= 1.0 or requests.empty:
        return requests
    index = requests.groupby("service", sort=False).cumcount().to_numpy()
    keep = np.floor((index + 1) * fraction) > np.floor(index * fraction)
    return requests[keep]
