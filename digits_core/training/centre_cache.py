"""The centre lines of a training set, found once and kept.

Redrawing part of every batch with a canvas pen (`augment.repen`) needs each image's
centre line, a Zhang-Suen thinning that cost as much as the rest of the augmentation put
together. A training image's centre line never changes, so a run finds all of them once
(about 1.5 s for MNIST's 60,000 images on 2 cores) and keeps them: in memory for the other
runs of this process (the dashboard's), and on disk under the data cache
(`mnist.mnist_home() / "derived"`) for later processes (the CLI's, the benchmark's). A
file is named by a hash of the images' ink, so a different training set never meets
another's lines; one that is damaged, or whose lines leave the ink, is found anew; the
KEEP_FILES newest stay (a class server sees many subsets).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

VERSION = 1  # of the thinning and of the file; a new one never reads an old file
CHUNK = 4096  # images thinned at once: big enough to keep the tensor ops busy
KEEP = 2  # training sets whose lines stay in memory
KEEP_FILES = 16  # ...and on disk (MNIST's 60,000 take 5.9 MB; a class's subsets are smaller)

_memory: OrderedDict[str, object] = OrderedDict()
_lock = threading.Lock()


def centre_lines_of(x):
    """x (N, H, W) float tensor, background 0 (unit or raw normalisation) ->
    (N, 1, H, W) bool tensor on x's device: `augment.centre_lines` of every image."""
    import torch

    from digits_core.images.augment import ink_masks, thin_batch

    masks = ink_masks(x.unsqueeze(1).cpu())
    key = _key(masks)
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            return _memory[key].to(x.device)
    lines = _read(key, masks)
    if lines is None:
        lines = torch.cat([thin_batch(masks[i : i + CHUNK]) for i in range(0, len(masks), CHUNK)])
        _write(key, lines)
    with _lock:
        _memory[key] = lines
        while len(_memory) > KEEP:
            _memory.popitem(last=False)
    return lines.to(x.device)


def forget() -> None:
    """Drop the lines kept in memory (the disk copies stay)."""
    with _lock:
        _memory.clear()


def _key(masks) -> str:
    bits = np.packbits(masks.numpy().reshape(len(masks), -1), axis=1)
    digest = hashlib.sha256(bits.tobytes())
    digest.update(repr((VERSION, tuple(masks.shape))).encode())
    return digest.hexdigest()[:40]


def _path(key: str) -> Path:
    from digits_core.data.mnist import mnist_home

    return mnist_home() / "derived" / f"centre-lines-v{VERSION}-{key}.npy"


def _read(key: str, masks):
    """The lines kept on disk for `key`, or None (none kept, unreadable, or not lines of
    these masks: every centre-line pixel lies in the ink)."""
    import torch

    n, _, h, w = masks.shape
    try:  # mapped, so the header is checked before anything big is read
        packed = np.load(_path(key), mmap_mode="r", allow_pickle=False)
        if packed.dtype != np.uint8 or packed.shape != (n, (h * w + 7) // 8):
            return None
        bits = np.unpackbits(packed, axis=1, count=h * w)
    except (OSError, ValueError, EOFError):
        return None
    lines = torch.from_numpy(bits.astype(bool)).reshape(n, 1, h, w)
    if (lines & ~masks).any():
        return None
    return lines


def _write(key: str, lines) -> None:
    """Keep `lines` on disk, atomically (a reader sees the whole file or none); a cache
    that cannot be written (read-only home, full disk) only costs the next run the thinning."""
    path = _path(key)
    packed = np.packbits(lines.numpy().reshape(len(lines), -1), axis=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, packed, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError:
        pass


def _prune(folder: Path) -> None:
    """Keep the KEEP_FILES most recently written files of lines; older ones go (a training
    set seen again only pays its thinning again)."""
    files = sorted(folder.glob("centre-lines-*.npy"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in files[KEEP_FILES:]:
        old.unlink(missing_ok=True)
