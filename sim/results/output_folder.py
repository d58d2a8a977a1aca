"""Output folders: where a run's files go, how they get there whole, and how a reader knows they are whole.

* Default folder: ``outputs/<name>/`` for a plain run, ``outputs/<name>--<slug of the overrides>/`` for a
  run with overrides, so a what-if never overwrites the baseline it is compared with.
* Writing: every file is written into a temporary sibling folder first, then moved into the final folder
  (``os.replace``, same file system). dcsim's own files left by an earlier run are deleted; any other file
  in the folder is left alone. The completion marker ``run-complete.json`` is removed before the first file
  moves and written after the last, so a folder holds one whole run exactly when the marker is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

COMPLETE_MARKER = "run-complete.json"
PLOT_FILES = ("utilization.png", "queue.png", "jct.png", "power.png", "power_by_type.png", "throttling.png",
              "latency.png", "served.png", "shared_pool.png", "cost.png", "capacity.png", "slo.png", "pue.png",
              "failures.png", "budgets.png")
DATA_FILES = ("summary.json", "manifest.json", "scenario.json", "jobs.csv", "timeseries.csv", "monthly.csv",
              "requests.csv", "procurement.csv", "burst.csv", "capping.csv")
REPORT_FILE = "report.html"
DCSIM_FILES = DATA_FILES + PLOT_FILES + (REPORT_FILE, COMPLETE_MARKER)  # the only files dcsim ever deletes

MAX_FOLDER_NAME = 100  # characters; far below every file system's 255-byte limit
_HASH_CHARS = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_POSITION = re.compile(r"\[(\d+)\]")


class OutputError(ValueError):
    """An output folder that cannot be used (one line: the path and what is wrong)."""


def default_folder(name: str, overrides: Iterable[str] = (), root: str | Path = "outputs") -> Path:
    """``outputs/<name>`` for a plain run; ``outputs/<name>--<slug>`` for one with ``--set`` overrides.

    The slug is the override texts in the order given, joined by ``+``, with every character outside
    ``A-Z a-z 0-9 . _ = -`` replaced by ``_`` (``fleet[0].count`` is written ``fleet.0.count``, the same
    field). When that loses information, or the folder name would pass ``MAX_FOLDER_NAME`` characters,
    the slug is cut and ends with ``~`` and 8 hex digits of the SHA-256 of the override texts, so distinct
    overrides never share a folder.
    """
    texts = [text.strip() for text in overrides]
    if not texts:
        return Path(root) / name
    readable = [_POSITION.sub(r".\1", text) for text in texts]
    slug = "+".join(_UNSAFE.sub("_", text) for text in readable).strip("._-") or "_"
    folder = f"{name}--{slug}"
    if slug != "+".join(readable) or len(folder) > MAX_FOLDER_NAME:
        digest = hashlib.sha256("\n".join(readable).encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
        keep = max(0, MAX_FOLDER_NAME - len(name) - len("--~") - _HASH_CHARS)
        folder = f"{name}--{slug[:keep].rstrip('._-')}~{digest}"
    return Path(root) / folder


def check_writable_folder(path: str | Path, option: str = "--out") -> Path:
    """Raise ``OutputError`` unless ``path`` can become an output folder: not empty text, not a file, not
    under a file, and writable (when it exists) or creatable in its nearest existing parent. Creates nothing."""
    if str(path).strip() == "":
        raise OutputError(f"{option}: empty path; give a folder, e.g. {option} outputs/my-run")
    folder = Path(path)
    absolute = Path(os.path.abspath(folder))
    if absolute.exists() and not absolute.is_dir():
        raise OutputError(f"{option} {folder}: is a file, not a folder")
    needed = absolute
    while not needed.exists():
        needed = needed.parent
    if not needed.is_dir():
        raise OutputError(f"{option} {folder}: {needed} is a file, not a folder")
    problem = _cannot_write_in(needed)
    if problem:
        raise OutputError(f"{option} {folder}: cannot write in {needed} ({problem})")
    return folder


def _cannot_write_in(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (tried for real: permissions, read-only mounts), or None."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def write_run(folder: str | Path, write_files: Callable[[Path], None], scenario_name: str) -> Path:
    """Have ``write_files(staging)`` write a run's files into a temporary folder (a sibling of ``folder``, or
    inside it when its parent is read-only), then move them into ``folder`` (created if needed) and mark it
    complete. Raises ``OutputError`` on a file-system failure; the temporary folder is removed whatever
    happens, Ctrl-C included."""
    folder = Path(folder)
    label = str(folder)
    check_writable_folder(folder, option="output folder")
    final = Path(os.path.abspath(folder))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_interrupted(final)
        staging = _staging_folder(final)
    except OSError as exc:
        raise OutputError(f"output folder {label}: {exc.strerror or exc}") from None
    try:
        write_files(staging)
        written = sorted(p.name for p in staging.iterdir())
        _write_json(staging / COMPLETE_MARKER, {"scenario": scenario_name, "files": written})
        final.mkdir(exist_ok=True)
        _replace_run(staging, final, written)
    except OSError as exc:
        raise OutputError(f"output folder {label}: cannot write {exc.filename or ''}: "
                          f"{exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _remove_interrupted(final: Path) -> None:
    """Delete the staging folders that interrupted runs into ``final`` left behind (beside it or inside it)."""
    patterns = [(final.parent, f".{final.name or 'out'}.dcsim-partial-*"), (final, ".dcsim-partial-*")]
    for folder, pattern in patterns:
        if folder.is_dir():
            for leftover in folder.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)


def _staging_folder(final: Path) -> Path:
    prefix = f".{final.name or 'out'}.dcsim-partial-"
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    except OSError:
        if not final.is_dir():
            raise
        return Path(tempfile.mkdtemp(prefix=".dcsim-partial-", dir=final))


def _replace_run(staging: Path, final: Path, written: list[str]) -> None:
    """Unmark ``final``, delete dcsim's earlier files there (its known names and those the earlier marker
    lists), move the new ones in, mark it complete last."""
    earlier = _listed_files(final)
    (final / COMPLETE_MARKER).unlink(missing_ok=True)
    for name in sorted(set(DCSIM_FILES) | earlier):
        (final / name).unlink(missing_ok=True)
    for name in written:
        os.replace(staging / name, final / name)
    os.replace(staging / COMPLETE_MARKER, final / COMPLETE_MARKER)


def _listed_files(folder: Path) -> set[str]:
    """The plain file names a folder's completion marker lists (nothing when it has no valid marker)."""
    try:
        listed = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(listed, list):
        return set()
    return {name for name in listed
            if isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")}


def is_complete(folder: str | Path) -> bool:
    """Whether ``folder`` holds one whole run: its completion marker and every file the marker lists."""
    listed = _listed_files(Path(folder))
    return bool(listed) and all((Path(folder) / name).is_file() for name in listed)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
