"""Reader for the Alibaba heterogeneous GPU cluster trace v2023 (``alibaba-gpu-2023``, FGD, ATC'23).

The trace lists 8,152 Kubernetes pods over ~149 days on T4, P100, V100 (16/32 GB), A10 and the
undisclosed types G2 and G3 (``sim/workload/traces/alibaba-gpu-2023/SOURCE.md``). How each pod is
replayed — every pod ends up counted somewhere:

* **Succeeded / Failed** pods hold their GPUs for ``deletion_time - scheduled_time`` seconds of wall
  time. The trace does not say which GPU type ran them, so the duration is kept on every type
  (``reference_accelerator = ''``): these are mostly services and notebooks bound by time, not work.
  Failed pods are replayed like finished ones; their phase is kept in ``note``.
* **Running** pods were still running when the trace was cut; their end is unknown, so they never end
  here (``duration_s = inf``) and are reported as running at the end of the simulation.
* **Pending** pods were never scheduled in the source cluster; with no runtime to replay they are
  rejected with reason ``no-runtime-in-trace``.
* **CPU-only** pods (``num_gpu = 0``) are rejected with reason ``cpu-only``: only accelerators are modelled.
* **Shared GPUs**: a pod with ``num_gpu = 1`` and ``gpu_milli < 1000`` uses that fraction of one GPU;
  the engine packs such pods onto shared chips (``chip_share``).
* **Undisclosed types** G1/G2/G3 map to accelerator ids ``alibaba-g1/-g2/-g3``; a scenario that
  replays the trace defines them (see ``scenarios/alibaba-gpu-replay.yaml``).
* ``gpu_spec`` (the ``gpuspec33`` variant) becomes ``allowed_accelerators``.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from sim.workload.errors import TraceError
from sim.workload.files import MAX_TRACE_TIME_S, csv_header, csv_records, display, open_data_file, quote
from sim.workload.jobs import make_job_table

DEFAULT_ACCELERATOR_MAP = {
    "T4": "t4", "P100": "p100", "V100M16": "v100-16gb", "V100M32": "v100-32gb", "A10": "a10",
    "G1": "alibaba-g1", "G2": "alibaba-g2", "G3": "alibaba-g3",
}
COLUMNS = ("name", "num_gpu", "gpu_milli", "gpu_spec", "pod_phase", "creation_time", "deletion_time",
           "scheduled_time")
PHASES = ("Running", "Succeeded", "Failed", "Pending")
MAX_GPUS_PER_POD = 100_000
TIME_COLUMNS = ("creation_time", "deletion_time", "scheduled_time")
# column -> (largest accepted value, its unit, why that bound); gpu_milli (0..1000) is checked on its own
BOUNDS = {
    "num_gpu": (MAX_GPUS_PER_POD, "GPUs", "more than any cluster"),
    **{c: (int(MAX_TRACE_TIME_S), "s", "about 32 years") for c in TIME_COLUMNS},
}


def read_alibaba_pods(path: Path, accelerator_map: dict[str, str] | None = None, limit: int | None = None,
                      time_scale: float = 1.0) -> pd.DataFrame:
    """Read an ``openb_pod_list_*.csv`` file (its first ``limit`` pods if given) into a job table (see the
    module docstring for the rules). Counts and times are whole numbers within ``BOUNDS``; times, once
    multiplied by ``time_scale``, stay within ``MAX_TRACE_TIME_S``."""
    with open_data_file(path) as handle:
        return parse_alibaba_pods(handle, display(path), accelerator_map, limit, time_scale)


def parse_alibaba_pods(handle: BinaryIO, label: str, accelerator_map: dict[str, str] | None = None,
                       limit: int | None = None, time_scale: float = 1.0) -> pd.DataFrame:
    """``read_alibaba_pods`` of an open file (``label`` names it in errors)."""
    mapping = {**DEFAULT_ACCELERATOR_MAP, **(accelerator_map or {})}
    cols: dict[str, list] = {k: [] for k in ("job_id", "arrival_s", "chips", "chip_share", "duration_s",
                                              "allowed_accelerators", "reject_reason", "note")}
    records = csv_records(handle, label)
    header = csv_header(records, label, COLUMNS)
    for line, fields in records:
        if limit is not None and len(cols["job_id"]) >= limit:
            break
        header.check_width(line, fields)
        row = {name: fields[at] for name, at in header.positions.items()}
        _parse_row(row, f"{label}:{line}", line, mapping, time_scale, cols)
    if not cols["job_id"]:
        raise TraceError(f"{label}: no pods (the file has a header and no rows)")
    cols["stack"] = "cuda"
    return make_job_table(cols)


def _number(row: dict, where: str, column: str, allow_empty: bool = False) -> int | None:
    """A whole number from 0 to the column's bound if it has one (``BOUNDS``); ``None`` for an empty optional one."""
    text = row[column].strip()
    if text == "" and allow_empty:
        return None
    try:
        value = int(text)
    except ValueError:
        raise TraceError(f"{where}: column {column!r}: expected int, found {quote(text)}") from None
    if value < 0:
        raise TraceError(f"{where}: column {column!r}: must not be negative, found {quote(text)}")
    if column in BOUNDS and value > BOUNDS[column][0]:
        largest, unit, why = BOUNDS[column]
        raise TraceError(f"{where}: column {column!r}: expected at most {largest:,} {unit} ({why}), "
                         f"found {quote(text)}")
    return value


def _scaled(seconds: int, time_scale: float, where: str, column: str) -> float:
    """A trace time [s] multiplied by the scenario's ``time_scale``, which must keep it within range."""
    scaled = seconds * time_scale
    if not scaled <= MAX_TRACE_TIME_S:
        raise TraceError(f"{where}: column {column!r}: {seconds} s × time_scale {time_scale:g} = {scaled:g} s; "
                         f"accepted: at most {MAX_TRACE_TIME_S:,.0f} s (about 32 years)")
    return scaled


def _parse_row(row, where, row_number, mapping, time_scale, cols) -> None:
    phase = row["pod_phase"].strip()
    if phase not in PHASES:
        raise TraceError(f"{where}: column 'pod_phase': found {quote(phase)}; accepted: {', '.join(PHASES)}")
    num_gpu, gpu_milli = _number(row, where, "num_gpu"), _number(row, where, "gpu_milli")
    if gpu_milli > 1000:
        raise TraceError(f"{where}: column 'gpu_milli': must be 0..1000, found {gpu_milli}")
    created = _number(row, where, "creation_time")
    deleted = _number(row, where, "deletion_time", allow_empty=True)
    scheduled = _number(row, where, "scheduled_time", allow_empty=True)
    allowed = []
    for name in filter(None, row["gpu_spec"].split("|")):
        if name not in mapping:
            raise TraceError(f"{where}: column 'gpu_spec': unknown GPU model {quote(name)}; "
                             f"known: {', '.join(sorted(mapping))} (extend accelerator_map)")
        allowed.append(mapping[name])
    arrival = _scaled(created, time_scale, where, "creation_time")
    reason, duration = "", np.nan
    if num_gpu == 0:
        reason = "cpu-only"
    elif phase == "Pending" or scheduled is None:
        reason = "no-runtime-in-trace"
    elif phase == "Running":
        duration = np.inf
    else:
        if deleted is None or deleted < scheduled:
            raise TraceError(f"{where}: a {phase} pod needs deletion_time >= scheduled_time")
        duration = _scaled(deleted - scheduled, time_scale, where, "deletion_time")
    cols["job_id"].append(row["name"] or f"row{row_number}")
    cols["arrival_s"].append(arrival)
    cols["chips"].append(num_gpu)
    cols["chip_share"].append(gpu_milli / 1000.0 if num_gpu == 1 and 0 < gpu_milli < 1000 else 1.0)
    cols["duration_s"].append(duration)
    cols["allowed_accelerators"].append("|".join(dict.fromkeys(allowed)))
    cols["reject_reason"].append(reason)
    cols["note"].append(f"trace phase {phase}")
