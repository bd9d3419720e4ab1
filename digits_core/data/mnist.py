"""MNIST: read the four original IDX files, and fetch them into a local cache.

Naming follows scikit-learn's datasets: `load_mnist` reads a folder that is already on
disk and never touches the network; `fetch_mnist` downloads into a cache folder under a
data home (`mnist_home()`), verifying every byte against the sha256 of the original
distribution before a file is allowed into the cache.

Images come back as `(N, 28, 28) uint8` in 0..255, labels as `(N,) int64` in 0..9.
Every failure the user can cause (a missing, truncated, corrupt or inconsistent file; no
network) raises a `DataError` or `DownloadError` whose message is one line naming the
file and what to do about it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from digits_core.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from digits_core.errors import DataError, DownloadError
from digits_core.errors import short_reason as _why

__all__ = [
    "DEFAULT_MIRRORS",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "MNIST_FILES",
    "fetch_mnist",
    "find_mnist_files",
    "load_mnist",
    "mnist_available",
    "mnist_home",
    "read_idx",
]

# key -> (file name, size in bytes, sha256) of the original gzip files.
MNIST_FILES: dict[str, tuple[str, int, str]] = {
    "train-images": (
        "train-images-idx3-ubyte.gz",
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels": (
        "train-labels-idx1-ubyte.gz",
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test-images": (
        "t10k-images-idx3-ubyte.gz",
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test-labels": (
        "t10k-labels-idx1-ubyte.gz",
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}

# Tried in order; the sha256 check makes a plain-http mirror as safe as an https one.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

IMAGE_SIZE = (28, 28)

_CHUNK = 1 << 16
_READ_CHUNK = 1 << 20
_USER_AGENT = "digitlab-mnist-fetch"
_TEMP_SUFFIX = ".part"
# A download in progress rewrites its temp file every few ms; one untouched this long was
# left by a killed process and is safe to delete.
_STALE_TEMP_SECONDS = 600

# Stem of each key's file name, and the IDX kind; the users' copies come gzipped, plain,
# or with the "train-images.idx3-ubyte" dot that some unpackers write.
_STEMS = {
    "train-images": ("train-images", "idx3-ubyte"),
    "train-labels": ("train-labels", "idx1-ubyte"),
    "test-images": ("t10k-images", "idx3-ubyte"),
    "test-labels": ("t10k-labels", "idx1-ubyte"),
}

ProgressFn = Callable[[str, int, int], None]


def mnist_home(data_home: str | Path | None = None) -> Path:
    """The download cache root: `data_home`, else `$DIGITLAB_DATA_HOME`, else `~/.cache/digitlab`.

    MNIST lives in `mnist_home() / "mnist"`. Nothing is created here.
    """
    if data_home is None:
        data_home = os.environ.get("DIGITLAB_DATA_HOME") or Path.home() / ".cache" / "digitlab"
    return Path(data_home).expanduser()


def _candidate_names(key: str) -> list[str]:
    stem, kind = _STEMS[key]
    return [f"{stem}-{kind}.gz", f"{stem}-{kind}", f"{stem}.{kind}", f"{stem}.{kind}.gz"]


def _offline_hint(folder: Path, names: list[str]) -> str:
    cache = mnist_home() / "mnist"
    where = "" if folder == cache else f" into {cache}"
    return (
        f"put {_join(names)} (gzipped or decompressed) into {folder}, "
        f"or run `python -m digits_core fetch-mnist` to download them{where}"
    )


def find_mnist_files(folder: str | Path) -> dict[str, Path]:
    """Locate the four MNIST files in `folder`: key ("train-images", ...) -> path.

    Accepts the `.gz` names, the decompressed names and the `train-images.idx3-ubyte`
    variant; the gzip name wins where both are present. Raises DataError saying which
    files to put where when the folder or any file is missing.
    """
    folder = Path(folder).expanduser()
    canonical = [MNIST_FILES[key][0] for key in _STEMS]
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist: {_offline_hint(folder, canonical)}")
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key in _STEMS:
        for name in _candidate_names(key):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            missing.append(MNIST_FILES[key][0])
    if missing:
        raise DataError(f"MNIST files missing from {folder}: {_offline_hint(folder, missing)}")
    return found


def _resolve_folder(folder: str | Path | None) -> Path:
    return mnist_home() / "mnist" if folder is None else Path(folder).expanduser()


def mnist_available(folder: str | Path | None = None) -> tuple[bool, str]:
    """Whether the four files are present, without decoding them.

    Returns `(True, folder)` or `(False, message saying what to put where)`;
    `folder=None` means the download cache.
    """
    folder = _resolve_folder(folder)
    try:
        find_mnist_files(folder)
    except DataError as e:
        return False, str(e)
    return True, str(folder)


# Decoded arrays, keyed by the files' resolved paths, mtimes and sizes: a Streamlit page
# reruns top to bottom on every click, and decoding 60k images takes about a second.
_CACHE: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
_CACHE_ENTRIES = 2  # ~55 MB each; two lets a user compare folders without thrashing
_CACHE_LOCK = threading.Lock()


def load_mnist(
    folder: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The official MNIST split from a folder of IDX files; offline.

    `folder=None` means the download cache, `mnist_home() / "mnist"`.
    Returns `(x_train, y_train, x_test, y_test)`: images `(60000, 28, 28) uint8`,
    labels `(60000,) int64` in 0..9, and the same for the 10000 test images. The arrays
    are read-only views of an in-process cache; copy them before writing.
    Raises DataError when a file is missing, malformed or inconsistent.
    """
    paths = find_mnist_files(_resolve_folder(folder))
    key = _cache_key(paths)
    # Decoding under the lock means concurrent page renders wait for one decode
    # and then share it, instead of each decoding its own copy.
    with _CACHE_LOCK:
        arrays = _CACHE.get(key)
        if arrays is None:
            arrays = _decode(paths)
            _CACHE[key] = arrays
            while len(_CACHE) > _CACHE_ENTRIES:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
    # A view of a read-only base cannot be made writeable again, so no caller can reach
    # the cached bytes even by flipping the flag.
    views = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    return tuple(views)


def _cache_key(paths: Mapping[str, Path]) -> tuple:
    key = []
    for p in paths.values():
        try:
            st = p.stat()
        except OSError as e:
            raise DataError(f"{p.name}: cannot read ({_why(e)})") from None
        key.append((str(p.resolve()), st.st_mtime_ns, st.st_size))
    return tuple(key)


def _decode(paths: Mapping[str, Path]) -> tuple[np.ndarray, ...]:
    out = []
    for split in ("train", "test"):
        img_path, lbl_path = paths[f"{split}-images"], paths[f"{split}-labels"]
        images = read_idx(img_path, expect_magic=IMAGES_MAGIC)
        labels = read_idx(lbl_path, expect_magic=LABELS_MAGIC)
        if images.shape[1:] != IMAGE_SIZE:
            rows, cols = images.shape[1:]
            raise DataError(f"{img_path.name}: images are {rows}x{cols} pixels, expected 28x28")
        if len(images) == 0:
            raise DataError(f"{img_path.name}: holds no images")
        if len(images) != len(labels):
            raise DataError(
                f"{img_path.name} holds {len(images)} images but {lbl_path.name} "
                f"holds {len(labels)} labels"
            )
        bad = np.flatnonzero(labels > 9)
        if bad.size:
            raise DataError(
                f"{lbl_path.name}: label {labels[bad[0]]} at index {bad[0]} is outside 0..9 "
                f"({bad.size} such labels)"
            )
        labels = labels.astype(np.int64)
        images.flags.writeable = False
        labels.flags.writeable = False
        out += [images, labels]
    return tuple(out)


class _MirrorFailed(Exception):
    """One mirror could not deliver one file; `dead` means it did not even answer."""

    def __init__(self, reason: str, *, dead: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.dead = dead


def fetch_mnist(
    *,
    data_home: str | Path | None = None,
    mirrors: tuple[str, ...] = DEFAULT_MIRRORS,
    files: Mapping[str, tuple[str, int, str]] = MNIST_FILES,
    progress: ProgressFn | None = None,
    timeout: float = 10.0,
) -> Path:
    """Download the MNIST files into `mnist_home(data_home) / "mnist"`; return that folder.

    Files already there with the right sha256 are kept. Each missing file is tried on
    each mirror in turn, streamed to a temp file beside its final name, checked for size
    and sha256, then renamed into place, so the cache only ever holds verified files.
    `progress(file_name, done_bytes, total_bytes)` is called as bytes arrive (and once
    with done == total for a file already present). `timeout` (seconds) bounds the
    connect and every read, so an offline machine fails in seconds.
    Raises DownloadError naming the mirrors that failed and why, and the files to put
    where to work offline.
    """
    folder = mnist_home(data_home) / "mnist"
    names = [name for name, _, _ in files.values()]
    offline = f"to work offline, put {_join(names)} into {folder}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {folder} ({_why(e)}); {offline}") from None
    _remove_stale_temps(folder, names)
    dead: dict[str, str] = {}  # mirror -> why it did not answer; not retried for later files
    for name, size, sha256 in files.values():
        final = folder / name
        if final.is_file():
            if _file_matches(final, size, sha256):
                if progress is not None:
                    progress(name, size, size)
                continue
            # A cached file that fails verification would be read by load_mnist as if good.
            try:
                final.unlink(missing_ok=True)
            except OSError as e:
                raise DownloadError(f"cannot remove the unverified {final} ({_why(e)})") from None
        failures = []
        for mirror in mirrors:
            if mirror in dead:
                failures.append(f"{mirror} ({dead[mirror]})")
                continue
            url = mirror if mirror.endswith("/") else mirror + "/"
            try:
                _download(url + name, folder, name, size, sha256, progress, timeout)
                break
            except _MirrorFailed as e:
                failures.append(f"{mirror} ({e.reason})")
                if e.dead:
                    dead[mirror] = e.reason
        else:
            tried = "; ".join(failures) if failures else "no mirrors given"
            raise DownloadError(f"could not download {name}: {tried}; {offline}")
    return folder


def _download(
    url: str,
    folder: Path,
    name: str,
    size: int,
    sha256: str,
    progress: ProgressFn | None,
    timeout: float,
) -> None:
    """Fetch `url` into `folder / name` after checking size and sha256, or raise _MirrorFailed."""
    tmp_path: Path | None = None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            e.close()
            raise _MirrorFailed(f"HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise _MirrorFailed(_why(e), dead=True) from None
        with response:
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) != size:
                raise _MirrorFailed(
                    f"size mismatch: server sends {announced} bytes, expected {size}"
                )
            digest = hashlib.sha256()
            done = 0
            with tempfile.NamedTemporaryFile(
                dir=folder, prefix=f".{name}.", suffix=_TEMP_SUFFIX, delete=False
            ) as tmp:
                tmp_path = Path(tmp.name)
                if progress is not None:
                    progress(name, 0, size)
                while chunk := response.read(_CHUNK):
                    done += len(chunk)
                    if done > size:
                        raise _MirrorFailed(f"size mismatch: more than the expected {size} bytes")
                    digest.update(chunk)
                    tmp.write(chunk)
                    if progress is not None:
                        progress(name, done, size)
                tmp.flush()
                # Without fsync a power cut after the rename can leave an empty "verified" file.
                os.fsync(tmp.fileno())
        if done != size:
            raise _MirrorFailed(f"size mismatch: got {done} bytes, expected {size}")
        got = digest.hexdigest()
        if got != sha256:
            raise _MirrorFailed(
                f"checksum mismatch: sha256 {got[:12]}..., expected {sha256[:12]}..."
            )
        os.replace(tmp_path, folder / name)
        tmp_path = None
    except (http.client.HTTPException, OSError) as e:
        raise _MirrorFailed(_why(e)) from None
    finally:
        # Runs on KeyboardInterrupt too: no partial download may outlive this call.
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def _file_matches(path: Path, size: int, sha256: str) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_READ_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def _remove_stale_temps(folder: Path, names: list[str]) -> None:
    """Delete temp files left by a killed download; fresh ones may belong to a running fetch."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for name in names:
        for tmp in folder.glob(f".{name}.*{_TEMP_SUFFIX}"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                pass  # vanished or not ours to delete; it never has a loadable name anyway


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
