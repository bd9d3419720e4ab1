"""Property tests: arbitrary and mutated bytes fed to every reader either load or raise the
project's own error with a one-line message; never another exception.

How many inputs each property tried is printed at the end of the module (`pytest -s`).
"""

import collections
import gzip
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from idx_files import idx_bytes
from PIL import Image

from dashboard.state import SID_PATTERN
from digits_core.config import ConvBlock, Experiment, ModelConfig
from digits_core.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from digits_core.errors import DigitLabError
from digits_core.images.drawing import canvas_to_image
from digits_core.images.imagefile import load_image_file
from digits_core.store import readers
from digits_core.store.history import History

TRIED: collections.Counter = collections.Counter()
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nproperty inputs tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))


def one_line(e: BaseException) -> None:
    assert isinstance(e, DigitLabError), f"{type(e).__name__}: {e}"
    text = str(e)
    assert text and "\n" not in text and len(text) < 300, text
    assert "weights_only" not in text and "allow_pickle" not in text


def outcome(fn, *args, **kwargs):
    """fn's value, or None after checking that it raised a one-line DigitLabError."""
    try:
        return fn(*args, **kwargs)
    except DigitLabError as e:
        one_line(e)
        return None


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` with a few bytes overwritten, cut short, spliced or grown."""
    b = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(b) - 1, 0)))
        if op == "flip" and b:
            b[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del b[at:]
        elif op == "insert":
            b[at:at] = draw(st.binary(max_size=16))
        elif b:
            del b[at : at + draw(st.integers(1, 16))]
    return bytes(b)


def bytes_like(seed: bytes):
    return st.one_of(st.binary(max_size=300), mutated(seed))


# ------------------------------------------------------------------ IDX


def _idx(magic: int, dims: tuple[int, ...]) -> bytes:
    payload = (np.arange(int(np.prod(dims))) % 256).astype(np.uint8).reshape(dims)
    return idx_bytes(payload, magic)


IDX_IMAGES = _idx(IMAGES_MAGIC, (3, 4, 5))
IDX_LABELS = _idx(LABELS_MAGIC, (7,))


@FAST
@given(data=st.one_of(bytes_like(IDX_IMAGES), bytes_like(IDX_LABELS)), gz=st.booleans(),
       images=st.booleans())
def test_read_idx_loads_or_refuses(tmp_path_factory, data, gz, images):
    TRIED["read_idx"] += 1
    path = tmp_path_factory.mktemp("idx") / "f-idx-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    magic = IMAGES_MAGIC if images else LABELS_MAGIC
    a = outcome(read_idx, path, expect_magic=magic)
    if a is not None:
        assert a.dtype == np.uint8 and a.ndim == (3 if images else 1)


@FAST
@given(data=mutated(gzip.compress(IDX_IMAGES)))
def test_read_idx_mutated_gzip(tmp_path_factory, data):
    TRIED["read_idx gzip"] += 1
    path = tmp_path_factory.mktemp("idx") / "f-idx3-ubyte.gz"
    path.write_bytes(data)
    outcome(read_idx, path, expect_magic=IMAGES_MAGIC)


# ------------------------------------------------------------------ images


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


_digit = np.zeros((24, 24), np.uint8)
_digit[4:20, 11:14] = 255
IMAGE_SEEDS = [
    _encoded(Image.fromarray(_digit), "PNG"),
    _encoded(Image.fromarray(_digit).convert("RGBA"), "PNG"),
    _encoded(Image.fromarray(_digit), "JPEG"),
    _encoded(Image.fromarray(_digit), "GIF"),
    _encoded(Image.fromarray(_digit), "BMP"),
    _encoded(Image.fromarray(_digit.astype(np.uint16) * 200), "PNG"),
]


@SLOWER
@given(data=st.one_of(st.binary(max_size=200), *[mutated(s) for s in IMAGE_SEEDS]),
       dataset=st.sampled_from(["mnist", "digits"]))
def test_image_files_load_or_refuse(data, dataset):
    TRIED["load_image_file + canvas_to_image"] += 1
    rgba = outcome(load_image_file, data)
    if rgba is None:
        return
    assert rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4
    image = outcome(canvas_to_image, rgba, dataset)
    if image is not None:  # random bytes may decode to nothing drawn; a reading is a real one
        assert image.shape == {"mnist": (28, 28), "digits": (8, 8)}[dataset]
        assert np.isfinite(image).all() and image.min() >= 0 and image.max() > 0


@SLOWER
@given(
    image=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.bool_, np.int32]),
        shape=st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2, 3, 4]))
        | st.tuples(st.integers(1, 40), st.integers(1, 40)),
    ),
    dataset=st.sampled_from(["mnist", "digits"]),
)
def test_canvas_arrays_give_a_reading_or_a_reason(image, dataset):
    TRIED["canvas_to_image arrays"] += 1
    out = outcome(canvas_to_image, image, dataset)
    if out is not None:
        assert out.shape == {"mnist": (28, 28), "digits": (8, 8)}[dataset] and np.isfinite(out).all()


# ------------------------------------------------------------------ configurations

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
GOOD = Experiment(model=ModelConfig(family="cnn", hidden=[32], conv=[ConvBlock()])).to_dict()


@st.composite
def mutated_config(draw):
    """A valid configuration with one field (at any depth) replaced by arbitrary JSON."""
    d = json.loads(json.dumps(GOOD))
    node = d
    path = []
    while isinstance(node, (dict, list)) and node:
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append((node, key))
        node = node[key]
        if draw(st.booleans()):
            break
    parent, key = path[-1]
    parent[key] = draw(json_values)
    return d


@settings(max_examples=400, deadline=None)
@given(d=st.one_of(json_values, mutated_config()))
def test_config_parser_loads_or_refuses(d):
    TRIED["Experiment.from_dict"] += 1
    exp = outcome(Experiment.from_dict, d)
    if exp is not None:
        outcome(exp.validate)  # a ConfigError, never a TypeError from a wrong type


# ------------------------------------------------------------------ run files


def _good_files(tmp_path_factory):
    from saved_runs import record

    from digits_core.config import DataConfig, TrainConfig
    from digits_core.training.jobs import run_experiment

    root = tmp_path_factory.mktemp("good")
    out = {}
    for family in ("numpy-mlp", "torch-mlp"):
        e = Experiment(DataConfig(normalization="standardize"), ModelConfig(family=family, hidden=[4]),
                       TrainConfig(epochs=1))
        out[family] = record(run_experiment(e), root)
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    runs = _good_files(tmp_path_factory)
    np_run, pt_run = runs["numpy-mlp"], runs["torch-mlp"]
    return {
        "meta.json": (np_run / "meta.json").read_bytes(),
        "experiment.json": (np_run / "experiment.json").read_bytes(),
        "history.json": (np_run / "history.json").read_bytes(),
        "normalizer.npz": (np_run / "normalizer.npz").read_bytes(),
        "weights.npz": (np_run / "weights.npz").read_bytes(),
        "weights.pt": (pt_run / "weights.pt").read_bytes(),
        "first_layer_before.npy": (np_run / "first_layer_before.npy").read_bytes(),
    }


READERS = {
    "meta.json": readers.read_meta,
    "experiment.json": readers.read_experiment,
    "history.json": readers.read_history,
    "normalizer.npz": readers.read_normalizer,
    "weights.npz": readers.read_weights_file,
    "weights.pt": readers.read_weights_file,
    "first_layer_before.npy": readers.read_first_layer,
}


@pytest.mark.parametrize("name", list(READERS))
def test_run_file_readers_load_or_refuse(name, seeds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / name
    examples = 40 if name == "weights.pt" else 80

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=bytes_like(seeds[name]))
    def check(data):
        TRIED[f"readers {name}"] += 1
        path.write_bytes(data)
        value = outcome(READERS[name], path)
        if name == "history.json" and value is not None:
            assert isinstance(value, History)

    check()


@settings(max_examples=150, deadline=None)
@given(d=st.one_of(json_values, st.dictionaries(st.sampled_from(
    ["weights", "image_shape", "name", "status", "test_acc", "created", "steps", "loss",
     "test_acc", "epochs", "train_acc", "epoch_loss", "eta", "message"]), json_values, max_size=8)))
def test_meta_and_history_from_arbitrary_json(tmp_path_factory, d):
    TRIED["readers meta/history JSON values"] += 1
    folder = tmp_path_factory.mktemp("json")
    (folder / "meta.json").write_text(json.dumps(d))
    (folder / "history.json").write_text(json.dumps(d))
    meta = outcome(readers.read_meta, folder / "meta.json")
    if meta is not None:
        assert meta.weights in readers.WEIGHTS_FILES
    outcome(readers.read_history, folder / "history.json")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=120), st.from_regex(r"[A-Za-z0-9_.\-/\\]{0,110}", fullmatch=True)))
def test_url_session_ids_are_safe_or_refused(text):
    TRIED["session id from a URL"] += 1
    if SID_PATTERN.fullmatch(text):
        assert text.replace("-", "").replace("_", "").isalnum() and 8 <= len(text) <= 64


