"""Image files people bring (a PNG, a JPEG, a phone photo) -> RGBA pixels, safely.

One way in for the CLI's `predict`, the Draw page's upload and anything else that reads
an image: the byte size and the pixel size (from the header, before any pixel is decoded)
are checked against one set of limits, and every failure is a `DrawingError` with a
one-line message.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import numpy as np

from digits_core.errors import DrawingError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # an image file larger than this is refused unread
MAX_UPLOAD_SIDE = 4096  # pixels; larger images would cost seconds and hundreds of MB to read


def load_image_file(
    source: str | os.PathLike | BinaryIO | bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_side: int = MAX_UPLOAD_SIDE,
) -> np.ndarray:
    """Read a PNG/JPEG (any still format PIL reads) into (H, W, 4) RGBA uint8.

    `source` is a path, an open binary file or the bytes themselves. The byte size, then
    the pixel size from the header, are checked before any pixel is decoded; only the
    animation is refused from its header (its frames are not decoded); a text or colour
    profile chunk that would inflate past PIL's limits is refused as metadata too large; 16-bit, palette and CMYK images are converted.
    Phone photos are turned upright by their EXIF orientation. Raises DrawingError with a
    one-line message when the file is missing, too large, truncated or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = _label(source)
    raw = _read_bounded(source, label, max_bytes)
    try:
        with warnings.catch_warnings():  # the size check below is ours, and stricter
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
        with img:
            width, height = img.size
            if max(width, height) > max_side:
                raise DrawingError(
                    f"{label} is {width}x{height} pixels; at most {max_side} pixels a side are read"
                )
            if width < 1 or height < 1:
                raise DrawingError(f"{label} has no pixels")
            frames = getattr(img, "n_frames", 1)  # from the header (APNG's acTL), nothing decoded
            if frames > 1:
                raise DrawingError(f"{label} is an animation of {frames} frames; "
                                   "save the one frame with the digit as a PNG or JPEG")
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey
                a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
                top = a.max() if a.max() > 255 else 255.0
                img = Image.fromarray(np.clip(a / top * 255, 0, 255).astype(np.uint8))
            return np.asarray(img.convert("RGBA"), dtype=np.uint8)
    except DrawingError:
        raise
    except Image.DecompressionBombError:  # PIL's own limit is far above max_side
        raise DrawingError(
            f"{label} has more than {max_side}x{max_side} pixels; at most {max_side} pixels a side are read"
        ) from None
    except UnidentifiedImageError:
        raise DrawingError(f"cannot read {label}: it is not a PNG, JPEG or other image file") from None
    except ValueError as e:
        if "MAX_TEXT_CHUNK" in str(e) or "MAX_TEXT_MEMORY" in str(e):  # PIL's words for a text/profile bomb
            raise DrawingError(f"cannot read {label}: its metadata is too large to read safely") from None
        raise DrawingError(f"cannot read {label} as an image: {_first_line(e)}") from None
    except (OSError, SyntaxError, MemoryError) as e:
        raise DrawingError(f"cannot read {label} as an image: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def load_upload(file: BinaryIO | bytes, **limits) -> np.ndarray:
    """An uploaded file (the Draw page's) -> (H, W, 4) RGBA uint8; see `load_image_file`."""
    return load_image_file(file, **limits)


def _label(source) -> str:
    name = getattr(source, "name", source)
    if isinstance(name, (str, os.PathLike)):
        return os.path.basename(os.fspath(name)) or "the file"
    return "the file"


def _read_bounded(source, label: str, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            size = os.stat(source).st_size
            if size > max_bytes:
                raise DrawingError(_too_big(label, size, max_bytes))
            with open(source, "rb") as f:
                raw = f.read(max_bytes + 1)
        except FileNotFoundError:
            raise DrawingError(f"{label} does not exist") from None
        except IsADirectoryError:
            raise DrawingError(f"{label} is a folder, not an image file") from None
        except OSError as e:
            raise DrawingError(f"cannot read {label}: {e.strerror or type(e).__name__}") from None
    else:
        raw = source.read(max_bytes + 1)
    if len(raw) == 0:
        raise DrawingError(f"{label} is empty")
    if len(raw) > max_bytes:
        raise DrawingError(_too_big(label, len(raw), max_bytes))
    return raw


def _too_big(label: str, size: int, max_bytes: int) -> str:
    return f"{label} is {size / 2**20:.1f} MB; images up to {max_bytes / 2**20:.0f} MB are read"


__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_SIDE", "load_image_file", "load_upload"]
