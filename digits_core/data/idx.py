"""The IDX file format of the original MNIST distribution, read strictly.

An IDX file is a big-endian header (a magic number whose low byte is the number of
dimensions, then one 32-bit size per dimension) followed by exactly that many unsigned
bytes. `read_idx` reads one, gzipped or not, and refuses anything else with a `DataError`
whose message is one line naming the file: unreadable, corrupt gzip, short header, wrong
magic, a payload larger than `MAX_IDX_BYTES` (refused from the header, before reading),
truncated, or trailing bytes.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from digits_core.errors import DataError, short_reason

IMAGES_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension (count)
MAX_IDX_BYTES = 256 * 2**20  # MNIST's largest file is 47 MB; a header announcing more is refused

_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20
_PAYLOAD_WORD = {IMAGES_MAGIC: "pixel", LABELS_MAGIC: "label"}
_KIND = {IMAGES_MAGIC: "IDX images", LABELS_MAGIC: "IDX labels"}


def read_idx(path: str | Path, *, expect_magic: int) -> np.ndarray:
    """Read one unsigned-byte IDX file, gzipped or not (told apart by content, not name).

    `expect_magic` is 2051 for images, giving `(N, rows, cols) uint8`, or 2049 for labels,
    giving `(N,) uint8`. The payload must hold exactly the bytes the header announces.
    Raises DataError naming the file on any problem: unreadable, corrupt gzip, short
    header, wrong magic number, truncated payload or trailing bytes.
    """
    ndim = expect_magic & 0xFF
    if expect_magic >> 8 != 0x08 or ndim == 0:
        raise ValueError(f"expect_magic must be an unsigned-byte IDX magic, got {expect_magic}")
    path = Path(path)
    name = path.name
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{name}: file not found in {path.parent}") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({short_reason(e)})") from None
    with raw:
        try:
            is_gzip = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip else raw
            return _parse_idx(stream, name, expect_magic, ndim)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            # EOFError is how gzip reports a compressed stream cut short.
            raise DataError(f"{name}: corrupt gzip ({short_reason(e)})") from None
        except OSError as e:
            raise DataError(f"{name}: cannot read ({short_reason(e)})") from None


def _parse_idx(stream, name: str, expect_magic: int, ndim: int) -> np.ndarray:
    header_len = 4 + 4 * ndim
    header = _read_up_to(stream, header_len)
    if len(header) < 4:
        raise DataError(
            f"{name}: header too short: expected {header_len} bytes, found {len(header)}"
        )
    magic = int.from_bytes(header[:4], "big")
    if magic != expect_magic:
        found = f" ({_KIND[magic]})" if magic in _KIND else ""
        raise DataError(
            f"{name}: wrong magic number {magic}{found}, expected {expect_magic} "
            f"({_KIND.get(expect_magic, 'IDX')})"
        )
    if len(header) < header_len:
        raise DataError(
            f"{name}: header too short: expected {header_len} bytes, found {len(header)}"
        )
    dims = struct.unpack(f">{ndim}I", bytes(header[4:]))
    expected = math.prod(dims)
    word = _PAYLOAD_WORD.get(expect_magic, "data")
    if expected > MAX_IDX_BYTES:
        if isinstance(stream, gzip.GzipFile):  # a garbled gzip shows as a garbled header:
            _read_up_to_discarding(stream, MAX_IDX_BYTES)  # say "corrupt gzip" where it is
        raise DataError(
            f"{name}: the header announces {expected:,} {word} bytes, more than the "
            f"{MAX_IDX_BYTES // 2**20} MB an IDX file may hold here"
        )
    data, found = _read_array(stream, expected)
    if found < expected:
        raise DataError(f"{name}: truncated: expected {expected} {word} bytes, found {found}")
    extra = 0
    while chunk := stream.read(_READ_CHUNK):
        extra += len(chunk)
    if extra:
        raise DataError(
            f"{name}: {extra} trailing bytes after the expected {expected} {word} bytes"
        )
    # In-place resize keeps `data` the owner of its memory: a view of a read-only owner can
    # never be made writeable again, which load_mnist's cache relies on.
    data.resize(dims, refcheck=False)
    return data


def _read_array(stream, n: int) -> tuple[np.ndarray, int]:
    """Up to `n` bytes of `stream` in an array that owns its memory, and how many came.

    The array grows as bytes arrive instead of being allocated at `n`: a corrupt header
    can announce terabytes, and that must end as "truncated", not as a MemoryError.
    """
    data = np.empty(min(n, _READ_CHUNK), np.uint8)
    found = 0
    while found < n:
        if found == len(data):
            data.resize(min(n, 2 * len(data)), refcheck=False)
        got = stream.readinto(memoryview(data)[found:])
        if not got:
            break
        found += got
    return data, found


def _read_up_to_discarding(stream, n: int) -> None:
    """Read and drop up to `n` bytes (bounded memory), so a corrupt stream raises its error."""
    while n > 0 and (chunk := stream.read(min(_READ_CHUNK, n))):
        n -= len(chunk)


def _read_up_to(stream, n: int) -> bytearray:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(_READ_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MAX_IDX_BYTES", "read_idx"]
