"""A set of drawings as one file, to take away or to bring back next year.

The file is a zip holding `labels.csv` (a header `file,label,person,model,reading,when`,
then one row per drawing) and each drawing's PNG as the pad sent it, `images/<name>.png`.
Reading one trusts nothing: the file's size, the number of members and what they unpack
to are checked from the zip's directory before anything is unpacked, and each member is
read only as far as it declared (a zip bomb stops there); a member's name must be a plain
`images/<name>.png` or `labels.csv` (no path that climbs out; nothing is written to disk
from its names anyway); each PNG goes through `imagefile.load_image_file`, whose header
check refuses one that claims more pixels than a pad has; each label is a digit 0..9. Every
refusal is one line naming the row or member.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from digits_core.errors import DigitLabError
from digits_core.images.drawing import canvas_to_image
from digits_core.store.drawings import (
    MAX_PAD_BYTES,
    Drawing,
    DrawingStoreError,
    check_cap,
    iter_pads,
    list_drawings,
    save_drawing,
)

MAX_SET_BYTES = 64 * 2**20  # the zip file itself
MAX_UNPACKED = 256 * 2**20  # what its members unpack to, as its directory declares
MAX_MEMBERS = 5_001  # labels.csv and 5,000 drawings
MAX_CSV_BYTES = 2 * 2**20
MAX_PAD_SIDE = 1024  # pixels a side of one drawing's PNG
COLUMNS = ("file", "label", "person", "model", "reading", "when")
MEMBER = re.compile(r"^images/[A-Za-z0-9_.-]{1,80}\.png$")


@dataclass
class SetItem:
    """One drawing read from a set file: its pad (H, W, 4) uint8 and label."""

    name: str
    rgba: np.ndarray
    label: int
    person: str = ""
    model: str = ""
    reading: int | None = None


def export_set(runs_dir, drawings: list[Drawing]) -> bytes:
    """`drawings` as one zip (see the module docstring)."""
    buf = io.BytesIO()
    rows = io.StringIO()
    w = csv.writer(rows, lineterminator="\n")
    w.writerow(COLUMNS)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d, png in iter_pads(runs_dir, drawings):
            name = f"images/{d.label}-{d.id}.png"
            zf.writestr(name, png)
            w.writerow([name, d.label, d.person, d.model, "" if d.reading is None else d.reading,
                        f"{d.when:.3f}"])
        zf.writestr("labels.csv", rows.getvalue())
    return buf.getvalue()


def read_set(data: bytes) -> list[SetItem]:
    """A set file's drawings, every one checked; raises DrawingStoreError (one line)."""
    if len(data) > MAX_SET_BYTES:
        raise DrawingStoreError(f"that file is {len(data) / 2**20:.0f} MB; a set of drawings may be "
                                f"at most {MAX_SET_BYTES // 2**20} MB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise DrawingStoreError("that file is not a set of drawings (not a zip archive)") from None
    with zf:
        infos = _check_directory(zf)
        rows = _read_rows(_member(zf, infos["labels.csv"], MAX_CSV_BYTES))
        out = []
        for k, (name, label, person, model, reading) in enumerate(rows, start=2):
            if name not in infos:
                raise DrawingStoreError(f"labels.csv row {k}: {name[:60]!r} is not in the file")
            out.append(SetItem(name, _png(zf, infos[name], name), label, person, model, reading))
    return out


def _check_directory(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DrawingStoreError(f"that file holds {len(infos)} entries, over the {MAX_MEMBERS} a set may hold")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED:
        raise DrawingStoreError(f"that file unpacks to {total / 2**20:.0f} MB, over the "
                                f"{MAX_UNPACKED // 2**20} MB a set may hold; refused")
    out = {}
    for i in infos:
        name = i.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise DrawingStoreError(f"refused: the entry {name[:60]!r} points outside the set")
        if i.is_dir():
            continue
        if name != "labels.csv" and not MEMBER.match(name):
            raise DrawingStoreError(f"refused: {name[:60]!r} is neither labels.csv nor images/<name>.png")
        if name in out:
            raise DrawingStoreError(f"refused: {name[:60]!r} is in the file twice")
        out[name] = i
    if "labels.csv" not in out:
        raise DrawingStoreError("that file has no labels.csv: it is not a set of drawings")
    return out


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    if info.file_size > cap:
        raise DrawingStoreError(f"{info.filename[:60]} is {info.file_size / 2**20:.1f} MB, over the "
                                f"{cap / 2**20:.0f} MB it may hold; refused")
    try:
        with zf.open(info) as f:
            raw = f.read(info.file_size + 1)  # never past what it declared (a lying bomb)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError):
        raise DrawingStoreError(f"{info.filename[:60]} is damaged in the file") from None
    if len(raw) != info.file_size:
        raise DrawingStoreError(f"{info.filename[:60]} is damaged in the file")
    return raw


def _read_rows(raw: bytes) -> list[tuple[str, int, str, str, int | None]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DrawingStoreError("labels.csv is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise DrawingStoreError(f"labels.csv is not CSV ({e})") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["file", "label"]:
        raise DrawingStoreError("labels.csv must start with the header file,label")
    out = []
    for k, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            raise DrawingStoreError(f"labels.csv row {k}: a file and a label are needed")
        name, label = row[0].strip(), row[1].strip()
        if not (label.isascii() and label.isdigit() and len(label) == 1):
            raise DrawingStoreError(f"labels.csv row {k}: the label must be a digit 0..9, got {label[:20]!r}")
        extra = [c.strip()[:60] for c in row[2:5]] + ["", "", ""]
        reading = int(extra[2]) if extra[2].isascii() and extra[2].isdigit() and len(extra[2]) == 1 else None
        out.append((name, int(label), extra[0], extra[1], reading))
    if len(out) > MAX_MEMBERS - 1:
        raise DrawingStoreError(f"labels.csv lists {len(out)} drawings, over the {MAX_MEMBERS - 1} a set may hold")
    return out


def _png(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    from digits_core.images.imagefile import load_image_file

    raw = _member(zf, info, MAX_PAD_BYTES)
    try:
        return load_image_file(raw, max_bytes=MAX_PAD_BYTES, max_side=MAX_PAD_SIDE)
    except DigitLabError as e:
        raise DrawingStoreError(f"{name[:60]}: {e}") from None


def import_set(runs_dir, data: bytes, *, owner: str, person: str = "") -> int:
    """Add a set file's drawings as `owner`'s; all or none (every drawing is checked, and
    the person's cap, before the first is kept). Returns how many were added."""
    items = read_set(data)
    inputs = []
    for it in items:
        x = canvas_to_image(it.rgba, "mnist")
        if x is None:
            raise DrawingStoreError(f"{it.name[:60]} holds no digit")
        inputs.append(x)
    check_cap(sum(1 for d in list_drawings(runs_dir) if d.owner == owner), len(items))
    for it, x in zip(items, inputs):
        save_drawing(runs_dir, it.rgba, x, label=it.label, reading=it.reading,
                     model=it.model or "imported", model_key="", owner=owner, person=person)
    return len(items)


__all__ = ["MAX_SET_BYTES", "SetItem", "export_set", "import_set", "read_set"]
