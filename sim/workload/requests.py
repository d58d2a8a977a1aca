"""Inference request traces: readers for real public formats, and rate scaling by superposition.

A *request table* is a pandas DataFrame, one row per request, sorted by arrival (stable):

==============  =======  ===========================================================
column          dtype    meaning
==============  =======  ===========================================================
arrival_s       float    arrival time, seconds from the first request of the trace
prompt_tokens   int      prompt (context) length [tokens]
output_tokens   int      generated length [tokens]
source_row      int      1-based data row in the source file (for provenance)
copy            int      which superposed copy (0 for the original; see ``scale_requests``)
==============  =======  ===========================================================

Readers: ``azure-llm-2023`` (Splitwise, ISCA'24: ``TIMESTAMP,ContextTokens,GeneratedTokens``) and
``mooncake`` (FAST'25 JSON lines: ``timestamp`` in ms, ``input_length``, ``output_length``). The file is
checked and read as ``sim.workload.files`` describes; token counts are whole numbers from 1 to
``MAX_TOKENS`` and arrivals lie within ``MAX_TRACE_TIME_S``. A malformed row raises ``TraceError`` naming
the file, the row and the column. Nothing here knows the engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from sim.workload.errors import TraceError
from sim.workload.files import MAX_TRACE_TIME_S, csv_header, csv_records, display, open_data_file, quote, text_lines

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
AZURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
MAX_TOKENS = 10_000_000
TOKENS_ACCEPTED = f"at most {MAX_TOKENS:,} tokens (longer than any model's context window)"
MAX_TIMESTAMP_MS = MAX_TRACE_TIME_S * 1000


def read_azure_llm(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read an Azure LLM inference trace CSV (``AzureLLMInferenceTrace_{code,conv}.csv``), its first
    ``limit`` requests if given.

    Timestamps carry 7 fractional digits (100 ns); they are parsed to the nanosecond, vectorised, and
    must span at most ``MAX_TRACE_TIME_S``. Token counts are whole numbers from 1 to ``MAX_TOKENS``. A
    value that does not parse is reported with its file and row (1-based line, header = line 1).
    """
    with open_data_file(path) as handle:
        return parse_azure_llm(handle, display(path), limit)


def parse_azure_llm(handle: BinaryIO, label: str, limit: int | None = None) -> pd.DataFrame:
    """``read_azure_llm`` of an open file (``label`` names it in errors)."""
    stamps, prompts, outputs, lines = [], [], [], []
    records = csv_records(handle, label)
    header = csv_header(records, label, AZURE_COLUMNS)
    at = [header.positions[c] for c in AZURE_COLUMNS]
    for line, fields in records:
        if limit is not None and len(lines) >= limit:
            break
        header.check_width(line, fields)
        stamps.append(fields[at[0]])
        prompts.append(fields[at[1]])
        outputs.append(fields[at[2]])
        lines.append(line)
    if not lines:
        raise TraceError(f"{label}: no requests (the file has a header and no rows)")
    lines = np.asarray(lines)
    arrivals = _azure_arrivals(pd.Series(stamps, dtype=object), lines, label)
    prompts = _token_column(pd.Series(prompts, dtype=object), lines, label, "ContextTokens")
    outputs = _token_column(pd.Series(outputs, dtype=object), lines, label, "GeneratedTokens")
    rows = np.arange(1, len(lines) + 1)
    return _request_table(arrivals, prompts, outputs, rows, label, lines)


def _azure_arrivals(column: pd.Series, lines: np.ndarray, label: str) -> np.ndarray:
    """Seconds since the first request; every timestamp parses and lies within ``MAX_TRACE_TIME_S`` of it."""
    stamps = pd.to_datetime(column.str.strip(), format=AZURE_TIME_FORMAT, errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise TraceError(f"{label}:{lines[row]}: column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', "
                         f"found {quote(column.iloc[row])}")
    nanoseconds = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
    arrivals = (nanoseconds - nanoseconds[0]) / 1e9
    late = np.flatnonzero(arrivals > MAX_TRACE_TIME_S)
    if len(late):
        row = int(late[0])
        raise TraceError(f"{label}:{lines[row]}: column 'TIMESTAMP': {arrivals[row]:,.0f} s after the first "
                         f"request; accepted: at most {MAX_TRACE_TIME_S:,.0f} s (about 32 years)")
    return arrivals


def _token_column(column: pd.Series, lines: np.ndarray, label: str, name: str) -> np.ndarray:
    """Whole token counts from 1 to ``MAX_TOKENS``, vectorised; the first offending row is named."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
    if len(bad):
        row = int(bad[0])
        raise TraceError(f"{label}:{lines[row]}: column {name!r}: expected a whole number of tokens, "
                         f"found {quote(column.iloc[row])}")
    small = np.flatnonzero(values < 1)
    if len(small):
        row = int(small[0])
        raise TraceError(f"{label}:{lines[row]}: column {name!r}: expected at least 1, found {int(values[row])}")
    large = np.flatnonzero(values > MAX_TOKENS)
    if len(large):
        row = int(large[0])
        raise TraceError(f"{label}:{lines[row]}: column {name!r}: expected {TOKENS_ACCEPTED}, "
                         f"found {quote(column.iloc[row])}")
    return values.astype(np.int64)


def read_mooncake(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read a Mooncake trace (JSON lines with ``timestamp`` [ms], ``input_length``, ``output_length``), its
    first ``limit`` requests if given. Timestamps are from 0 to ``MAX_TIMESTAMP_MS``; lengths are whole
    numbers of tokens from 1 to ``MAX_TOKENS``; blank lines are skipped."""
    with open_data_file(path) as handle:
        return parse_mooncake(handle, display(path), limit)


def parse_mooncake(handle: BinaryIO, label: str, limit: int | None = None) -> pd.DataFrame:
    """``read_mooncake`` of an open file (``label`` names it in errors)."""
    arrivals, prompts, outputs, rows = [], [], [], []
    for row_number, line in text_lines(handle, label):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        record = _json_record(line, label, row_number)
        arrivals.append(_timestamp_s(record["timestamp"], label, row_number))
        prompts.append(_tokens(record["input_length"], label, row_number, "input_length"))
        outputs.append(_tokens(record["output_length"], label, row_number, "output_length"))
        rows.append(row_number)
    if not rows:
        raise TraceError(f"{label}: no requests (the file has no JSON lines)")
    return _request_table(arrivals, prompts, outputs, rows, label, rows)


def _json_record(line: str, label: str, row_number: int) -> dict:
    """One JSON object with the three fields a request needs."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{label}:{row_number}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise TraceError(f"{label}:{row_number}: not valid JSON (nested too deeply)") from None
    except ValueError:  # an integer literal longer than Python converts (4,300 digits)
        raise TraceError(f"{label}:{row_number}: not valid JSON (a number with too many digits)") from None
    if not isinstance(record, dict):
        raise TraceError(f"{label}:{row_number}: expected a JSON object, found {type(record).__name__}")
    for key in ("timestamp", "input_length", "output_length"):
        if key not in record:
            raise TraceError(f"{label}:{row_number}: missing field {key!r}")
    return record


def _timestamp_s(stamp: object, label: str, row_number: int) -> float:
    """A Mooncake timestamp [ms] in seconds."""
    if (isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp)
            or not 0 <= stamp <= MAX_TIMESTAMP_MS):
        raise TraceError(f"{label}:{row_number}: field 'timestamp': expected milliseconds from 0 to "
                         f"{MAX_TIMESTAMP_MS:,.0f} (about 32 years), found {quote(stamp)}")
    return stamp / 1000.0


def scale_requests(requests: pd.DataFrame, scale: float, rng: np.random.Generator, growth=None,
                   offset_s: float = 0.0) -> pd.DataFrame:
    """Replay a trace at ``scale`` times its rate by superposing time-shifted copies of it.

    Method: ``floor(scale)`` whole copies plus one copy thinned to the fractional part (each request
    kept with probability ``scale - floor(scale)``). Copy 0 is the original; every other copy is shifted
    cyclically by its own offset drawn uniformly over the trace's span, wrapping at the end, so each copy
    keeps the trace's burstiness and length mix while the copies' bursts do not line up. The result
    spans the same time as the input, with ``scale`` times the requests (exactly so for whole scales).

    With ``growth`` (a ``sim.workload.growth.GrowthCurve``; the trace's times + ``offset_s`` are scenario
    time) the scale varies in time: see ``_scale_grown``.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if growth is not None:
        return _scale_grown(requests, scale, rng, growth, offset_s)
    arrival = requests["arrival_s"].to_numpy()
    if len(arrival) == 0 or scale == 1:
        return requests.reset_index(drop=True)
    span = float(arrival.max() - arrival.min()) or 1.0
    start = float(arrival.min())
    whole, fraction = int(math.floor(scale)), scale - math.floor(scale)
    copies = whole + (1 if fraction > 0 else 0)
    offsets = np.concatenate(([0.0], rng.uniform(0.0, span, copies - 1)))
    n = len(arrival)
    shifted = np.mod((arrival - start)[None, :] + offsets[:, None], span)  # copies × n
    shifted += start
    shifted[0] = arrival  # the original, untouched
    shifted = shifted.ravel()
    if fraction > 0:  # thin the last copy
        kept = np.flatnonzero(rng.random(n) < fraction) + whole * n
        index = np.concatenate((np.arange(whole * n), kept))
        shifted = shifted[index]
    else:
        index = None
    order = np.argsort(shifted, kind="stable")
    flat = order if index is None else index[order]  # position in the copies × n layout
    picked = flat % n
    return pd.DataFrame({
        "arrival_s": shifted[order],
        "prompt_tokens": requests["prompt_tokens"].to_numpy()[picked],
        "output_tokens": requests["output_tokens"].to_numpy()[picked],
        "source_row": requests["source_row"].to_numpy()[picked],
        "copy": flat // n,
    }, copy=False)


def _tokens(value: object, label: str, row_number: int, column: str) -> int:
    """A JSON number that is a whole count of tokens from 1 to ``MAX_TOKENS``."""
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if not whole:
        raise TraceError(f"{label}:{row_number}: column {column!r}: expected a whole number of tokens, "
                         f"found {quote(value)}")
    if value < 1:
        raise TraceError(f"{label}:{row_number}: column {column!r}: expected at least 1, found {quote(value)}")
    if value > MAX_TOKENS:
        raise TraceError(f"{label}:{row_number}: column {column!r}: expected {TOKENS_ACCEPTED}, found {quote(value)}")
    return int(value)


def _request_table(arrivals, prompts, outputs, rows, label: str, lines) -> pd.DataFrame:
    """The request table; ``lines`` are the file lines of the rows, to name one that goes back in time."""
    arrival = np.asarray(arrivals, dtype=np.float64)
    back = np.flatnonzero(np.diff(arrival) < 0)
    if len(back):
        raise TraceError(f"{label}:{lines[int(back[0]) + 1]}: arrivals must not go back in time")
    return pd.DataFrame({
        "arrival_s": arrival,
        "prompt_tokens": np.asarray(prompts, dtype=np.int64),
        "output_tokens": np.asarray(outputs, dtype=np.int64),
        "source_row": np.asarray(rows, dtype=np.int64),
        "copy": np.zeros(len(arrival), dtype=np.int64),
    }, copy=False)


def _scale_grown(requests: pd.DataFrame, scale: float, rng: np.random.Generator, growth,
                 offset_s: float) -> pd.DataFrame:
    """Replay at ``scale × m(t)`` times the trace's rate, m the growth multiplier at the request's scenario time.

    The copies are superposed as in ``scale_requests`` (copy 0 the original, the others cyclically shifted by
    offsets drawn over the span), as many as ``ceil(scale × the largest m over the span)``; request r of copy c,
    at time t, is kept with probability ``clip(scale·m(t) − c, 0, 1)`` (one uniform draw each), so the expected
    rate at t is ``scale·m(t)`` times the trace's and the trace's own burstiness and length mix are kept. Requests
    are thinned, never moved: the replay stays on the trace's clock."""
    arrival = requests["arrival_s"].to_numpy()
    n = len(arrival)
    if n == 0:
        return requests.reset_index(drop=True)
    start = float(arrival.min())
    span = float(arrival.max() - start) or 1.0
    copies = max(1, int(math.ceil(scale * float(growth.peak(start + offset_s, start + span + offset_s)) - 1e-12)))
    offsets = np.concatenate(([0.0], rng.uniform(0.0, span, copies - 1)))
    shifted = np.mod((arrival - start)[None, :] + offsets[:, None], span) + start  # copies × n
    shifted[0] = arrival
    share = scale * growth.multiplier(shifted + offset_s) - np.arange(copies, dtype=np.float64)[:, None]
    flat = np.flatnonzero(rng.random((copies, n)) < share)  # position in the copies × n layout
    times = shifted.ravel()[flat]
    order = np.argsort(times, kind="stable")
    flat = flat[order]
    picked = flat % n
    return pd.DataFrame({
        "arrival_s": times[order],
        "prompt_tokens": requests["prompt_tokens"].to_numpy()[picked],
        "output_tokens": requests["output_tokens"].to_numpy()[picked],
        "source_row": requests["source_row"].to_numpy()[picked],
        "copy": flat // n,
    }, copy=False)
