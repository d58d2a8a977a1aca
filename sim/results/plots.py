"""PNG plots of a run, drawn from one ``Results`` object (matplotlib is imported only here).

* ``utilization.png`` — utilization per accelerator type over time
* ``queue.png`` — mean queue length per time bin
* ``jct.png`` — CDF of job completion time per accelerator type (log time axis)
* ``power.png`` — IT and facility power against the site cap
* ``latency.png`` — latency CDF per service and accelerator type (request-level services)
* ``served.png`` — offered and served requests per second over time (every LLM and ranking service)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DAY_S = 86400.0


def write_plots(results, out: Path) -> list[Path]:
    ts = results.timeseries
    days = ts["time_s"].to_numpy() / DAY_S
    title = results.manifest.get("scenario", "")
    paths = [
        _plot(out / "utilization.png", f"{title}: utilization by accelerator type", "utilization",
              lambda ax: _utilization(ax, ts, days)),
        _plot(out / "queue.png", f"{title}: jobs waiting", "queued jobs (bin mean)",
              lambda ax: ax.step(days, ts["queue_length"], where="post", color="tab:red")),
        _plot(out / "jct.png", f"{title}: job completion time by accelerator type", "fraction of jobs",
              lambda ax: _jct(ax, results.jobs), xlabel="job completion time [h]"),
        _plot(out / "power.png", f"{title}: power against the site cap", "power [MW]",
              lambda ax: _power(ax, ts, days, results.summary.get("power_cap_kw"))),
    ]
    requests = results.requests
    has_requests = requests is not None and len(requests) > 0
    if has_requests:
        paths.append(_plot(out / "latency.png", f"{title}: latency by service and accelerator type",
                           "fraction of requests", lambda ax: _latency(ax, requests),
                           xlabel="time to first token (LLM) or to scores (ranking) [s]"))
    if has_requests or results.fluid_load:
        horizon = results.summary["horizon_s"]
        paths.append(_plot(out / "served.png", f"{title}: offered and served requests", "requests / s",
                           lambda ax: _served(ax, requests if has_requests else None, results.fluid_load, horizon),
                           xlabel="simulated time [h]"))
    return paths


def _latency(ax, requests) -> None:
    done = requests[requests["state"] == "completed"]
    for (service, accel), group in done.groupby(["service", "accelerator"]):
        # ranking rows have no first token: their latency is arrival to finish
        ttft = np.sort((group["first_token_s"].fillna(group["finish_s"]) - group["arrival_s"]).to_numpy())
        shown = np.unique(np.linspace(0, len(ttft) - 1, min(len(ttft), 4000)).astype(int))  # enough for a CDF
        ax.step(np.maximum(ttft[shown], 1e-4), (shown + 1) / len(ttft), where="post",
                label=f"{service} on {accel} ({len(ttft)})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)


def _served(ax, requests, fluid_load: dict, horizon_s: float) -> None:
    """Offered and served requests per second, all services together: request-level services from
    their rows, fluid services from their per-bin counts (spread evenly within a fluid bin)."""
    bins = np.linspace(0.0, horizon_s, min(200, max(10, int(horizon_s // 60))) + 1)
    width = np.diff(bins)
    offered, served = np.zeros(len(width)), np.zeros(len(width))
    if requests is not None:
        offered += np.histogram(requests["arrival_s"], bins)[0]
        served += np.histogram(requests.loc[requests["state"] == "completed", "finish_s"], bins)[0]
    for edges, offered_per_bin, served_per_bin in fluid_load.values():
        for total, counts in ((offered, offered_per_bin), (served, served_per_bin)):
            total += np.diff(np.interp(bins, edges, np.concatenate(([0.0], np.cumsum(counts)))))
    hours = bins[:-1] / 3600.0
    ax.step(hours, offered / width, where="post", label="offered (arrivals)")
    ax.step(hours, served / width, where="post", label="served (completions)")
    ax.set_ylim(bottom=0)


def _plot(path: Path, title: str, ylabel: str, draw, xlabel: str = "simulated time [days]") -> Path:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    draw(ax)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _utilization(ax, ts, days) -> None:
    for column in ts.columns:
        if column.startswith("utilization."):
            ax.step(days, ts[column], where="post", label=column.split(".", 1)[1])
    ax.set_ylim(0, 1.05)


def _jct(ax, jobs) -> None:
    done = jobs[jobs["state"] == "completed"]
    for accel, group in done.groupby("accelerator"):
        hours = np.sort((group["end_s"] - group["arrival_s"]).to_numpy()) / 3600.0
        fraction = np.arange(1, len(hours) + 1) / len(hours)
        ax.step(np.maximum(hours, 1e-3), fraction, where="post", label=f"{accel} ({len(hours)})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)


def _power(ax, ts, days, cap_kw) -> None:
    ax.step(days, ts["it_power_kw"] / 1e3, where="post", label="IT")
    ax.step(days, ts["facility_power_kw"] / 1e3, where="post", label="facility (IT × PUE)")
    if cap_kw:
        ax.axhline(cap_kw / 1e3, color="black", linestyle="--", label="site cap")
    ax.set_ylim(bottom=0)
