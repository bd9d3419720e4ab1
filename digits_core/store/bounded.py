"""Reading one file without trusting it: a size cap checked before reading, JSON that must
be an object, .npz/.npy members checked from their headers (shapes, dtypes, sizes: no
pickles, no zip bombs) before any data is allocated, and typed values for each field.
Every failure is a `RunError` whose message is one line naming the file or field.
`readers` builds the run-folder files on these.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from digits_core.errors import RunError, short_reason, show_value

MAX_ARRAYS = 256  # members of one .npz / tensors of one .pt
MAX_TEXT = 200  # characters of a name or status read from a file
NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float: what a plain array may hold




def check_regular(path: Path, cap: int) -> int:
    """Size of `path` after checking it is a regular file (no link, no device) within `cap`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise RunError(f"{path.name} is missing") from None
    except OSError as e:
        raise RunError(f"{path.name} cannot be read ({short_reason(e)})") from None
    if stat.S_ISLNK(st.st_mode):
        raise RunError(f"{path.name} is a link, not a file; refused")
    if not stat.S_ISREG(st.st_mode):
        raise RunError(f"{path.name} is not a regular file; refused")
    if st.st_size > cap:
        raise RunError(f"{path.name} is {size(st.st_size)}, over the {size(cap)} such a file may hold; refused")
    return st.st_size


def read_bounded(path: Path, cap: int) -> bytes:
    check_regular(path, cap)
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)  # the file may have grown since the check
    except OSError as e:
        raise RunError(f"{path.name} cannot be read ({short_reason(e)})") from None
    if len(raw) > cap:
        raise RunError(f"{path.name} is over the {size(cap)} such a file may hold; refused")
    return raw


def read_json_object(path: Path, cap: int) -> dict[str, Any]:
    raw = read_bounded(path, cap)
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunError(f"{path.name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        cut = e.pos >= len(raw.rstrip()) or e.msg.startswith("Unterminated string")
        what = "truncated" if cut else "not valid JSON"
        raise RunError(f"{path.name} is {what} (line {e.lineno}, column {e.colno})") from None
    except (RecursionError, ValueError):  # nested too deep; an integer of > 4300 digits
        raise RunError(f"{path.name} is not JSON this program reads (nested too deep or a huge number)") from None
    if not isinstance(d, dict):
        raise RunError(f"{path.name} must hold a JSON object, got {show_value(d)}")
    return d


def read_npz(path: Path, cap: int, *, kinds: str) -> dict[str, np.ndarray]:
    """An .npz of plain arrays, every header checked before its data is read, `cap` bytes in
    all (unpacked), no object arrays (so no pickle)."""
    check_regular(path, cap)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            left = check_members(zf, path.name, cap)
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with zf.open(info) as f:
                    out[key] = read_npy(f, path.name, min(left, info.file_size), kinds)
                left -= out[key].nbytes
    except zipfile.BadZipFile:
        raise RunError(f"{path.name} is not an .npz file (not a zip archive)") from None
    except (OSError, EOFError, zlib.error, NotImplementedError, KeyError, ValueError) as e:
        raise RunError(f"{path.name} cannot be read ({short_reason(e)})") from None
    return out


def check_members(zf: zipfile.ZipFile, name: str, cap: int) -> int:
    """Refuse an archive of too many members or more than `cap` bytes unpacked (a zip bomb);
    returns the bytes it declares."""
    infos = zf.infolist()
    if len(infos) > MAX_ARRAYS:
        raise RunError(f"{name} holds {len(infos)} entries, over the {MAX_ARRAYS} read; refused")
    total = sum(i.file_size for i in infos)
    if total > cap:
        raise RunError(f"{name} unpacks to {size(total)}, over the {size(cap)} such a file may hold; refused")
    return total


def read_npy(f, name: str, cap: int, kinds: str) -> np.ndarray:
    """One .npy stream whose header is checked (plain dtype, at most `cap` bytes) before
    its data is allocated."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise RunError(f"{name} holds an array of an unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as e:  # numpy parses it as Python
        raise RunError(f"{name} holds a malformed array header ({short_reason(e)})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        if dtype.hasobject:
            raise RunError(f"{name} is not a plain array file (it holds code or objects); refused")
        raise RunError(f"{name} holds {dtype} data, not plain numbers; refused")
    if len(shape) > 8:
        raise RunError(f"{name} holds a {len(shape)}-D array; refused")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > cap:
        raise RunError(f"{name} announces an array of {size(nbytes)}, more than the file holds; refused")
    data = f.read(nbytes + 1)
    if len(data) != nbytes:
        raise RunError(f"{name} is truncated or has trailing bytes after an array")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape)).reshape(shape, order=order).copy()


def check_arrays(state: dict[str, np.ndarray], name: str, kinds: str) -> None:
    if len(state) > MAX_ARRAYS:
        raise RunError(f"{name} holds {len(state)} tensors, over the {MAX_ARRAYS} read; refused")
    for k, v in state.items():
        if v.dtype.kind not in kinds or v.dtype.hasobject:
            raise RunError(f"{name}: {show_value(k)} holds {v.dtype} data, not plain numbers; refused")


def text(v: Any, where: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(v, str) or len(v) > limit or "\x00" in v:
        raise RunError(f"{where} must be a text of at most {limit} characters, got {show_value(v)}")
    return v


def integer(v: Any, where: str, lo: int | None = None) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63 and (lo is None or v >= lo):
        return v
    bound = "" if lo is None else f" >= {lo}"
    raise RunError(f"{where} must be a whole number{bound}, got {show_value(v)}")


def number(v: Any, where: str, *, finite: bool = True) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        x = float(v) if abs(v) < 1e300 else math.inf
        if not finite or math.isfinite(x):
            return x
    raise RunError(f"{where} must be a {'finite ' if finite else ''}number, got {show_value(v)}")




def one_line(text: str) -> str:
    return " ".join(text.split())


def size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB" if n >= 2**10 else f"{n} bytes"
