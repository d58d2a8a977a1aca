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

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from sim.workload.errors import TraceError
from sim.workload.jobs import make_job_table

DEFAULT_ACCELERATOR_MAP = {
    "T4": "t4", "P100": "p100", "V100M16": "v100-16gb", "V100M32": "v100-32gb", "A10": "a10",
    "G1": "alibaba-g1", "G2": "alibaba-g2", "G3": "alibaba-g3",
}
COLUMNS = ("name", "num_gpu", "gpu_milli", "gpu_spec", "pod_phase", "creation_time", "deletion_time",
           "scheduled_time")
PHASES = ("Running", "Succeeded", "Failed", "Pending")


def read_alibaba_pods(path: Path, accelerator_map: dict[str, str] | None = None, limit: int | None = None,
                      time_scale: float = 1.0) -> pd.DataFrame:
    """Read an ``openb_pod_list_*.csv`` file into a job table (see the module docstring for the rules)."""
    mapping = {**DEFAULT_ACCELERATOR_MAP, **(accelerator_map or {})}
    cols: dict[str, list] = {k: [] for k in ("job_id", "arrival_s", "chips", "chip_share", "duration_s",
                                              "allowed_accelerators", "reject_reason", "note")}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}:1: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        for row_number, row in enumerate(reader, start=2):
            if limit is not None and row_number - 1 > limit:
                break
            _parse_row(row, row_number, path, mapping, time_scale, cols)
    cols["stack"] = "cuda"
    return make_job_table(cols)


def _parse_row(row, row_number, path, mapping, time_scale, cols) -> None:
    def number(column: str, kind=int, allow_empty: bool = False):
        text = (row.get(column) or "").strip()
        if text == "" and allow_empty:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise TraceError(
                f"{path}:{row_number}: column {column!r}: expected {kind.__name__}, found {text!r}") from None
        if value < 0:
            raise TraceError(f"{path}:{row_number}: column {column!r}: must not be negative, found {text!r}")
        return value

    phase = (row.get("pod_phase") or "").strip()
    if phase not in PHASES:
        raise TraceError(f"{path}:{row_number}: column 'pod_phase': found {phase!r}; accepted: {', '.join(PHASES)}")
    num_gpu, gpu_milli = number("num_gpu"), number("gpu_milli")
    if gpu_milli > 1000:
        raise TraceError(f"{path}:{row_number}: column 'gpu_milli': must be 0..1000, found {gpu_milli}")
    created = number("creation_time")
    deleted = number("deletion_time", allow_empty=True)
    scheduled = number("scheduled_time", allow_empty=True)
    allowed = []
    for name in filter(None, (row.get("gpu_spec") or "").split("|")):
        if name not in mapping:
            raise TraceError(f"{path}:{row_number}: column 'gpu_spec': unknown GPU model {name!r}; "
                             f"known: {', '.join(sorted(mapping))} (extend accelerator_map)")
        allowed.append(mapping[name])
    reason, duration = "", np.nan
    if num_gpu == 0:
        reason = "cpu-only"
    elif phase == "Pending" or scheduled is None:
        reason = "no-runtime-in-trace"
    elif phase == "Running":
        duration = np.inf
    else:
        if deleted is None or deleted < scheduled:
            raise TraceError(f"{path}:{row_number}: a {phase} pod needs deletion_time >= scheduled_time")
        duration = (deleted - scheduled) * time_scale
    cols["job_id"].append(row.get("name") or f"row{row_number}")
    cols["arrival_s"].append(created * time_scale)
    cols["chips"].append(max(num_gpu, 0))
    cols["chip_share"].append(gpu_milli / 1000.0 if num_gpu == 1 and 0 < gpu_milli < 1000 else 1.0)
    cols["duration_s"].append(duration)
    cols["allowed_accelerators"].append("|".join(dict.fromkeys(allowed)))
    cols["reject_reason"].append(reason)
    cols["note"].append(f"trace phase {phase}")
