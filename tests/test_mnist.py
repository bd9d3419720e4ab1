"""digits_core.data.mnist: the strict IDX reader, the loader's checks and cache, and
fetch_mnist against throwaway local HTTP servers (no internet needed)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from digits_core.data import mnist
from digits_core.data.mnist import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    MNIST_FILES,
    fetch_mnist,
    find_mnist_files,
    load_mnist,
    mnist_available,
    mnist_home,
    read_idx,
)
from digits_core.errors import DataError, DownloadError

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"
from idx_files import idx_bytes, write_mnist  # noqa: E402

KEYS = ("train-images", "train-labels", "test-images", "test-labels")
GZ_NAME = {key: MNIST_FILES[key][0] for key in KEYS}
RAW_NAME = {key: name.removesuffix(".gz") for key, name in GZ_NAME.items()}
N_TRAIN, N_TEST = 20, 10


def put(folder: Path, key: str, raw: bytes, *, gz: bool) -> Path:
    """Write one MNIST file under its gz or decompressed name; mtime=0 keeps gz bytes stable."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (GZ_NAME[key] if gz else RAW_NAME[key])
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    # No test may touch the real ~/.cache or go through a proxy to reach 127.0.0.1.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DIGITLAB_DATA_HOME", raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    """A tiny MNIST: 20 train and 10 test images (28x28 uint8), every class present."""
    rng = np.random.default_rng(0)
    return {
        "train-images": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "test-images": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "test-labels": (np.arange(N_TEST)[::-1] % 10).astype(np.uint8),
    }


@dataclass
class Source:
    folder: Path  # the four valid .gz files
    files: dict[str, tuple[str, int, str]]  # a `files=` table for fetch_mnist


@pytest.fixture
def source(tmp_path, arrays) -> Source:
    folder = write_mnist(tmp_path / "source", arrays)
    files = {}
    for key in KEYS:
        data = (folder / GZ_NAME[key]).read_bytes()
        files[key] = (GZ_NAME[key], len(data), hashlib.sha256(data).hexdigest())
    return Source(folder, files)


@dataclass
class Mirror:
    url: str  # base URL ending in "/"
    requests: list[str]  # paths asked for, in order


@pytest.fixture
def serve():
    """serve(directory) -> Mirror: a ThreadingHTTPServer on 127.0.0.1 in a daemon thread."""
    servers = []

    def start(directory: Path) -> Mirror:
        requests: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, format, *args):
                pass  # keep pytest output clean

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return Mirror(f"http://127.0.0.1:{server.server_port}/", requests)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refused_url():
    """A port that is bound but not listening, so every connect is refused; no race."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


@pytest.fixture
def silent_url():
    """A port that accepts connections (kernel backlog) but never answers: a stalled mirror."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def listing(folder: Path) -> list[str]:
    """Every entry in `folder`, hidden temp files included."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# ---------------------------------------------------------------- fetch_mnist


def test_fetch_downloads_verifies_and_reports_progress(
    tmp_path, source, serve, arrays, monkeypatch
):
    monkeypatch.setattr(mnist, "_CHUNK", 1024)  # several chunks per file, so progress moves
    mirror = serve(source.folder)
    calls = []
    out = fetch_mnist(
        data_home=tmp_path / "cache",
        mirrors=(mirror.url,),
        files=source.files,
        progress=lambda *args: calls.append(args),
    )
    assert out == tmp_path / "cache" / "mnist"
    assert listing(out) == sorted(GZ_NAME.values())
    for key in KEYS:
        name, size, _ = source.files[key]
        assert (out / name).read_bytes() == (source.folder / name).read_bytes()
        done = [d for n, d, total in calls if n == name and total == size]
        assert len(done) > size // 1024
        assert done == sorted(done) and len(set(done)) == len(done)
        assert done[0] == 0 and done[-1] == size
    x_tr, y_tr, x_te, y_te = load_mnist(out)
    np.testing.assert_array_equal(x_tr, arrays["train-images"])
    np.testing.assert_array_equal(y_te, arrays["test-labels"])


def test_fetch_skips_files_already_present(tmp_path, source, serve, refused_url):
    mirror = serve(source.folder)
    out = fetch_mnist(data_home=tmp_path, mirrors=(mirror.url,), files=source.files)
    assert len(mirror.requests) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    calls = []
    again = fetch_mnist(
        data_home=tmp_path,
        mirrors=(mirror.url, refused_url),
        files=source.files,
        progress=lambda *args: calls.append(args),
    )
    assert again == out
    assert len(mirror.requests) == 4
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    assert sorted(calls) == sorted((name, size, size) for name, size, _ in source.files.values())


def test_fetch_replaces_a_cached_file_that_fails_verification(tmp_path, source, serve):
    name = GZ_NAME["train-labels"]
    stale = tmp_path / "mnist" / name
    stale.parent.mkdir()
    stale.write_bytes(b"not the real file")
    mirror = serve(source.folder)
    fetch_mnist(data_home=tmp_path, mirrors=(mirror.url,), files=source.files)
    assert stale.read_bytes() == (source.folder / name).read_bytes()
    assert mirror.requests.count(f"/{name}") == 1


@pytest.mark.parametrize("corruption", ["same-size-other-bytes", "extra-bytes", "short"])
def test_fetch_refuses_a_wrong_file_and_leaves_nothing(tmp_path, source, serve, corruption):
    bad = tmp_path / "bad"
    bad.mkdir()
    for key in KEYS:
        (bad / GZ_NAME[key]).write_bytes((source.folder / GZ_NAME[key]).read_bytes())
    victim = bad / GZ_NAME["train-images"]  # the first file fetched, so the cache stays empty
    data = bytearray(victim.read_bytes())
    if corruption == "same-size-other-bytes":
        data[100] ^= 0xFF
    elif corruption == "extra-bytes":
        data += b"\0" * 10
    else:
        del data[-10:]
    victim.write_bytes(bytes(data))
    mirror = serve(bad)
    with pytest.raises(DownloadError) as err:
        fetch_mnist(data_home=tmp_path / "cache", mirrors=(mirror.url,), files=source.files)
    msg = str(err.value)
    expected = "checksum" if corruption == "same-size-other-bytes" else "size mismatch"
    assert expected in msg and GZ_NAME["train-images"] in msg and mirror.url in msg
    assert "\n" not in msg
    assert listing(tmp_path / "cache" / "mnist") == []


@pytest.mark.parametrize("first", ["http-404", "refused", "stalled"])
def test_fetch_moves_on_to_the_next_mirror(
    tmp_path, source, serve, refused_url, silent_url, first
):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_url = {"http-404": None, "refused": refused_url, "stalled": silent_url}[first]
    bad_url = bad_url or serve(empty).url
    good = serve(source.folder)
    # 3 s: long enough for a local server on a busy machine; a stalled mirror costs it once
    out = fetch_mnist(
        data_home=tmp_path / "cache", mirrors=(bad_url, good.url), files=source.files, timeout=3
    )
    for name, _, _ in source.files.values():
        assert (out / name).read_bytes() == (source.folder / name).read_bytes()
    assert listing(out) == sorted(GZ_NAME.values())


def test_fetch_fails_fast_when_every_mirror_fails(
    tmp_path, source, serve, refused_url, silent_url
):
    empty = tmp_path / "empty"
    empty.mkdir()
    mirror = serve(empty)
    not_found = mirror.url
    with pytest.raises(DownloadError) as err:
        fetch_mnist(
            data_home=tmp_path / "cache",
            mirrors=(not_found, refused_url, silent_url),
            files=source.files,
            timeout=3,  # long enough for a local server on a busy machine
        )
    # Fast by what it does, not by a clock: the first file that no mirror has ends the
    # download (each mirror asked once, the stalled one given up on by the timeout).
    first = next(iter(source.files.values()))[0]
    assert mirror.requests == [f"/{first}"]
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{not_found} (HTTP 404)" in msg
    assert f"{refused_url} (Connection refused)" in msg
    assert f"{silent_url} (timed out)" in msg
    assert all(name in msg for name in GZ_NAME.values())
    assert str(tmp_path / "cache" / "mnist") in msg
    assert listing(tmp_path / "cache" / "mnist") == []


def test_fetch_interrupted_leaves_no_partial_file(tmp_path, source, serve, monkeypatch):
    monkeypatch.setattr(mnist, "_CHUNK", 1024)
    mirror = serve(source.folder)

    def interrupt(name, done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_mnist(
            data_home=tmp_path, mirrors=(mirror.url,), files=source.files, progress=interrupt
        )
    assert listing(tmp_path / "mnist") == []


def test_fetch_removes_stale_temp_files_only(tmp_path, source, serve):
    cache = tmp_path / "mnist"
    cache.mkdir()
    stale = cache / f".{GZ_NAME['train-images']}.abc123.part"
    fresh = cache / f".{GZ_NAME['test-images']}.def456.part"
    stale.write_bytes(b"left by a killed process")
    fresh.write_bytes(b"maybe another fetch in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fetch_mnist(data_home=tmp_path, mirrors=(serve(source.folder).url,), files=source.files)
    assert not stale.exists() and fresh.exists()


def test_data_home_env_var_is_honoured(tmp_path, source, serve, monkeypatch):
    assert mnist_home() == tmp_path / "home" / ".cache" / "digitlab"
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "env-home"))
    assert mnist_home() == tmp_path / "env-home"
    assert mnist_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert not mnist_available()[0]
    out = fetch_mnist(mirrors=(serve(source.folder).url,), files=source.files)
    assert out == tmp_path / "env-home" / "mnist"
    assert mnist_available() == (True, str(out))
    assert len(load_mnist()[0]) == N_TRAIN


# ---------------------------------------------------------------- reader and loader


def _wrong_magic(folder, arrays, gz):
    return put(folder, "train-labels", idx_bytes(arrays["train-labels"], IMAGES_MAGIC), gz=gz)


def _truncated(folder, arrays, gz):
    return put(folder, "train-images", idx_bytes(arrays["train-images"])[:-100], gz=gz)


def _trailing(folder, arrays, gz):
    return put(folder, "test-images", idx_bytes(arrays["test-images"]) + b"\0" * 7, gz=gz)


def _short_header(folder, arrays, gz):
    return put(folder, "test-labels", idx_bytes(arrays["test-labels"])[:6], gz=gz)


def _tiny_header(folder, arrays, gz):
    return put(folder, "test-labels", b"\x00\x00", gz=gz)


def _count_mismatch(folder, arrays, gz):
    put(folder, "train-labels", idx_bytes(arrays["train-labels"][:-1]), gz=gz)
    return folder / (GZ_NAME if gz else RAW_NAME)["train-images"]


def _label_ten(folder, arrays, gz):
    labels = arrays["test-labels"].copy()
    labels[3] = 10
    return put(folder, "test-labels", idx_bytes(labels), gz=gz)


def _wrong_image_size(folder, arrays, gz):
    return put(folder, "train-images", idx_bytes(np.zeros((N_TRAIN, 32, 32), np.uint8)), gz=gz)


def _missing_file(folder, arrays, gz):
    path = folder / (GZ_NAME if gz else RAW_NAME)["test-labels"]
    path.unlink()
    return folder / GZ_NAME["test-labels"]  # the message names the canonical .gz file


CORRUPTIONS = {
    # case: (mutate(folder, arrays, gz) -> path the message must name, words it must hold)
    "wrong-magic": (_wrong_magic, "wrong magic number 2051"),
    "truncated": (_truncated, f"truncated: expected {N_TRAIN * 784} pixel bytes"),
    "trailing-bytes": (_trailing, "7 trailing bytes"),
    "header-too-short": (_short_header, "header too short: expected 8 bytes, found 6"),
    "header-shorter-than-magic": (_tiny_header, "header too short"),
    "count-mismatch": (_count_mismatch, f"holds {N_TRAIN} images but"),
    "label-10": (_label_ten, "label 10 at index 3 is outside 0..9"),
    "not-28x28": (_wrong_image_size, "32x32"),
    "missing-file": (_missing_file, "fetch-mnist"),
}


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", CORRUPTIONS)
def test_loader_refuses_bad_files(tmp_path, arrays, case, gz):
    folder = write_mnist(tmp_path / "m", arrays, gz=gz)
    mutate, words = CORRUPTIONS[case]
    culprit = mutate(folder, arrays, gz)
    with pytest.raises(DataError) as err:
        load_mnist(folder)
    msg = str(err.value)
    assert culprit.name in msg and words in msg
    assert "\n" not in msg


@pytest.mark.parametrize("damage", ["cut-short", "garbled", "bad-crc"])
def test_loader_refuses_corrupt_gzip(tmp_path, arrays, damage):
    folder = write_mnist(tmp_path / "m", arrays)
    path = folder / GZ_NAME["train-images"]
    data = bytearray(path.read_bytes())
    if damage == "cut-short":
        del data[len(data) // 2 :]
    elif damage == "garbled":
        data[20:60] = b"\xff" * 40
    else:
        data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_mnist(folder)
    msg = str(err.value)
    assert msg.startswith(f"{path.name}: corrupt gzip") and "\n" not in msg


def test_empty_or_absent_folder_names_all_four_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "absent"):
        ok, msg = mnist_available(folder)
        assert not ok
        with pytest.raises(DataError) as err:
            load_mnist(folder)
        assert str(err.value) == msg
        assert all(name in msg for name in GZ_NAME.values())
        assert str(folder) in msg and "python -m digits_core fetch-mnist" in msg


def test_missing_file_message_names_only_what_is_missing(tmp_path, arrays):
    folder = write_mnist(tmp_path / "m", arrays)
    (folder / GZ_NAME["test-images"]).unlink()
    ok, msg = mnist_available(folder)
    assert not ok and GZ_NAME["test-images"] in msg and str(folder) in msg
    assert GZ_NAME["train-images"] not in msg


@pytest.mark.parametrize("naming", ["gz", "raw", "dotted"])
def test_gz_and_decompressed_files_load_identically(tmp_path, arrays, naming):
    folder = write_mnist(tmp_path / "m", arrays, gz=naming == "gz")
    if naming == "dotted":  # "train-images.idx3-ubyte", as some unpackers write it
        for name in RAW_NAME.values():
            (folder / name).rename(folder / name.replace("-idx", ".idx"))
    assert mnist_available(folder) == (True, str(folder))
    x_tr, y_tr, x_te, y_te = load_mnist(folder)
    assert x_tr.shape == (N_TRAIN, 28, 28) and x_tr.dtype == np.uint8
    assert y_tr.shape == (N_TRAIN,) and y_tr.dtype == np.int64
    assert x_te.shape == (N_TEST, 28, 28) and y_te.dtype == np.int64
    for got, key in zip((x_tr, y_tr, x_te, y_te), KEYS):
        np.testing.assert_array_equal(got, arrays[key])


def test_read_idx_detects_gzip_by_content_not_name(tmp_path, arrays):
    raw = idx_bytes(arrays["train-images"])
    gz_named_plain = tmp_path / "images"
    gz_named_plain.write_bytes(gzip.compress(raw))
    plain_named_gz = tmp_path / "images.gz"
    plain_named_gz.write_bytes(raw)
    for path in (gz_named_plain, plain_named_gz):
        out = read_idx(path, expect_magic=IMAGES_MAGIC)
        assert out.shape == (N_TRAIN, 28, 28) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, arrays["train-images"])
    labels_path = put(tmp_path, "train-labels", idx_bytes(arrays["train-labels"]), gz=True)
    labels = read_idx(labels_path, expect_magic=LABELS_MAGIC)
    assert labels.shape == (N_TRAIN,) and labels.dtype == np.uint8


def test_read_idx_refuses_a_header_announcing_gigabytes(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(struct.pack(">IIII", IMAGES_MAGIC, 2**31, 28, 28) + b"\0" * 784)
    with pytest.raises(DataError, match=r"huge\.idx: the header announces 1,683,627,180,032 pixel bytes"):
        read_idx(path, expect_magic=IMAGES_MAGIC)


def test_find_mnist_files_prefers_gz(tmp_path, arrays):
    folder = write_mnist(tmp_path / "m", arrays, gz=True)
    write_mnist(folder, arrays, gz=False)
    assert find_mnist_files(folder) == {key: folder / GZ_NAME[key] for key in KEYS}


def test_loaded_arrays_are_read_only_and_cached(tmp_path, arrays):
    folder = write_mnist(tmp_path / "m", arrays)
    first = load_mnist(folder)
    for a in first:
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a.flat[0] = 1
        with pytest.raises(ValueError):
            a.flags.writeable = True
    second = load_mnist(folder)
    assert all(np.shares_memory(a, b) for a, b in zip(first, second))


def test_cache_notices_a_changed_file(tmp_path, arrays):
    folder = write_mnist(tmp_path / "m", arrays)
    assert load_mnist(folder)[1][0] == 0
    labels = arrays["train-labels"].copy()
    labels[0] = 7
    path = put(folder, "train-labels", idx_bytes(labels), gz=True)
    later = time.time() + 5  # a rewrite within the filesystem's mtime tick must still count
    os.utime(path, (later, later))
    assert load_mnist(folder)[1][0] == 7


def test_real_mnist():
    if not REAL_MNIST.is_dir():
        pytest.skip(f"the original MNIST files are not at {REAL_MNIST}")
    x_tr, y_tr, x_te, y_te = load_mnist(REAL_MNIST)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert x_tr.dtype == x_te.dtype == np.uint8
    assert y_tr.shape == (60000,) and y_te.shape == (10000,)
    assert y_tr.dtype == y_te.dtype == np.int64
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(y_tr).tolist() == train_counts
    assert np.bincount(y_te).tolist() == test_counts
    assert not x_tr.flags.writeable and not y_te.flags.writeable
    # The files on disk match the checksums fetch_mnist verifies downloads against.
    for name, size, sha256 in MNIST_FILES.values():
        data = (REAL_MNIST / name).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha256
