"""Contact sheets of the hard procedural drawn-digit set (tests/hard_drawn_digits.py).

One sheet of random drawings and one with a row per class showing every style.

    .venv/bin/python scripts/make_hard_digits.py --out /tmp/hard --n 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from hard_drawn_digits import STYLES, draw, make_hard_set  # noqa: E402
from make_drawn_digits import contact_sheet  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="hard_digits")
    args = ap.parse_args(argv)
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    drawings = make_hard_set(args.seed, args.n)
    Image.fromarray(contact_sheet([(d, y) for d, y, _ in drawings])).save(out / "random.png")
    rng = np.random.default_rng(args.seed)
    rows = []
    for label in range(10):
        names = sorted(STYLES[label])
        row = [(draw(label, names[k % len(names)], rng), label) for k in range(10)]
        rows += row
    Image.fromarray(contact_sheet(rows, tile=84)).save(out / "styles.png")
    print(f"sheets -> {out}/ (styles.png: a row per class, styles in turn: "
          + "; ".join(f"{d}: {', '.join(sorted(STYLES[d]))}" for d in range(10)) + ")")


if __name__ == "__main__":
    main()
