"""``dcsim compare``: read two runs' ``summary.json`` and lay out their differences, headline figures first.

The headline figures are shown in readable units (hours, MW, MWh, %, ms); every other metric is shown
under its ``summary.json`` key (dotted: ``inference.chat.e2e_s.p90``) in that key's own unit.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.results.output_folder import COMPLETE_MARKER, DCSIM_FILES, is_complete


class SummaryError(ValueError):
    """A run folder or summary file that cannot be compared (one line: the path and what is wrong)."""


def read_summary(path: str | Path) -> dict:
    """The summary of the run at ``path``: a complete output folder, or a ``summary.json`` file itself."""
    given = Path(path)
    if given.is_dir():
        if not is_complete(given):
            if not any((given / name).exists() for name in DCSIM_FILES):
                raise SummaryError(f"{given}: no dcsim run in this folder (no summary.json)")
            raise SummaryError(f"{given}: holds no complete run (no valid {COMPLETE_MARKER}: the run was "
                               "interrupted or is still being written); run it again")
        given = given / "summary.json"
    try:
        raw = given.read_bytes()
    except FileNotFoundError:
        raise SummaryError(f"{given}: no such file or folder") from None
    except OSError as exc:
        raise SummaryError(f"{given}: cannot read: {exc.strerror or exc}") from None
    return _parse_summary(raw, given)


def _parse_summary(raw: bytes, path: Path) -> dict:
    if not raw.strip():
        raise SummaryError(f"{path}: empty file; expected the JSON summary of a run")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SummaryError(f"{path}: not a text file (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                           "expected the JSON summary of a run") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            raise SummaryError(f"{path}: {exc}; a run's summary.json holds none") from None
        raise SummaryError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                           "the file may be truncated") from None
    if not isinstance(data, dict):
        raise SummaryError(f"{path}: holds a JSON {type(data).__name__}, expected an object of metrics "
                           "(the summary.json of a run)")
    missing = [key for key in SUMMARY_KEYS if key not in data]
    if missing:
        raise SummaryError(f"{path}: not a run summary (no {', '.join(missing)}); expected the summary.json "
                           "that dcsim run writes")
    return data


SUMMARY_KEYS = ("jobs", "horizon_s")  # every run's summary has these


def _refuse_constant(name: str):
    raise ValueError(f"holds {name}, which is not JSON")


@dataclass(frozen=True)
class Headline:
    """A headline figure: its ``summary.json`` key, label, display unit and the factor from the key's unit."""

    key: str
    label: str
    unit: str
    scale: float = 1.0
    fraction: bool = False  # a share in [0, 1]: changes are shown in percentage points

    def show(self, value) -> str:
        if value is None:
            return "n/a"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return str(value)
        return _readable(value * self.scale) if isinstance(value, float) else f"{value:,}"


def headlines(a: dict, b: dict) -> list[Headline]:
    """The headline figures found in either summary, in reading order."""
    rows = [Headline("jobs.completed", "jobs completed", "jobs"),
            Headline("jobs.queued", "jobs still queued at the end", "jobs"),
            Headline("jobs.rejected", "jobs rejected", "jobs")]
    for stat in ("mean", "p50", "p99"):
        rows.append(Headline(f"jct_s.{stat}", f"JCT {stat}", "h", 1 / 3600))
    for stat in ("mean", "p99"):
        rows.append(Headline(f"still_queued_wait_s.{stat}", f"wait of still-queued jobs {stat}", "h", 1 / 3600))
    for accel in sorted(set(a.get("utilization_by_accelerator", {})) | set(b.get("utilization_by_accelerator", {}))):
        rows.append(Headline(f"utilization_by_accelerator.{accel}", f"utilization {accel}", "%", 100, True))
    rows += [Headline("peak_facility_power_kw", "peak facility power", "MW", 1e-3),
             Headline("facility_energy_kwh", "facility energy", "MWh", 1e-3),
             Headline("energy_cost_usd", "energy cost", "USD"),
             Headline("fleet_cost_usd", "fleet cost", "USD"),
             Headline("carbon_kg", "carbon", "t CO2e", 1e-3)]
    services = {**a.get("inference", {}), **b.get("inference", {})}
    for name in sorted(services):
        prefix = f"inference.{name}"
        rows.append(Headline(f"{prefix}.slo_attainment", f"{name}: SLO attainment", "%", 100, True))
        latency = "latency_s" if services[name].get("family") == "ranking" else "ttft_s"
        label = "latency" if latency == "latency_s" else "TTFT"
        rows.append(Headline(f"{prefix}.{latency}.p99", f"{name}: {label} p99", "ms", 1e3))
    return rows


def flatten(data: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metric_filter(patterns: Sequence[str]) -> Callable[[str, str], bool]:
    """A test of (key, label) against ``--only`` patterns: a glob when the pattern has ``* ? [``, else a
    substring; case-insensitive; any pattern may match. No patterns: everything matches."""
    lowered = [p.lower() for p in patterns]

    def matches(key: str, label: str = "") -> bool:
        if not lowered:
            return True
        names = (key.lower(), label.lower())
        return any(fnmatch.fnmatchcase(n, p) if any(c in p for c in "*?[") else p in n
                   for p in lowered for n in names)

    return matches


def compare_text(a: dict, b: dict, only: Sequence[str] = (), show_all: bool = False) -> str:
    """The comparison as text: the headline table, then the other metrics that differ (all with ``show_all``).

    Raises ``SummaryError`` when ``only`` matches no metric of either summary."""
    flat_a, flat_b = flatten(a), flatten(b)
    matches = metric_filter(only)
    top = [h for h in headlines(a, b) if (h.key in flat_a or h.key in flat_b) and matches(h.key, h.label)]
    shown = {h.key for h in top}
    rest = [k for k in sorted(set(flat_a) | set(flat_b))
            if k not in shown and matches(k) and (show_all or flat_a.get(k) != flat_b.get(k))]
    if only and not top and not rest and not any(matches(k) for k in set(flat_a) | set(flat_b)):
        raise SummaryError(f"--only {' '.join(only)}: matches no metric (metrics are named like "
                           "jobs.completed, jct_s.p50, inference.<service>.ttft_s.p99)")
    parts = []
    if top:
        parts.append(format_table(["headline", "unit", "A", "B", "change"],
                                  [[h.label, h.unit, h.show(flat_a.get(h.key, "-")), h.show(flat_b.get(h.key, "-")),
                                    _change(flat_a.get(h.key), flat_b.get(h.key), h.fraction)] for h in top]))
    title = "every other metric" if show_all else "other metrics that differ (--all shows every metric)"
    if rest:
        parts.append(title + "\n" + format_table(
            ["metric", "A", "B", "change"],
            [[k, _plain(flat_a.get(k, "-")), _plain(flat_b.get(k, "-")), _change(flat_a.get(k), flat_b.get(k))]
             for k in rest]))
    elif flat_a == flat_b:
        parts.append("the summaries are identical")
    else:
        parts.append("no other metric differs" + (" among those matching --only" if only else ""))
    return "\n\n".join(parts)


def _readable(value: float) -> str:
    """Whole numbers with thousands separators from 1,000 up; four significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _change(va, vb, fraction: bool = False) -> str:
    """B relative to A (``+2.3%``); for shares the difference in percentage points (``+1.9 pt``)."""
    if not (_is_number(va) and _is_number(vb)):
        return "" if va == vb else "changed"
    if va == vb:
        return "="
    if fraction:
        return f"{(vb - va) * 100:+.2f} pt"
    return f"{(vb - va) / abs(va):+.1%}" if va else ""


def _plain(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else "n/a" if value is None else str(value)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a dashed rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
