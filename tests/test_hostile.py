"""A hostile corpus: each file an attacker or an accident could put in a run folder or hand
to `predict`, and the exact outcome: one line naming the file, refused, nothing executed."""

import gzip
import io
import json
import shutil
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hard_drawn_digits import draw
from PIL import Image
from repo_paths import REPO
from saved_runs import record

from digits_core.analysis.predict import predict_canvas
from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.data.idx import IMAGES_MAGIC, read_idx
from digits_core.errors import ConfigError, DataError, DigitLabError, DrawingError, RunError
from digits_core.images.drawing import canvas_to_image
from digits_core.images.imagefile import load_image_file
from digits_core.serve.runner import preflight
from digits_core.store import readers
from digits_core.store.pretrained import load_ready_made
from digits_core.training.jobs import run_experiment

PLAIN_TENSORS = "weights.pt is not a plain tensor file (it holds code or objects); refused"


class Payload:
    """Unpickling this would create `marker`: harmless, and proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def assert_one_line(e: BaseException) -> str:
    text = str(e)
    assert isinstance(e, DigitLabError), type(e)
    assert text and "\n" not in text and len(text) < 250, text
    assert "weights_only" not in text and "Traceback" not in text and "allow_pickle" not in text
    return text


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two tiny saved runs (NumPy MLP and torch MLP) to copy and damage."""
    root = tmp_path_factory.mktemp("good_runs")
    out = {}
    for family in ("numpy-mlp", "torch-mlp"):
        e = Experiment(DataConfig(), ModelConfig(family=family, hidden=[8]), TrainConfig(epochs=1))
        out[family] = record(run_experiment(e), root)
    return out


@pytest.fixture
def run_copy(saved, tmp_path):
    def copy(family="torch-mlp") -> Path:
        return Path(shutil.copytree(saved[family], tmp_path / saved[family].name))

    return copy


def refused(fn, *args, **kwargs) -> str:
    with pytest.raises(DigitLabError) as info:
        fn(*args, **kwargs)
    return assert_one_line(info.value)


def test_good_runs_pass(saved):
    for family, path in saved.items():
        meta = readers.check_run(path)
        exp = readers.read_experiment(path / "experiment.json")
        state = readers.read_weights_file(readers.weights_path(path, meta, exp))
        assert meta.family == family and state and all(v.dtype == np.float32 for v in state.values())
        assert readers.read_first_layer(path / "first_layer_before.npy").ndim == 2


# ------------------------------------------------------------------ pickles


def test_pickle_in_weights_pt_is_refused_and_never_runs(run_copy, tmp_path):
    run = run_copy("torch-mlp")
    marker = tmp_path / "MARKER"
    torch.save({"w": Payload(marker)}, run / "weights.pt")
    assert refused(readers.read_weights_file, run / "weights.pt") == PLAIN_TENSORS
    assert refused(readers.check_run, run) == PLAIN_TENSORS  # listed as broken
    assert not marker.exists()


def test_pickle_in_normalizer_npz_is_refused_and_never_runs(run_copy, tmp_path):
    run = run_copy("numpy-mlp")
    marker = tmp_path / "MARKER"
    with open(run / "normalizer.npz", "wb") as f:
        np.savez(f, mode=np.array([Payload(marker)], dtype=object), max_value=np.array(16.0))
    expected = "normalizer.npz is not a plain array file (it holds code or objects); refused"
    assert refused(readers.read_normalizer, run / "normalizer.npz") == expected
    assert refused(readers.check_run, run) == expected
    assert not marker.exists()


def test_pickle_in_weights_npz_is_refused(run_copy, tmp_path):
    run = run_copy("numpy-mlp")
    marker = tmp_path / "MARKER"
    with open(run / "weights.npz", "wb") as f:
        np.savez(f, w=np.array([Payload(marker)], dtype=object))
    expected = "weights.npz is not a plain array file (it holds code or objects); refused"
    assert refused(readers.read_weights_file, run / "weights.npz") == expected
    assert not marker.exists()


# ------------------------------------------------------------------ JSON files


def test_truncated_history_names_the_file_and_keeps_the_weights(run_copy):
    run = run_copy("torch-mlp")
    text = (run / "history.json").read_text()
    (run / "history.json").write_text(text[: len(text) // 2])
    message = refused(readers.check_run, run)
    assert message.startswith("history.json is truncated (line 1, column ")
    meta = readers.read_meta(run / "meta.json")
    exp = readers.read_experiment(run / "experiment.json")
    assert readers.read_weights_file(readers.weights_path(run, meta, exp))


def test_oversized_json_is_refused_unread(run_copy):
    run = run_copy()
    (run / "meta.json").write_text("{" + " " * 10 * 2**20 + "}")
    tracemalloc.start()
    message = refused(readers.read_meta, run / "meta.json")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message == "meta.json is 10.0 MB, over the 64 KB such a file may hold; refused"
    assert peak < 2**20


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"name": "cut', "experiment.json is truncated (line 1, column 10)"),
        ("[" * 100_000 + "]" * 100_000, "experiment.json is not JSON this program reads (nested too deep or a huge number)"),
        ('{"train": {"epochs": 1' + "0" * 5000 + "}}", "experiment.json is not JSON this program reads (nested too deep or a huge number)"),
        ("[1, 2]", "experiment.json must hold a JSON object, got a list of 2 entries"),
        ('{"model": {"hidden": [4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096]}}',
         "experiment.json: at most 8 hidden layers, got 9"),
        ('{"model": {"conv": [{"channels": {"$": 1}}]}}',
         "experiment.json: model.conv[0].channels must be a whole number, got an object of 1 entries"),
        ('{"train": {"lr": NaN}}', "experiment.json: train.lr must be a finite number, got nan"),
        ("\xff\xfe{}", "experiment.json is not UTF-8 text"),
    ],
    ids=["truncated", "nested", "huge-int", "list", "9-layers", "nested-garbage", "nan", "latin-1"],
)
def test_hostile_experiment_json(run_copy, text, expected):
    run = run_copy()
    (run / "experiment.json").write_bytes(text.encode("latin-1"))
    assert refused(readers.read_experiment, run / "experiment.json") == expected


@pytest.mark.parametrize(
    "weights",
    ["../../etc/passwd", "/etc/passwd", "weights.npz/../../x", "weights.pt\x00", "", None, ["weights.pt"]],
)
def test_path_like_names_in_meta_are_never_paths(run_copy, weights):
    run = run_copy()
    meta = json.loads((run / "meta.json").read_text())
    meta["weights"] = weights
    (run / "meta.json").write_text(json.dumps(meta))
    message = refused(readers.read_meta, run / "meta.json")
    assert message.startswith("meta.json: weights must be weights.npz or weights.pt, got ")
    assert message.endswith("; refused")


def test_a_name_in_meta_is_only_a_label(run_copy):
    run = run_copy()
    meta = json.loads((run / "meta.json").read_text())
    meta["name"] = "../../../../tmp/evil"
    (run / "meta.json").write_text(json.dumps(meta))
    assert readers.check_run(run).name == "../../../../tmp/evil"  # kept as text, never opened


def test_meta_naming_the_other_weights_file(run_copy):
    run = run_copy("torch-mlp")
    meta = json.loads((run / "meta.json").read_text())
    meta["weights"] = "weights.npz"
    (run / "meta.json").write_text(json.dumps(meta))
    assert refused(readers.check_run, run) == (
        "meta.json names weights.npz, but a torch-mlp run keeps weights.pt"
    )


def test_history_with_wrong_types(run_copy):
    run = run_copy()
    h = json.loads((run / "history.json").read_text())
    h["loss"][0] = "1.0"
    (run / "history.json").write_text(json.dumps(h))
    assert refused(readers.read_history, run / "history.json") == (
        "history.json: loss must be a number, got '1.0'"
    )
    h["loss"][0], h["test_acc"][0], h["status"] = float("nan"), None, "diverged"
    (run / "history.json").write_text(json.dumps(h))
    assert readers.read_history(run / "history.json").status == "diverged"


# ------------------------------------------------------------------ arrays and links


def test_weights_link_to_a_server_file_is_refused(run_copy):
    run = run_copy("torch-mlp")
    (run / "weights.pt").unlink()
    (run / "weights.pt").symlink_to("/etc/passwd")
    assert refused(readers.check_run, run) == "weights.pt is a link, not a file; refused"


def test_npz_zip_bomb_is_refused_from_its_directory(run_copy):
    run = run_copy("numpy-mlp")
    with zipfile.ZipFile(run / "normalizer.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("mode.npy", "w") as f:
            f.write(b"\0" * 3 * 2**20)
    assert (run / "normalizer.npz").stat().st_size < 20_000
    assert refused(readers.read_normalizer, run / "normalizer.npz") == (
        "normalizer.npz unpacks to 3.0 MB, over the 1.0 MB such a file may hold; refused"
    )


def test_npy_header_announcing_gigabytes_allocates_nothing(run_copy):
    run = run_copy("numpy-mlp")
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 12)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    (run / "first_layer_before.npy").write_bytes(buf.getvalue() + b"\0" * 64)
    tracemalloc.start()
    message = refused(readers.read_first_layer, run / "first_layer_before.npy")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message == (
        "first_layer_before.npy announces an array of 16384.0 MB, more than the file holds; refused"
    )
    assert peak < 2**20


def test_normalizer_of_the_wrong_shape(run_copy):
    run = run_copy("numpy-mlp")
    with open(run / "normalizer.npz", "wb") as f:
        np.savez(f, mode=np.array("standardize"), max_value=np.array(16.0),
                 mean=np.zeros((28, 28), np.float32), std=np.ones((28, 28), np.float32))
    assert refused(readers.check_run, run) == "normalizer.npz: mean is (28, 28), the images are (8, 8)"


# ------------------------------------------------------------------ URL values


@pytest.mark.parametrize("text", ["..", ".", ".tmp-abc", "a/b", "../elsewhere", "a\\b", "", "x" * 101, "ä"])
def test_run_names_that_are_no_run_folder_are_refused(tmp_path, text):
    """A name from a URL or a form never reaches a folder outside the runs folder."""
    from digits_core.serve.runner import JobRunner

    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    runner = JobRunner(tmp_path / "runs")
    for change in (lambda: runner.rename(text, "x", by="someone"), lambda: runner.rename(text, "x"),
                   lambda: runner.publish(text, teacher=True), lambda: runner.delete(text)):
        with pytest.raises(RunError):
            change()
    assert (tmp_path / "elsewhere").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "runs"]


def test_session_ids():
    from dashboard.state import SID_PATTERN

    assert SID_PATTERN.fullmatch("0b6c1c2e-6a3b-4b4e-9a57-5e1f5b1c2d3e")
    for bad in ["short", "a" * 65, "../../../etc", "abc def ghi", "0b6c1c2e\n"]:
        assert not SID_PATTERN.fullmatch(bad)


# ------------------------------------------------------------------ images and IDX


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _with_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG claiming another size in its IHDR (the CRC fixed so readers trust it)."""
    ihdr = png[12:29]  # b"IHDR" + 13 bytes
    body = b"IHDR" + struct.pack(">II", width, height) + ihdr[12:]
    return png[:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


def test_png_decompression_bomb_is_refused_from_the_header():
    bomb = _with_size(_png(Image.new("L", (64, 64))), 13000, 13000)
    tracemalloc.start()
    with pytest.raises(DrawingError) as info:
        load_image_file(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(info.value) == "the file is 13000x13000 pixels; at most 4096 pixels a side are read"
    assert peak < 2**20


def test_png_over_pils_own_bomb_limit_gets_the_same_rule():
    bomb = _with_size(_png(Image.new("L", (64, 64))), 20000, 20000)
    with pytest.raises(DrawingError) as info:
        load_image_file(bomb)
    assert str(info.value) == (
        "the file has more than 4096x4096 pixels; at most 4096 pixels a side are read"
    )


def test_a_real_highly_compressed_png_within_limits_is_read():
    png = _png(Image.new("L", (4096, 4096), 255))
    assert len(png) < 100_000
    assert canvas_to_image(load_image_file(png), "mnist") is None  # blank: no digit


def test_thin_strip_is_refused_by_default_and_readable_when_allowed(tmp_path):
    strip = np.full((3, 20000), 255, np.uint8)
    strip[:, 5000:15000] = 0
    path = tmp_path / "strip.png"
    Image.fromarray(strip).save(path)
    with pytest.raises(DrawingError) as info:
        load_image_file(path)
    assert str(info.value) == "strip.png is 20000x3 pixels; at most 4096 pixels a side are read"
    # the drawing pipeline itself copes with the shape (it used to raise ValueError)
    for dataset, shape in (("mnist", (28, 28)), ("digits", (8, 8))):
        assert canvas_to_image(load_image_file(path, max_side=20000), dataset).shape == shape


@pytest.fixture(scope="module")
def ready_made():
    run = load_ready_made()
    assert run is not None, "the ready-made model is not installed"
    return run


def _gif(frames) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


DEGENERATE = {
    "1x1": _encoded(Image.new("L", (1, 1)), "PNG"),
    "blank": _encoded(Image.new("RGB", (280, 280), "white"), "PNG"),
    "transparent": _encoded(Image.new("RGBA", (280, 280), (0, 0, 0, 0)), "PNG"),
    "16-bit": _encoded(Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16), "PNG"),
    "cmyk": _encoded(Image.new("CMYK", (64, 64), (0, 0, 0, 255)), "JPEG"),
    "palette": _encoded(Image.new("P", (64, 64), 3), "PNG"),
    "animated": _gif([Image.new("L", (64, 64), 0), Image.new("L", (64, 64), 255)]),
    "truncated": _encoded(Image.new("L", (64, 64), 9), "PNG")[:60],
    "not an image": b"%PDF-1.4 hello",
}


# What each degenerate file is read as: nothing drawn (a page says "the canvas is empty"),
# an image, or a one-line refusal.
NOTHING_DRAWN = {"1x1", "blank", "transparent", "cmyk", "palette"}  # one colour each
REFUSED = {"truncated", "not an image", "animated"}  # an animation: one frame, please


@pytest.mark.parametrize("name", DEGENERATE)
@pytest.mark.parametrize("dataset", ["mnist", "digits"])
def test_degenerate_images_get_a_reading_or_a_reason(name, dataset):
    try:
        image = canvas_to_image(load_image_file(DEGENERATE[name]), dataset)
    except DrawingError as e:
        assert name in REFUSED
        assert_one_line(e)
        return
    assert name not in REFUSED
    if name in NOTHING_DRAWN:
        assert image is None
    else:  # the 16-bit ramp: a real picture, at the model's size and in its range
        assert image.shape == {"mnist": (28, 28), "digits": (8, 8)}[dataset]
        assert image.max() > image.min() >= 0


def _drawn_3(seed: int) -> np.ndarray:
    """A hand-drawn 3 as dark ink on white paper, (280, 280) uint8."""
    rgba = draw(3, "round", np.random.default_rng(seed))
    return 255 - rgba[..., 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_drawn_3_saved_as_16_bit_palette_or_cmyk_is_read_as_3(seed, ready_made):
    """What the upload promises: 16-bit, palette and CMYK files are converted, not refused
    and not read as nothing. The lossless ones give the very image the 8-bit file gives;
    all are read as the 3 they show."""
    paper = _drawn_3(seed)
    files = {
        "8-bit": _encoded(Image.fromarray(paper), "PNG"),
        "16-bit": _encoded(Image.fromarray(paper.astype(np.uint16) * 257), "PNG"),
        "palette": _encoded(Image.fromarray(paper).convert("P"), "PNG"),
        "cmyk": _encoded(Image.fromarray(paper).convert("CMYK"), "JPEG"),
    }
    assert [Image.open(io.BytesIO(f)).mode for f in files.values()] == ["L", "I;16", "P", "CMYK"]
    plain = canvas_to_image(load_image_file(files["8-bit"]), "mnist")
    for kind in ("16-bit", "palette"):
        assert np.array_equal(canvas_to_image(load_image_file(files[kind]), "mnist"), plain), kind
    for kind, data in files.items():
        assert predict_canvas(ready_made, load_image_file(data)).digit == 3, kind


def test_idx_header_announcing_gigabytes_allocates_nothing(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, 60000, 65536, 65536) + b"\0" * 100))
    tracemalloc.start()
    with pytest.raises(DataError) as info:
        read_idx(path, expect_magic=IMAGES_MAGIC)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "the header announces" in assert_one_line(info.value)
    assert peak < 4 * 2**20


# ------------------------------------------------------------------ preflight


def test_preflight_refuses_8_layers_of_4096_at_batch_8192_on_mnist():
    e = Experiment(
        DataConfig(dataset="mnist", split="official"),
        ModelConfig(family="torch-mlp", hidden=[4096] * 8),
        TrainConfig(batch_size=8192),
    )
    with pytest.raises(ConfigError) as info:
        preflight(e, budget_mb=2048)
    message = assert_one_line(info.value)
    # refused before anything starts, with the size and memory it would need
    assert message.startswith("this model would have 120,725,514 parameters and need about ")
    need = int(message.split("need about ")[1].split(" MB")[0].replace(",", ""))
    assert need > 2048 and "over the cap of 20,000,000 parameters" in message


def test_an_upload_is_read_up_to_5_mb_and_refused_past_it_by_default():
    """The README's default upload cap, as the Draw page calls it (no limits given): a
    drawing padded to exactly 5 MB is read; one byte more is refused, unread, in one line.
    The server's own cap (.streamlit/config.toml) is the same."""
    import tomllib

    from digits_core.images.imagefile import load_upload

    png = _encoded(Image.fromarray(_drawn_3(0)), "PNG")
    at_cap = png + bytes(5 * 2**20 - len(png))  # trailing bytes after IEND: still the same image
    assert load_upload(io.BytesIO(at_cap)).shape == (280, 280, 4)
    with pytest.raises(DrawingError) as info:
        load_upload(io.BytesIO(at_cap + b"\0"))
    assert_one_line(info.value)
    assert "images up to 5 MB are read" in str(info.value)
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 5  # Streamlit's MB: the browser is refused first
