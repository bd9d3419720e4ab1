"""The drawings people mark on the Draw page ("Right" / "No, it's a 7"), kept as data.

A drawing is a folder `<runs>/.drawings/<id>/` (the dot keeps it out of the run listing)
holding what the pad sent (`pad.png`), what the model saw (`input.npy`, (H, W) float32 in
the dataset's raw range) and `meta.json`: the label the person gave, the model and its
reading, who (owner key and the name shown) and when. A folder is written under a
temporary name and renamed into place, so a reader sees a drawing whole or not at all, and
a save never touches another drawing: twelve students saving at once lose nothing. Every
read is bounded (`bounded`) and a damaged drawing is skipped, never fatal to a listing.

Who sees what: on a one-person server everything is theirs. On a class server a person
sees their own drawings and the class's shared set (every drawing marked in the class,
unless a teacher took it out); a person deletes their own, a teacher takes any out of the
shared set. `check_cap` is the per-person limit, kept here on its own.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from digits_core.errors import DigitLabError, RunError, short_reason
from digits_core.store import bounded

FOLDER = ".drawings"
MAX_PAD_BYTES = 2 * 2**20  # the pad's PNG (a 280 px canvas is a few KB)
MAX_META_BYTES = 16 * 2**10
MAX_INPUT_BYTES = 64 * 2**10  # (28, 28) float32 is 3 KB
MAX_DRAWINGS = 20_000  # a listing reads at most this many folders
PER_PERSON = 300  # drawings one person may keep ($DIGITLAB_DRAWINGS_PER_PERSON)
ID_PATTERN = re.compile(r"^d[0-9]{19}-[0-9a-f]{8}$")


class DrawingStoreError(DigitLabError):
    """A drawing could not be saved, read or removed; the message is one line."""


@dataclass
class Drawing:
    """One marked drawing (its pixels are read on demand: `pad_png`, `model_input`)."""

    id: str
    label: int  # the digit the person says it is
    reading: int | None  # what the model read (None: imported, never read)
    model: str  # the label of the model that read it
    model_key: str  # the run folder's name, or ":ready-made:"
    owner: str  # the owner key of whoever marked it (session id or "@name")
    person: str  # their name as shown (class mode), else ""
    when: float  # time.time() when it was marked
    dataset: str = "mnist"
    shared: bool = True  # in the class's shared set (a teacher may take it out)

    @property
    def misread(self) -> bool:
        return self.reading is not None and self.reading != self.label


def per_person_cap() -> int:
    try:
        return max(1, int(os.environ.get("DIGITLAB_DRAWINGS_PER_PERSON", PER_PERSON)))
    except ValueError:
        return PER_PERSON


def check_cap(kept: int, adding: int = 1, cap: int | None = None) -> None:
    """Refuse (DrawingStoreError) when `kept` drawings plus `adding` more would pass the cap."""
    cap = per_person_cap() if cap is None else cap
    if kept + adding > cap:
        more = "this one" if adding == 1 else f"these {adding}"
        raise DrawingStoreError(
            f"you keep {kept} drawings, and {cap} is the most one person may keep: delete some "
            f"on the Drawings page to save {more}")


def store_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / FOLDER


@contextmanager
def _locked(root: Path):
    """One saver at a time counts and writes (threads and processes alike: flock on a file
    opened by each caller), so the cap holds exactly; reads never wait."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _new_id() -> str:
    return f"d{time.time_ns():019d}-{secrets.token_hex(4)}"


def _png_bytes(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _write_folder(root: Path, d: Drawing, pad_png: bytes, model_input: np.ndarray) -> None:
    tmp = root / f".tmp-{d.id}"
    tmp.mkdir()
    try:
        (tmp / "pad.png").write_bytes(pad_png)
        with open(tmp / "input.npy", "wb") as f:
            np.save(f, np.asarray(model_input, np.float32), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(asdict(d)))
        os.rename(tmp, root / d.id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_drawing(runs_dir: str | Path, rgba: np.ndarray | bytes, model_input: np.ndarray, *,
                 label: int, reading: int | None, model: str, model_key: str, owner: str,
                 person: str = "", dataset: str = "mnist") -> Drawing:
    """Keep one marked drawing: `rgba` (H, W, 4) uint8 as the pad sent it (or its PNG bytes),
    `model_input` (H, W) what the model saw. Raises DrawingStoreError (a bad label, the
    person's cap reached, a disk that refuses)."""
    if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise DrawingStoreError(f"a drawing's label is a digit 0..9, got {label!r}")
    if not owner:
        raise DrawingStoreError("say who you are before keeping a drawing")
    png = bytes(rgba) if isinstance(rgba, (bytes, bytearray)) else _png_bytes(rgba)
    if len(png) > MAX_PAD_BYTES:
        raise DrawingStoreError("that drawing's picture is too large to keep")
    d = Drawing(_new_id(), int(label), None if reading is None else int(reading), str(model)[:120],
                str(model_key)[:120], owner, str(person)[:60], time.time(), dataset)
    root = store_dir(runs_dir)
    try:
        with _locked(root):
            check_cap(sum(1 for x in list_drawings(runs_dir) if x.owner == owner))
            _write_folder(root, d, png, model_input)
    except OSError as e:
        raise DrawingStoreError(f"could not keep the drawing ({e.strerror or type(e).__name__})") from None
    return d


def _read_meta(folder: Path) -> Drawing:
    m = bounded.read_json_object(folder / "meta.json", MAX_META_BYTES)
    where = f"{folder.name}/meta.json"
    label = bounded.integer(m.get("label"), f"{where}: label", 0)
    if label > 9:
        raise RunError(f"{where}: label must be a digit 0..9, got {label}")
    reading = m.get("reading")
    if reading is not None:
        reading = bounded.integer(reading, f"{where}: reading", 0)
    dataset = bounded.text(m.get("dataset", "mnist"), f"{where}: dataset")
    if dataset not in ("mnist", "digits"):
        raise RunError(f"{where}: dataset must be mnist or digits")
    return Drawing(
        id=folder.name, label=label, reading=reading,
        model=bounded.text(m.get("model", ""), f"{where}: model"),
        model_key=bounded.text(m.get("model_key", ""), f"{where}: model_key"),
        owner=bounded.text(m.get("owner", ""), f"{where}: owner"),
        person=bounded.text(m.get("person", ""), f"{where}: person"),
        when=bounded.number(m.get("when", 0.0), f"{where}: when"),
        dataset=dataset, shared=bool(m.get("shared", True)))


def list_drawings(runs_dir: str | Path) -> list[Drawing]:
    """Every whole, valid drawing in the store, oldest first (damaged ones are skipped)."""
    root = store_dir(runs_dir)
    out = []
    try:
        names = sorted(n for n in os.listdir(root) if ID_PATTERN.match(n))[:MAX_DRAWINGS]
    except OSError:
        return []
    for name in names:
        try:
            out.append(_read_meta(root / name))
        except RunError:
            continue
    return out


def visible(drawings: list[Drawing], owner: str, *, class_server: bool) -> list[Drawing]:
    """What `owner` sees: everything on a one-person server; on a class server their own
    drawings and the class's shared set."""
    if not class_server:
        return list(drawings)
    return [d for d in drawings if d.owner == owner or d.shared]


def _folder(runs_dir, drawing_id: str) -> Path:
    if not ID_PATTERN.match(str(drawing_id)):
        raise DrawingStoreError(f"{str(drawing_id)[:40]!r} is not a drawing's name")
    return store_dir(runs_dir) / drawing_id


def get_drawing(runs_dir, drawing_id: str) -> Drawing:
    try:
        return _read_meta(_folder(runs_dir, drawing_id))
    except RunError as e:
        raise DrawingStoreError(f"that drawing cannot be read ({e})") from None


def pad_png(runs_dir, drawing_id: str) -> bytes:
    """The PNG the pad sent, as kept (bounded)."""
    try:
        return bounded.read_bounded(_folder(runs_dir, drawing_id) / "pad.png", MAX_PAD_BYTES)
    except RunError as e:
        raise DrawingStoreError(f"that drawing cannot be read ({e})") from None


def model_input(runs_dir, drawing_id: str) -> np.ndarray:
    """What the model saw: (H, W) float32 in the dataset's raw range."""
    path = _folder(runs_dir, drawing_id) / "input.npy"
    try:
        bounded.check_regular(path, MAX_INPUT_BYTES)
        with open(path, "rb") as f:
            a = bounded.read_npy(f, path.name, MAX_INPUT_BYTES, "f")
    except (RunError, OSError) as e:
        raise DrawingStoreError(f"that drawing cannot be read ({short_reason(e)})") from None
    if a.ndim != 2 or not 8 <= a.shape[0] <= 28 or a.shape[0] != a.shape[1] or not np.isfinite(a).all():
        raise DrawingStoreError("that drawing's model input is not an 8x8 or 28x28 image")
    return a.astype(np.float32)


def inputs_of(runs_dir, drawings: list[Drawing]) -> tuple[np.ndarray, np.ndarray, list[Drawing]]:
    """The model inputs (N, H, W) float32 and labels (N,) int64 of `drawings` that read
    whole (the others are left out), with the drawings kept."""
    xs, ys, kept = [], [], []
    for d in drawings:
        try:
            xs.append(model_input(runs_dir, d.id))
        except DrawingStoreError:
            continue
        ys.append(d.label)
        kept.append(d)
    if not xs:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64), []
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:  # an 8x8 drawing among 28x28 ones: keep the commonest
        common = max(shapes, key=lambda s: sum(x.shape == s for x in xs))
        pick = [i for i, x in enumerate(xs) if x.shape == common]
        xs, ys, kept = [xs[i] for i in pick], [ys[i] for i in pick], [kept[i] for i in pick]
    return np.stack(xs), np.asarray(ys, np.int64), kept


def delete_drawing(runs_dir, drawing_id: str, *, by: str) -> None:
    """Delete one drawing; only whoever marked it may (`by`: their owner key)."""
    folder = _folder(runs_dir, drawing_id)
    d = get_drawing(runs_dir, drawing_id)
    if d.owner != by:
        who = d.person or "the person who drew it"
        raise DrawingStoreError(f"only {who} can delete this drawing")
    _remove(folder)


def delete_mine(runs_dir, owner: str) -> int:
    """Delete every drawing of `owner`; returns how many went."""
    gone = 0
    for d in list_drawings(runs_dir):
        if d.owner == owner:
            _remove(store_dir(runs_dir) / d.id)
            gone += 1
    return gone


def remove_from_shared(runs_dir, drawing_id: str) -> None:
    """A teacher takes a drawing out of the class's shared set (its owner still sees it)."""
    folder = _folder(runs_dir, drawing_id)
    d = get_drawing(runs_dir, drawing_id)
    d.shared = False
    tmp = folder / ".meta.tmp.json"
    try:
        tmp.write_text(json.dumps(asdict(d)))
        os.replace(tmp, folder / "meta.json")
    except OSError as e:
        raise DrawingStoreError(f"could not change the drawing ({e.strerror or type(e).__name__})") from None


def _remove(folder: Path) -> None:
    """Rename away first (one atomic step: listings never see half a drawing), then delete."""
    gone = folder.with_name(f".gone-{folder.name}-{secrets.token_hex(2)}")
    try:
        os.rename(folder, gone)
    except FileNotFoundError:
        return  # deleted meanwhile (an undo and a delete at once)
    except OSError as e:
        raise DrawingStoreError(f"could not delete the drawing ({e.strerror or type(e).__name__})") from None
    shutil.rmtree(gone, ignore_errors=True)


def iter_pads(runs_dir, drawings: list[Drawing]) -> Iterator[tuple[Drawing, bytes]]:
    for d in drawings:
        try:
            yield d, pad_png(runs_dir, d.id)
        except DrawingStoreError:
            continue


__all__ = [
    "Drawing",
    "DrawingStoreError",
    "check_cap",
    "delete_drawing",
    "delete_mine",
    "get_drawing",
    "inputs_of",
    "iter_pads",
    "list_drawings",
    "model_input",
    "pad_png",
    "per_person_cap",
    "remove_from_shared",
    "save_drawing",
    "store_dir",
    "visible",
]
