"""Stroke geometry: the one-pixel centre line of ink (Zhang-Suen thinning) and the typical
width of its strokes. `drawing` uses them to read a pen that is much thinner or fatter than
the dataset's."""

from __future__ import annotations

import numpy as np


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: mask (H, W) bool -> its one-pixel-wide centre line (H, W) bool.

    Each pixel's 8 neighbours make a byte (bit k: P(k + 2), clockwise from north); a
    256-entry table per sub-iteration says whether a pixel with that neighbourhood goes.
    Only the pixels still on are looked at, all at once (flat indices), which is what
    makes it fast.
    """
    img = np.pad(np.asarray(mask, bool), 1).astype(np.uint8)
    flat = img.ravel()  # a view: clearing flat[i] clears the pixel
    w = img.shape[1]
    around = np.array([-w, -w + 1, 1, w + 1, w, w - 1, -1, -w - 1])  # P2..P9, flat offsets
    on = np.flatnonzero(flat)
    while on.size:
        changed = False
        for table in THIN_TABLES:
            # all 8 neighbours in one gather, packed into the byte (P2 is bit 0)
            code = np.packbits(flat[on[:, None] + around], axis=1, bitorder="little")[:, 0]
            gone = table[code]
            if gone.any():
                flat[on[gone]] = 0
                on = on[~gone]
                changed = True
        if not changed:
            break
    out = img[1:-1, 1:-1].astype(bool)
    if not out.any() and np.any(mask):  # thinning erases a 2x2 square whole; keep its middle
        ys, xs = np.nonzero(mask)
        k = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
        out[ys[k], xs[k]] = True
    return out


def _thin_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen's removal rule for each neighbourhood byte, for its two sub-iterations."""
    tables = []
    for step in (0, 1):
        t = np.zeros(256, bool)
        for code in range(256):
            p2, p3, p4, p5, p6, p7, p8, p9 = ((code >> k) & 1 for k in range(8))
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            crossings = sum(ring[k] < ring[k + 1] for k in range(8))
            if step == 0:
                side = (p2 & p4 & p6) == 0 and (p4 & p6 & p8) == 0
            else:
                side = (p2 & p4 & p8) == 0 and (p2 & p6 & p8) == 0
            t[code] = 2 <= sum(ring[:8]) <= 6 and crossings == 1 and side
        tables.append(t)
    return tables[0], tables[1]


THIN_TABLES = _thin_tables()  # also the training augmentation's (`augment.thin_batch`)


def stroke_width(mask: np.ndarray, skeleton: np.ndarray | None = None) -> float:
    """Typical stroke width of the ink `mask (H, W) bool`, in pixels.

    Twice the median distance from the centre line to the background: local, so junctions
    and curves do not bias it the way area / length does.
    """
    if skeleton is None:
        skeleton = thin(mask)
    if not skeleton.any():
        return 0.0
    from scipy import ndimage  # here, so that importing the tables costs no scipy

    inside = ndimage.distance_transform_edt(mask)
    return 2.0 * float(np.median(inside[skeleton])) - 1.0


__all__ = ["THIN_TABLES", "stroke_width", "thin"]
