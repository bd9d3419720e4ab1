"""Make the synthetic drawn-digit set: MNIST *test* digits redrawn as canvas drawings.

Writes `drawn_digits.npz` (images (N, 280, 280, 4) uint8 RGBA, labels (N,) int64) and a
contact sheet PNG to look at (transparent backgrounds shown blue). The drawing itself is
tests/drawn_digits.py, which the tests and scripts/eval_drawn.py import too.

    .venv/bin/python scripts/make_drawn_digits.py --mnist DIR --n 500 --out /tmp/drawn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from drawn_digits import make_drawn_set  # noqa: E402

from digits_core.data.mnist import load_mnist  # noqa: E402


def contact_sheet(drawings, cols: int = 10, tile: int = 112) -> np.ndarray:
    """drawings [(rgba, label), ...] -> one RGB sheet (rows*tile, cols*tile, 3) uint8."""
    from PIL import Image

    rows = (len(drawings) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, rows * tile), (128, 128, 128))
    for k, (rgba, _) in enumerate(drawings):
        img = Image.new("RGBA", rgba.shape[1::-1], (0, 90, 160, 255))
        img.alpha_composite(Image.fromarray(rgba, "RGBA"))
        thumb = img.convert("RGB").resize((tile - 4, tile - 4), Image.Resampling.BILINEAR)
        sheet.paste(thumb, ((k % cols) * tile + 2, (k // cols) * tile + 2))
    return np.asarray(sheet)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True, help="folder with the four MNIST IDX files")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="drawn_digits", help="output folder")
    ap.add_argument("--sheet", type=int, default=60, help="drawings on the contact sheet")
    args = ap.parse_args(argv)

    from PIL import Image

    _, _, images, labels = load_mnist(args.mnist)
    drawings = make_drawn_set(images, labels, seed=args.seed, n=args.n)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "drawn_digits.npz",
        images=np.stack([rgba for rgba, _ in drawings]),
        labels=np.array([label for _, label in drawings], np.int64),
    )
    Image.fromarray(contact_sheet(drawings[: args.sheet])).save(out / "contact_sheet.png")
    print(f"{len(drawings)} drawings and a contact sheet -> {out}/")


if __name__ == "__main__":
    main()
