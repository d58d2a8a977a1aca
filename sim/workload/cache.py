"""A per-process cache of parsed data files (traces, empirical distributions), so a file is parsed once per
process rather than once per reader per run.

What it keeps: the parsed table (a pandas DataFrame) or array of a file, keyed by the file's identity —
resolved path, device, inode, size [bytes] and modification time [ns] — and by the parse parameters (a
trace's ``limit``, accelerator map, time scale). The SHA-256 of the file's bytes is computed in the same
pass (the parse reads through a hashing wrapper, and the rest of the file is read when a ``limit`` stopped
the parse early), so the run's manifest does not open the file again (``file_sha256``).

Isolation between runs: a cached array is read-only (``setflags(write=False)``); a cached DataFrame is
handed out as a copy (``DataFrame.copy()``: new numpy buffers; object columns share their immutable
strings), so what one run does to its table never reaches the next run.

Bound: entries are evicted least recently used first once their total size exceeds ``max_bytes``
(``MAX_CACHE_BYTES`` unless ``set_max_bytes`` says otherwise; sizes are ``DataFrame.memory_usage(deep=True)``
or ``ndarray.nbytes``). A table larger than the bound is parsed and returned, not kept.

Simplification: a file is taken as unchanged while its path, inode, size and modification time are; a file
rewritten in place with the same size within the file system's timestamp granularity (a few ms on Linux) is
not noticed. Failures (a ``TraceError``, a missing file) are not cached: the next call reads the file again.
Each worker process of a sweep has its own cache (a forked worker starts with its parent's).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import pandas as pd

from sim.workload.files import display, open_data_file

MAX_CACHE_BYTES = 1024 ** 3  # 1 GiB: ~100x the packaged traces parsed (the largest table is ~6 MB in memory)
MAX_DIGESTS = 1024  # file digests remembered (64 characters each)
CHUNK_BYTES = 1 << 20  # read size when hashing the rest of a file


class _Hashing:
    """A binary reader that adds every byte read to a SHA-256 digest."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data

    def finish(self) -> str:
        """Read what the parse left unread, and return the digest of the whole file."""
        while self.read(CHUNK_BYTES):
            pass
        return self.digest.hexdigest()


class TraceCache:
    """The cache itself (one per process: ``CACHE``); counters ``parses``, ``hits``, ``opens`` are for tests
    and benchmarks."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.enabled = True
        self._entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._digests: OrderedDict[tuple, str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()  # Dask workers may run tasks on threads
        self.parses = self.hits = self.opens = 0

    def load(self, path: Path, params: tuple, parse: Callable[[BinaryIO, str], object]):
        """The parsed content of ``path`` for these parse parameters: from the cache, or parsed now by
        ``parse(handle, label)`` (the handle comes from ``open_data_file``, so its checks hold)."""
        identity = _identity(path)
        key = None if identity is None else (identity, params)
        if self.enabled and key is not None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return _hand_out(entry[0])
        with open_data_file(path) as handle:
            self.opens += 1
            reader = _Hashing(handle)
            value = parse(reader, display(path))
            digest = reader.finish()
            identity = _identity_of(path, os.fstat(handle.fileno()))
        value = _freeze(value)
        self.parses += 1
        if self.enabled:
            with self._lock:
                self._remember_digest(identity, digest)
                self._store((identity, params), value)
        return _hand_out(value)

    def sha256(self, path: Path) -> str:
        """SHA-256 of a file's bytes: the one computed when it was parsed, or computed now."""
        identity = _identity(path)
        if self.enabled and identity is not None:
            with self._lock:
                digest = self._digests.get(identity)
                if digest is not None:
                    self._digests.move_to_end(identity)
                    return digest
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            self.opens += 1
            for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
                digest.update(block)
            identity = _identity_of(path, os.fstat(handle.fileno()))
        if self.enabled:
            with self._lock:
                self._remember_digest(identity, digest.hexdigest())
        return digest.hexdigest()

    def clear(self) -> None:
        """Forget every entry and digest and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._digests.clear()
            self._bytes = 0
            self.parses = self.hits = self.opens = 0

    def stats(self) -> dict:
        """Counters and size: ``parses``, ``hits``, ``opens`` (files opened to parse or hash), ``entries``,
        ``bytes`` held."""
        return {"parses": self.parses, "hits": self.hits, "opens": self.opens, "entries": len(self._entries),
                "bytes": self._bytes}

    def _store(self, key: tuple, value) -> None:
        size = _size(value)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def _remember_digest(self, identity: tuple, digest: str) -> None:
        self._digests[identity] = digest
        self._digests.move_to_end(identity)
        while len(self._digests) > MAX_DIGESTS:
            self._digests.popitem(last=False)


def _identity(path: Path) -> tuple | None:
    """``(resolved path, device, inode, size, mtime_ns)`` of a regular file; ``None`` when it cannot be
    looked up or is not a regular file (the caller then opens it, and ``open_data_file`` says why not)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not os.path.isfile(path):
        return None
    return _identity_of(path, info)


def _identity_of(path: Path, info: os.stat_result) -> tuple:
    return (os.path.realpath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _freeze(value):
    """Make a parsed value safe to keep: arrays read-only (a frame's own buffers too, as far as pandas lets)."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    return value


def _hand_out(value):
    """What a caller receives: a read-only array as is, a DataFrame as a copy of its own."""
    if isinstance(value, pd.DataFrame):
        return value.copy()
    return value


def _size(value) -> int:
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=True, deep=True).sum())
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    raise TypeError(f"the trace cache keeps DataFrames and arrays, got {type(value).__name__}")


CACHE = TraceCache()


def load(path: Path, params: tuple, parse: Callable[[BinaryIO, str], object]):
    """``CACHE.load``: the parsed content of ``path`` (see ``TraceCache.load``)."""
    return CACHE.load(path, params, parse)


def file_sha256(path) -> str:
    """``CACHE.sha256``: the SHA-256 of a file's bytes, computed at most once while the file is unchanged."""
    return CACHE.sha256(Path(path))


def file_identity(path) -> tuple | None:
    """``(resolved path, device, inode, size, mtime_ns)`` of a regular file (``None`` if there is none): the
    key the cache uses, for caches of values derived from a file elsewhere."""
    return _identity(Path(path))


def set_max_bytes(limit: int) -> None:
    """Bound the cache at ``limit`` bytes (entries over it are evicted, least recently used first)."""
    with CACHE._lock:
        CACHE.max_bytes = limit
        while CACHE._bytes > limit and CACHE._entries:
            _, (_, dropped) = CACHE._entries.popitem(last=False)
            CACHE._bytes -= dropped


def set_enabled(enabled: bool) -> None:
    """Turn the cache on or off (off: every load parses its file; for benchmarks and tests); forgets it all."""
    CACHE.clear()
    CACHE.enabled = enabled


def stats() -> dict:
    return CACHE.stats()


def clear() -> None:
    CACHE.clear()
