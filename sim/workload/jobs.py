"""The job table every workload source produces and the engine consumes.

One row per training job, as a pandas DataFrame with these columns (``JOB_COLUMNS``):

==========================  =======  ==========================================================
column                      dtype    meaning
==========================  =======  ==========================================================
job_id                      str      unique name (trace pod name or ``gen-000042``)
arrival_s                   float    submission time, seconds since the scenario start
chips                       int      gang size: chips held together for the whole run
chip_share                  float    fraction of one chip a shared single-chip job uses (1 = whole)
model                       str      catalog model id ('' = unknown; time-based jobs only)
stack                       str      software stack the job is written for
samples                     float    work in samples (tokens, images); NaN for time-based jobs
duration_s                  float    measured run time; NaN for work-based jobs; inf = never ends
reference_accelerator       str      where duration_s was measured ('' = same on every chip)
allowed_accelerators        str      '|'-separated accelerator ids the job may use ('' = any)
reject_reason               str      set by a reader for rows that cannot be simulated ('' = none)
note                        str      provenance (e.g. the pod's phase in the trace)
layout                      str      parallel layout ('' = searched; ``sim.training.layout`` encoding)
global_batch                float    sequences per step (NaN = one per chip; transformer models)
seq_len                     float    tokens per sequence (NaN = the model's ``microbatch_samples``)
==========================  =======  ==========================================================

Rows are sorted by (arrival_s, input order); the engine relies on it. Nothing here knows the engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

JOB_COLUMNS = {
    "job_id": object,
    "arrival_s": np.float64,
    "chips": np.int64,
    "chip_share": np.float64,
    "model": object,
    "stack": object,
    "samples": np.float64,
    "duration_s": np.float64,
    "reference_accelerator": object,
    "allowed_accelerators": object,
    "reject_reason": object,
    "note": object,
    "layout": object,
    "global_batch": np.float64,
    "seq_len": np.float64,
}


def layout_text(tp: int, pp: int, dp: int, cp: int, ep: int, zero: int, micro_batch: int, recompute: str,
                vp: int = 1) -> str:
    """The ``layout`` column's encoding of a given parallel layout (``sim.training.layout`` decodes it)."""
    return f"tp={tp},pp={pp},dp={dp},cp={cp},ep={ep},zero={zero},mb={micro_batch},recompute={recompute},vp={vp}"


def busy_chip_equivalents(chips: np.ndarray, chip_share: np.ndarray) -> np.ndarray:
    """Chips a job keeps busy: its gang, or its share of one chip for a shared single-chip job."""
    return np.where((chips == 1) & (chip_share < 1.0), chip_share, chips).astype(np.float64)


def make_job_table(columns: dict[str, object]) -> pd.DataFrame:
    """Build a job table from column arrays, filling optional columns and sorting by arrival (stable)."""
    n = len(columns["arrival_s"])
    defaults = {
        "chip_share": 1.0, "model": "", "stack": "portable", "samples": np.nan, "duration_s": np.nan,
        "reference_accelerator": "", "allowed_accelerators": "", "reject_reason": "", "note": "",
        "layout": "", "global_batch": np.nan, "seq_len": np.nan,
    }
    data = {}
    for name, dtype in JOB_COLUMNS.items():
        values = columns.get(name, defaults.get(name))
        if values is None:
            raise KeyError(f"job table needs column {name!r}")
        if np.isscalar(values):
            values = [values] * n
        data[name] = np.asarray(values, dtype=dtype)
    table = pd.DataFrame(data)
    order = np.argsort(table["arrival_s"].to_numpy(), kind="stable")
    return table.iloc[order].reset_index(drop=True)
