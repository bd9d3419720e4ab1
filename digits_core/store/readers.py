"""One way in for every file of a run folder, and for values that come from a URL.

A run folder may have been copied from anywhere (a USB stick, a colleague's laptop, a
class archive), so each file is read as hostile: bounded in size (a JSON file is read up to
its cap plus one byte, never whole), checked in type and shape, and never unpickled. Each
reader returns a typed value or raises `RunError` whose message is ONE line naming the file
(or field) and what is wrong: never a traceback, never advice to weaken a safety switch.
Names found inside a file (meta.json's "weights", "name") are checked and never used as
paths: the only weights files are `weights.npz` and `weights.pt`, in the run folder itself.

Contract for `runs.py` (each call raises only `RunError`, one line, naming the file):

- `inspect_run(path)`: `meta = check_run(path)`; on RunError e -> broken, reason `str(e)`;
  else ok with `meta.to_dict()` as `RunInfo.meta`. `check_run` reads every file but
  first_layer_before.npy (the weights too: a pickle must show as broken in a listing; a
  few ms for the bundled digits' models, ~0.1 s for 20M parameters, so cache it by the
  folder's mtime if listings grow) and checks that they agree (family, dataset, shape).
- `load_run(path)`, file by file (`d = Path(path)`):
  `meta = read_meta(d / "meta.json")`,
  `exp = read_experiment(d / "experiment.json")` (validated, so every config cap applies),
  `history = read_history(d / "history.json")`,
  `normalizer = read_normalizer(d / "normalizer.npz", image_shape=meta.image_shape)`,
  `state = read_weights_file(weights_path(d, meta, exp))`, then
  `model.load_state_dict(state)` (a mismatch is a ValueError: report it as RunError
  "weights.pt does not fit the model: ..."), and
  `first = read_first_layer(d / "first_layer_before.npy")` when that file exists.
  A broken history.json need not cost the weights: `load_run` may catch its RunError and
  go on with `History()`, keeping the message to show.
- A future `snapshots.npz` (live embeddings): `read_snapshots(d / "snapshots.npz")`.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from digits_core.config import MAX_PARAMS, NORMALIZATIONS, Experiment
from digits_core.data.datasets import IMAGE_SHAPE, Normalizer
from digits_core.errors import ConfigError, RunError, short_reason, show_value
from digits_core.nn.models import read_weights, weights_file
from digits_core.store import bounded
from digits_core.store.history import History

MAX_META_BYTES = 64 * 2**10  # meta.json: a dozen fields
MAX_EXPERIMENT_BYTES = 256 * 2**10  # experiment.json: three dataclasses
MAX_HISTORY_BYTES = 24 * 2**20  # history.json: 1000 MNIST epochs at batch 64 is ~20 MB
MAX_HISTORY_POINTS = 2_000_000  # entries of one curve (one per training step)
MAX_MESSAGE = 1000  # characters of meta.json's status message (the guess warning is over 200)
MAX_NORMALIZER_BYTES = 2**20  # normalizer.npz: two (H, W) float32 arrays at most
MAX_WEIGHTS_BYTES = 8 * MAX_PARAMS + 2**20  # float32 weights of the largest model, twice over
MAX_FIRST_LAYER_BYTES = 8 * MAX_PARAMS  # first_layer_before.npy: part of the weights
MAX_SNAPSHOTS_BYTES = 256 * 2**20  # snapshots.npz: live embeddings, (K, N, 2) float32
WEIGHTS_FILES = ("weights.npz", "weights.pt")
STATUSES = ("queued", "loading", "running", "stopping", "finished", "stopped", "diverged", "failed")


@dataclass(frozen=True)
class RunMeta:
    """meta.json, checked. `weights` is exactly one of WEIGHTS_FILES."""

    weights: str  # weights.npz | weights.pt
    image_shape: tuple[int, int]  # (8, 8) digits or (28, 28) MNIST
    format: int = 1  # runs.FORMAT_VERSION that wrote it
    name: str = ""  # the folder name when saved (a label: never used as a path)
    label: str = ""  # preset name or user label
    created: float = 0.0  # time.time() at saving
    family: str = ""  # numpy-mlp | torch-mlp | cnn
    dataset: str = ""  # digits | mnist
    status: str = "finished"  # History.status at saving
    test_acc: float | None = None  # final test accuracy
    epochs_done: int = 0
    elapsed: float = 0.0  # seconds of training
    n_params: int = 0
    threads: int = 0  # torch threads it trained on (History.threads; 0: NumPy)
    owner: str = ""  # who started it: a session id, '@name' in class mode, "" from the CLI
    person: str = ""  # that person's name as they typed it (class mode), else ""
    published: float = 0.0  # time.time() a teacher published it to the class (0: not published)
    message: str = ""  # the last status message, for a person
    last_test_acc: float | None = None  # the last full test accuracy measured while training
    steps_done: int = 0
    updated: float = 0.0  # time.time() of the last checkpoint
    pid: int = 0  # the process that trains it (a run "running" without it is interrupted)
    pid_started: float | None = None  # that process's start time, so a reused pid does not count
    host: str = ""  # the machine of that process ("" = this one); another's is judged by `updated`

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d


# ------------------------------------------------------------------ run files


def read_meta(path: str | Path) -> RunMeta:
    """meta.json -> RunMeta. Raises RunError naming the file and field."""
    path = Path(path)
    d = bounded.read_json_object(path, MAX_META_BYTES)
    weights = d.get("weights")
    if weights not in WEIGHTS_FILES:
        raise RunError(
            f"{path.name}: weights must be {' or '.join(WEIGHTS_FILES)}, got {show_value(weights)}; refused"
        )
    shape = d.get("image_shape")
    if not isinstance(shape, list) or tuple(shape) not in IMAGE_SHAPE.values():
        allowed = " or ".join(str(list(s)) for s in IMAGE_SHAPE.values())
        raise RunError(f"{path.name}: image_shape must be {allowed}, got {show_value(shape)}")
    values: dict[str, Any] = {"weights": weights, "image_shape": tuple(shape)}
    for f in fields(RunMeta):
        if f.name in values or f.name not in d:
            continue
        v, kind = d[f.name], f.type
        where = f"{path.name}: {f.name}"
        if kind == "str":  # a status message is a sentence or two for a person
            values[f.name] = bounded.text(v, where, MAX_MESSAGE if f.name == "message" else bounded.MAX_TEXT)
        elif kind == "int":
            values[f.name] = bounded.integer(v, where, lo=0)
        elif kind == "float":
            values[f.name] = bounded.number(v, where)
        else:  # float | None
            values[f.name] = None if v is None else bounded.number(v, where)
    if values.get("status", "finished") not in STATUSES:
        raise RunError(f"{path.name}: status must be one of {', '.join(STATUSES)}")
    return RunMeta(**values)


def read_experiment(path: str | Path) -> Experiment:
    """experiment.json -> a validated Experiment (every config cap applies)."""
    path = Path(path)
    d = bounded.read_json_object(path, MAX_EXPERIMENT_BYTES)
    try:
        exp = Experiment.from_dict(d)
        exp.validate()
    except ConfigError as e:
        raise RunError(f"{path.name}: {e}") from None
    return exp


def read_history(path: str | Path) -> History:
    """history.json -> History; curves bounded to MAX_HISTORY_POINTS, every entry a number
    (NaN and infinity allowed: a diverged run's loss), None only where History allows it."""
    path = Path(path)
    d = bounded.read_json_object(path, MAX_HISTORY_BYTES)
    values: dict[str, Any] = {}
    for f in fields(History):
        if f.name not in d:
            continue
        v, kind = d[f.name], f.type
        where = f"{path.name}: {f.name}"
        if kind.startswith("list["):
            if not isinstance(v, list):
                raise RunError(f"{where} must be a list, got {show_value(v)}")
            if len(v) > MAX_HISTORY_POINTS:
                raise RunError(f"{where} has {len(v):,} entries; at most {MAX_HISTORY_POINTS:,} are read")
            item = kind[5:-1]
            if item == "int":
                values[f.name] = [bounded.integer(x, where) for x in v]
            else:
                none_ok = "None" in item
                values[f.name] = [
                    None if (x is None and none_ok) else bounded.number(x, where, finite=False) for x in v
                ]
        elif kind == "int":
            values[f.name] = bounded.integer(v, where, lo=0)
        elif kind == "float":
            values[f.name] = bounded.number(v, where, finite=False)
        elif kind == "float | None":
            values[f.name] = None if v is None else bounded.number(v, where, finite=False)
        else:
            values[f.name] = bounded.text(v, where, limit=1000)
    if values.get("status", "queued") not in STATUSES:
        raise RunError(f"{path.name}: status must be one of {', '.join(STATUSES)}")
    curves = ("epochs", "train_acc", "test_acc", "epoch_loss")
    lengths = {len(values[c]) for c in curves if c in values}
    if len(lengths) > 1 or len(values.get("steps", ())) != len(values.get("loss", ())):
        raise RunError(f"{path.name}: its curves have different lengths")
    return History(**values)


def read_normalizer(path: str | Path, *, image_shape: tuple[int, int] | None = None) -> Normalizer:
    """normalizer.npz -> Normalizer: a known mode, a positive finite max_value, and for
    "standardize" a finite mean and a positive finite std of `image_shape`."""
    path = Path(path)
    z = bounded.read_npz(path, MAX_NORMALIZER_BYTES, kinds=bounded.NUMERIC_KINDS + "U")
    mode, top = z.get("mode"), z.get("max_value")
    if mode is None or mode.shape != () or mode.dtype.kind != "U" or str(mode) not in NORMALIZATIONS:
        raise RunError(f"{path.name}: mode must be one of {', '.join(NORMALIZATIONS)}")
    if top is None or top.shape != () or top.dtype.kind not in "iuf" or not 0 < float(top) <= 65535:
        raise RunError(f"{path.name}: max_value must be a number in (0, 65535]")
    if str(mode) != "standardize":
        return Normalizer(str(mode), float(top))
    for key in ("mean", "std"):
        a = z.get(key)
        if a is None or a.ndim != 2 or a.dtype.kind != "f" or not np.isfinite(a).all():
            raise RunError(f"{path.name}: {key} must be a finite (H, W) float array")
        if image_shape is not None and tuple(a.shape) != tuple(image_shape):
            raise RunError(f"{path.name}: {key} is {a.shape}, the images are {tuple(image_shape)}")
    if z["mean"].shape != z["std"].shape or not (z["std"] > 0).all():
        raise RunError(f"{path.name}: std must be positive and the shape of mean")
    return Normalizer("standardize", float(top), z["mean"].astype(np.float32), z["std"].astype(np.float32))


def read_weights_file(path: str | Path) -> dict[str, np.ndarray]:
    """weights.npz or weights.pt -> {name: numeric array}; never unpickles anything.

    The file must be named exactly as one of WEIGHTS_FILES and be at most MAX_WEIGHTS_BYTES,
    unpacked too. Raises RunError "weights.pt is not a plain tensor file (it holds code or
    objects); refused" for a pickle, and a one-line reason for anything else.
    """
    path = Path(path)
    if path.name not in WEIGHTS_FILES:
        raise RunError(f"{show_value(path.name)} is not a weights file ({' or '.join(WEIGHTS_FILES)})")
    if path.suffix == ".npz":
        return bounded.read_npz(path, MAX_WEIGHTS_BYTES, kinds=bounded.NUMERIC_KINDS)
    bounded.check_regular(path, MAX_WEIGHTS_BYTES)
    try:
        with zipfile.ZipFile(path) as zf:
            bounded.check_members(zf, path.name, MAX_WEIGHTS_BYTES)
    except zipfile.BadZipFile:
        raise RunError(f"{path.name} is not a torch weights file (not a zip archive); refused") from None
    except (OSError, ValueError, EOFError, zlib.error, NotImplementedError) as e:
        raise RunError(f"{path.name} cannot be read ({short_reason(e)})") from None
    try:
        state = read_weights(path)
    except ValueError as e:
        raise RunError(bounded.one_line(str(e))) from None
    bounded.check_arrays(state, path.name, bounded.NUMERIC_KINDS)
    return state


def read_first_layer(path: str | Path) -> np.ndarray:
    """first_layer_before.npy -> the first weight layer before training: (D, K) dense or
    (K, 1, kh, kw) conv kernels, float."""
    path = Path(path)
    size = bounded.check_regular(path, MAX_FIRST_LAYER_BYTES)
    try:
        with open(path, "rb") as f:
            a = bounded.read_npy(f, path.name, min(size, MAX_FIRST_LAYER_BYTES), bounded.NUMERIC_KINDS)
    except OSError as e:
        raise RunError(f"{path.name} cannot be read ({short_reason(e)})") from None
    if a.dtype.kind != "f" or a.ndim not in (2, 4):
        raise RunError(f"{path.name}: expected a 2-D or 4-D float array, got {a.ndim}-D {a.dtype}")
    return a


def read_snapshots(path: str | Path) -> dict[str, np.ndarray]:
    """snapshots.npz (live embeddings) -> {name: numeric array}, MAX_SNAPSHOTS_BYTES at most."""
    return bounded.read_npz(Path(path), MAX_SNAPSHOTS_BYTES, kinds=bounded.NUMERIC_KINDS)


def read_optimizer(path: str | Path) -> dict[str, np.ndarray]:
    """optimizer.npz (the optimiser's state, for continuing a run) -> {name: numeric array}."""
    return bounded.read_npz(Path(path), 3 * MAX_WEIGHTS_BYTES, kinds=bounded.NUMERIC_KINDS)


def weights_path(run_dir: str | Path, meta: RunMeta, experiment: Experiment) -> Path:
    """The weights file of a run folder: the one its model family writes, which meta.json
    must name too. Never a name taken from a file as it stands."""
    expected = weights_file(experiment.model.family)
    if meta.weights != expected:
        raise RunError(
            f"meta.json names {meta.weights}, but a {experiment.model.family} run keeps {expected}"
        )
    return Path(run_dir) / expected


def check_run(path: str | Path) -> RunMeta:
    """The cheap validity check of a run folder (no weights loaded); see the module's contract."""
    d = Path(path)
    if not d.is_dir():
        raise RunError(f"{show_value(d.name)} is not a run folder")
    missing = [f for f in ("meta.json", "experiment.json", "history.json", "normalizer.npz") if not (d / f).exists()]
    if missing:
        raise RunError(f"incomplete: missing {', '.join(missing)}")
    meta = read_meta(d / "meta.json")
    exp = read_experiment(d / "experiment.json")
    read_history(d / "history.json")
    read_normalizer(d / "normalizer.npz", image_shape=meta.image_shape)
    weights = weights_path(d, meta, exp)
    if meta.family and meta.family != exp.model.family or meta.dataset and meta.dataset != exp.data.dataset:
        raise RunError("meta.json and experiment.json disagree on the model family or dataset")
    if meta.image_shape != IMAGE_SHAPE[exp.data.dataset]:
        raise RunError(f"meta.json: image_shape {list(meta.image_shape)} is not {exp.data.dataset}'s")
    if not weights.exists() and not weights.is_symlink():
        raise RunError(f"incomplete: missing {weights.name}")
    if bounded.check_regular(weights, MAX_WEIGHTS_BYTES) == 0:
        raise RunError(f"{weights.name} is empty")
    read_weights_file(weights)  # a pickle must show as broken in a listing, not on loading
    return meta


__all__ = [
    "MAX_EXPERIMENT_BYTES",
    "MAX_HISTORY_BYTES",
    "MAX_HISTORY_POINTS",
    "MAX_META_BYTES",
    "MAX_NORMALIZER_BYTES",
    "MAX_SNAPSHOTS_BYTES",
    "MAX_WEIGHTS_BYTES",
    "WEIGHTS_FILES",
    "RunMeta",
    "check_run",
    "read_experiment",
    "read_first_layer",
    "read_history",
    "read_meta",
    "read_normalizer",
    "read_snapshots",
    "read_weights_file",
    "weights_path",
]
