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
``mooncake`` (FAST'25 JSON lines: ``timestamp`` in ms, ``input_length``, ``output_length``). A malformed
row raises ``TraceError`` naming the file, the row and the column. Nothing here knows the engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from sim.workload.errors import TraceError

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def read_azure_llm(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read an Azure LLM inference trace CSV (``AzureLLMInferenceTrace_{code,conv}.csv``).

    Timestamps carry 7 fractional digits (100 ns); they are parsed to the nanosecond, vectorised. A row
    that does not parse is reported with its file and row (1-based line, header = line 1).
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=limit)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in AZURE_COLUMNS if c not in table.columns]
    if missing:
        raise TraceError(f"{path}:1: missing column(s) {', '.join(missing)}; expected {', '.join(AZURE_COLUMNS)}")
    stamps = pd.to_datetime(table["TIMESTAMP"].str.strip(), format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise TraceError(f"{path}:{row + 2}: column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', "
                         f"found {table['TIMESTAMP'].iloc[row]!r}")
    prompts = _token_column(table["ContextTokens"], path, "ContextTokens")
    outputs = _token_column(table["GeneratedTokens"], path, "GeneratedTokens")
    nanoseconds = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
    arrivals = (nanoseconds - nanoseconds[0]) / 1e9 if len(nanoseconds) else np.zeros(0)
    rows = np.arange(1, len(table) + 1)
    return _request_table(arrivals, prompts, outputs, rows, path)


def _token_column(column: pd.Series, path: Path, name: str) -> np.ndarray:
    """Whole token counts >= 1, vectorised; the first offending row is named (header = line 1)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
    if len(bad):
        row = int(bad[0])
        raise TraceError(f"{path}:{row + 2}: column {name!r}: expected a whole number of tokens, "
                         f"found {column.iloc[row]!r}")
    small = np.flatnonzero(values < 1)
    if len(small):
        row = int(small[0])
        raise TraceError(f"{path}:{row + 2}: column {name!r}: expected at least 1, found {int(values[row])}")
    return values.astype(np.int64)


def read_mooncake(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read a Mooncake trace (JSON lines with ``timestamp`` [ms], ``input_length``, ``output_length``)."""
    arrivals, prompts, outputs, rows = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for row_number, line in enumerate(handle, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{row_number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise TraceError(f"{path}:{row_number}: expected a JSON object, found {type(record).__name__}")
            for key in ("timestamp", "input_length", "output_length"):
                if key not in record:
                    raise TraceError(f"{path}:{row_number}: missing field {key!r}")
            stamp = record["timestamp"]
            if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp) or stamp < 0:
                raise TraceError(f"{path}:{row_number}: field 'timestamp': expected milliseconds >= 0, found {stamp!r}")
            arrivals.append(stamp / 1000.0)
            prompts.append(_tokens(record["input_length"], path, row_number, "input_length", minimum=1))
            outputs.append(_tokens(record["output_length"], path, row_number, "output_length", minimum=1))
            rows.append(row_number)
    return _request_table(arrivals, prompts, outputs, rows, path)


def scale_requests(requests: pd.DataFrame, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """Replay a trace at ``scale`` times its rate by superposing time-shifted copies of it.

    Method: ``floor(scale)`` whole copies plus one copy thinned to the fractional part (each request
    kept with probability ``scale - floor(scale)``). Copy 0 is the original; every other copy is shifted
    cyclically by its own offset drawn uniformly over the trace's span, wrapping at the end, so each copy
    keeps the trace's burstiness and length mix while the copies' bursts do not line up. The result
    spans the same time as the input, with ``scale`` times the requests (exactly so for whole scales).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
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


def _tokens(value: object, path: Path, row_number: int, column: str, minimum: int) -> int:
    try:
        tokens = int(value)
        if isinstance(value, float) and tokens != value:
            raise ValueError
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{row_number}: column {column!r}: expected a whole number of tokens, "
                         f"found {value!r}") from None
    if tokens < minimum:
        raise TraceError(f"{path}:{row_number}: column {column!r}: expected at least {minimum}, found {tokens}")
    return tokens


def _request_table(arrivals, prompts, outputs, rows, path) -> pd.DataFrame:
    arrival = np.asarray(arrivals, dtype=np.float64)
    if len(arrival) > 1 and np.any(np.diff(arrival) < 0):
        first_bad = int(np.flatnonzero(np.diff(arrival) < 0)[0]) + 1
        raise TraceError(f"{path}: row {rows[first_bad]}: arrivals must not go back in time")
    return pd.DataFrame({
        "arrival_s": arrival,
        "prompt_tokens": np.asarray(prompts, dtype=np.int64),
        "output_tokens": np.asarray(outputs, dtype=np.int64),
        "source_row": np.asarray(rows, dtype=np.int64),
        "copy": np.zeros(len(arrival), dtype=np.int64),
    }, copy=False)
