"""A sweep's folder: its table (``sweep.parquet``) and its manifest (``sweep.json``).

As (point, replica) rows finish, the whole table is written to a temporary file in the folder and moved
over ``sweep.parquet`` with ``os.replace``, so the file on disk is always a whole table (of the rows
finished so far), whenever the sweep is interrupted. Writes are spaced so they take at most about a tenth of
the time (``sim.sweep.execute.WRITE_SPACING``); a killed process loses the rows finished since the last
write, Ctrl-C none. The rows are sorted by (point, replica) and built
the same way from whatever rows exist, so the table does not depend on the number of workers or the
order in which rows finished. The manifest records what the sweep is (scenario hash, design, points,
seeds); ``--resume`` refuses a folder whose manifest differs, saying what differs.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from sim.sweep.design import Design, SweepError

TABLE = "sweep.parquet"
MANIFEST = "sweep.json"
SCENARIO = "scenario.json"  # the scenario swept (--set applied, defaults filled; before the points' overrides)
KEY_COLUMNS = ("point", "replica", "seed")
ERROR = "error"


def jsonable(value):
    """A parameter value as JSON: dates as ISO text, everything else as is."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def param_kind(values: list) -> str:
    """The column type of a parameter from all its values in the design: bool, int, float or str."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


def _param_value(value, kind: str):
    if kind == "str":
        return str(jsonable(value))
    return {"bool": bool, "int": int, "float": float}[kind](value)


def build_frame(design: Design, seeds: list[list[int]], records: dict[tuple[int, int], dict]) -> pd.DataFrame:
    """The tidy table: one row per finished (point, replica), sorted; columns ``point, replica, seed``, the
    parameters, ``error`` (``None`` for a run that finished) and every figure (float, ``NaN`` where a run
    has no such figure)."""
    kinds = {key: param_kind([point[key] for point in design.points]) for key in design.parameters}
    figures = sorted(set().union(*(record.get("figures", {}) for record in records.values())))
    rows = []
    for point, replica in sorted(records):
        record = records[(point, replica)]
        row = {"point": point, "replica": replica, "seed": seeds[point][replica]}
        row.update({key: _param_value(design.points[point][key], kinds[key]) for key in design.parameters})
        row[ERROR] = record.get("error")
        values = record.get("figures", {})
        row.update({name: values.get(name, math.nan) for name in figures})
        rows.append(row)
    columns = [*KEY_COLUMNS, *design.parameters, ERROR, *figures]
    frame = pd.DataFrame(rows, columns=columns)
    types = {"point": "int64", "replica": "int64", "seed": "int64", ERROR: "object"}
    types.update({key: {"bool": "bool", "int": "int64", "float": "float64", "str": "object"}[kinds[key]]
                  for key in design.parameters})
    types.update({name: "float64" for name in figures})
    return frame.astype(types)


def write_table(folder: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` to ``folder/sweep.parquet`` atomically (a temporary file, then ``os.replace``)."""
    write_atomic(folder / TABLE, lambda path: frame.to_parquet(path, index=False, engine="pyarrow"))


def write_manifest(folder: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomic(folder / MANIFEST, lambda path: path.write_text(text, encoding="utf-8"))


def write_scenario(folder: Path, scenario) -> None:
    """Write the scenario swept as ``folder/scenario.json`` (as a run folder's ``scenario.json``)."""
    from sim.results.results import json_text

    text = json_text(scenario.model_dump(mode="json"))
    write_atomic(folder / SCENARIO, lambda path: path.write_text(text, encoding="utf-8"))


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(target: Path, write) -> None:
    """Have ``write(path)`` write a temporary file beside ``target``, then move it over ``target``."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    try:
        write(Path(name))
        os.chmod(name, 0o666 & ~_UMASK)  # as an ordinary new file (mkstemp makes it private)
        os.replace(name, target)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def read_records(folder: Path, design: Design) -> dict[tuple[int, int], dict]:
    """The rows of an earlier run of the same sweep, as records (``{"error": ...}`` or ``{"figures": ...}``)."""
    path = folder / TABLE
    if not path.exists():
        return {}
    try:
        frame = pd.read_parquet(io.BytesIO(path.read_bytes()), engine="pyarrow")  # one read of one version
    except (OSError, ValueError) as exc:
        raise SweepError(f"--resume {folder}: cannot read {TABLE}: {exc}") from None
    fixed = {*KEY_COLUMNS, *design.parameters, ERROR}
    if not fixed <= set(frame.columns):
        raise SweepError(f"--resume {folder}: {TABLE} is not this sweep's table (missing columns "
                         f"{', '.join(sorted(fixed - set(frame.columns)))})")
    figures = [c for c in frame.columns if c not in fixed]
    records = {}
    for row in frame.to_dict("records"):
        error = row[ERROR]
        key = (int(row["point"]), int(row["replica"]))
        if isinstance(error, str):
            records[key] = {"error": error}
        else:
            records[key] = {"figures": {name: float(row[name]) for name in figures}}
    return records


def sweep_manifest(scenario_name: str, scenario_sha256: str, design: Design, replicas: int | None,
                   seeds: list[list[int]], version: str) -> dict:
    manifest = {
        "kind": "dcsim-sweep",
        "scenario": scenario_name,
        "scenario_sha256": scenario_sha256,
        "design": design.kind,
        "parameters": list(design.parameters),
        "points": [{key: jsonable(value) for key, value in point.items()} for point in design.points],
        "lhs_seed": design.lhs_seed,
        "replicas": replicas,
        "seeds": seeds,
        "dcsim": version,
    }
    return json.loads(json.dumps(manifest, default=str))  # as it reads back from the file, to compare


# what must match for --resume, and how a difference is explained
_SAME_SWEEP = {
    "scenario_sha256": "the scenario differs (its file or --set overrides changed)",
    "design": "the design differs",
    "parameters": "the swept parameters differ",
    "points": "the points differ (other --grid values)",
    "replicas": "the number of replicas differs",
    "seeds": "the seeds differ",
}


def check_resumable(folder: Path, manifest: dict) -> None:
    """Raise ``SweepError`` unless ``folder`` holds the manifest of this same sweep."""
    path = folder / MANIFEST
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"--resume {folder}: no sweep to resume there (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise SweepError(f"--resume {folder}: cannot read {MANIFEST}: {exc}") from None
    if not isinstance(earlier, dict) or earlier.get("kind") != "dcsim-sweep":
        raise SweepError(f"--resume {folder}: {MANIFEST} is not a dcsim sweep manifest")
    for key, why in _SAME_SWEEP.items():
        if earlier.get(key) != manifest[key]:
            shown = "" if key in ("points", "seeds") else f": {earlier.get(key)!r} there, {manifest[key]!r} now"
            raise SweepError(f"--resume {folder}: that folder holds a different sweep; {why}{shown}")
