"""Opening trace and distribution files safely, reading them as text, and quoting them in errors.

A data file must be a regular, non-empty file of at most ``MAX_DATA_FILE_BYTES``. That is checked with
``fstat`` on a descriptor opened without blocking, before anything is read: a FIFO, a device or a
directory is refused at once (no hang, no endless read), and a huge file is not read at all. Its text
is UTF-8 (a leading byte-order mark is dropped), read one line at a time, each line at most
``MAX_LINE_BYTES`` long. Every problem is a ``TraceError`` naming the file, and the line and column
when the problem is inside it. Errors quote data through ``quote``: a short prefix, escaped.
"""

from __future__ import annotations

import codecs
import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from sim.workload.errors import MissingDataFile, TraceError

MAX_DATA_FILE_BYTES = 2 * 1024 ** 3  # 2 GiB: ~700x the largest packaged trace (3 MB); more is likely a mistake
MAX_LINE_BYTES = 1024 ** 2  # 1 MiB: a trace row is < 3 kB (Mooncake rows with their hash ids)
MAX_TRACE_TIME_S = 1e9  # about 32 years: longer than any simulated horizon; float64 seconds keep µs resolution
QUOTED_CHARS = 60  # how much of a bad value an error quotes
SHOWN_PATH_CHARS = 120  # how much of a very long path an error shows

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def quote(value: object, limit: int = QUOTED_CHARS) -> str:
    """``repr`` of a value from a data file, cut to its first ``limit`` characters (``…`` marks the cut).

    Escaping keeps control characters and line breaks of the data out of the message."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def display(path: Path | str) -> str:
    """A path as errors show it: as is, or quoted (escaped) when it holds control characters, and cut
    to a prefix with its length when it is very long."""
    text = str(path)
    if len(text) <= 2 * SHOWN_PATH_CHARS:
        return text if text.isprintable() else quote(text, 2 * SHOWN_PATH_CHARS)
    return f"{quote(text, SHOWN_PATH_CHARS)} ({len(text):,} characters)"


def path_exists(path: Path) -> bool:
    """Whether anything is at ``path``; a path the system cannot look up (too long, NUL) is a ``TraceError``."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise TraceError(f"{display(path)}: cannot look up: {exc.strerror}") from None
    except ValueError:
        raise TraceError(f"{display(path)}: cannot look up: the path contains a NUL character") from None
    return True


def open_data_file(path: Path) -> BinaryIO:
    """Open a data file for binary reading, once it is known to be a regular, non-empty file within the limit."""
    label = display(path)
    try:
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; fstat then refuses it
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise MissingDataFile(f"{label}: no such file") from None
    except OSError as exc:
        raise TraceError(f"{label}: cannot open: {exc.strerror}") from None
    except ValueError:
        raise TraceError(f"{label}: cannot open: the path contains a NUL character") from None
    try:
        _check_regular_file(os.fstat(descriptor), label)
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _check_regular_file(info: os.stat_result, label: str) -> None:
    for is_kind, kind in _KINDS:
        if is_kind(info.st_mode):
            raise TraceError(f"{label}: is {kind}, not a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise TraceError(f"{label}: not a regular file")
    if info.st_size == 0:
        raise TraceError(f"{label}: empty file (0 bytes)")
    if info.st_size > MAX_DATA_FILE_BYTES:
        raise TraceError(f"{label}: {info.st_size:,} bytes; accepted: at most {MAX_DATA_FILE_BYTES:,} bytes "
                         f"({MAX_DATA_FILE_BYTES / 1024 ** 3:g} GiB; take the rows you need into a smaller file)")


def text_lines(handle: BinaryIO, label: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line (1-based, line end kept), decoded as strict UTF-8.

    Lines end in LF, CRLF or a bare CR (as Python's universal newlines). A byte-order mark opening the
    file is dropped. A line longer than ``MAX_LINE_BYTES``, a byte that is not UTF-8 or a NUL character
    (binary data) is a ``TraceError`` at that line and character."""
    for number, raw in enumerate(_raw_lines(handle, label), start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        yield number, _decode(raw, label, number)


def _raw_lines(handle: BinaryIO, label: str, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
    """The file's lines as bytes, read a chunk at a time so no line longer than ``MAX_LINE_BYTES`` is held."""
    pending, number = b"", 0
    while True:
        chunk = handle.read(chunk_bytes)
        lines = (pending + chunk).splitlines(keepends=True)  # bytes split on LF, CRLF and CR only
        # the last piece may continue in the next chunk (no line end yet, or a CR whose LF is to come)
        pending = lines.pop() if chunk and lines and not lines[-1].endswith(b"\n") else b""
        for line in lines:
            number += 1
            _check_length(line, label, number)
            yield line
        _check_length(pending, label, number + 1)
        if not chunk:
            return


def _check_length(line: bytes, label: str, number: int) -> None:
    if len(line) > MAX_LINE_BYTES:
        raise TraceError(f"{label}:{number}: line longer than {MAX_LINE_BYTES:,} bytes; "
                         "a trace row is a few kB at most (is this a trace file?)")


def _decode(raw: bytes, label: str, number: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[:exc.start].decode("utf-8", "replace")) + 1
        raise TraceError(f"{label}:{number}: byte 0x{raw[exc.start]:02x} at character {column} is not UTF-8; "
                         "a data file is UTF-8 text") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise TraceError(f"{label}:{number}: a NUL character at character {nul + 1}: binary data, not text")
    return text


def csv_records(handle: BinaryIO, label: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank CSV record, the header first; the line is where the
    record starts (a quoted field may span lines). A malformed record is a ``TraceError`` at its line."""
    reader = csv.reader(line for _, line in text_lines(handle, label))
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TraceError(f"{label}:{start}: not a valid CSV row ({exc})") from None
        if fields:
            yield start, fields


@dataclass(frozen=True)
class CsvHeader:
    """A CSV file's header: where each column is, and how many fields every record must have."""

    label: str
    positions: dict[str, int]
    width: int

    def check_width(self, line: int, fields: list[str]) -> None:
        """A record has as many fields as the header."""
        if len(fields) != self.width:
            found = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
            raise TraceError(f"{self.label}:{line}: found {found}; the header has {self.width}")


def csv_header(records: Iterator[tuple[int, list[str]]], label: str, required: tuple[str, ...]) -> CsvHeader:
    """Read the header record; every ``required`` column must be in it."""
    first = next(records, None)
    if first is None:
        raise TraceError(f"{label}: no header; expected columns {', '.join(required)}")
    line, names = first
    missing = [c for c in required if c not in names]
    if missing:
        raise TraceError(f"{label}:{line}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}")
    positions: dict[str, int] = {}
    for position, name in enumerate(names):
        positions.setdefault(name, position)
    return CsvHeader(label, positions, len(names))
