"""Random distortions of a training batch, so a model reads drawings as well as test digits.

People draw slanted, rotated, off-centre, large or small, with a thin or a fat pen. The
drawing pipeline undoes size and position (as MNIST's makers did) but not slant, and only
partly the pen; these distortions teach the model the rest. One affine warp per image
(rotation, scale, shear, shift) and a stroke-width change, all batched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ROTATE_DEG = 12.0  # rotation, either way
SCALE = 0.15  # zoom in by up to this share (out by 1 / 1.15, about 13 %)
SHEAR = 0.3  # horizontal shear (slant): x moves by up to this much per unit of height
SHIFT = 0.10  # translation, as a share of the image side
STROKE = (0.25, 0.5, 0.25)  # chance of thinner, unchanged, thicker strokes
STROKE_REF = 28  # image side where a 3x3 dilation is the full stroke change
REPEN_SHARE = 0.5  # share of a batch redrawn along its centre line with a uniform round pen
REPEN_WIDTHS = (1.55, 1.98, 2.4, 2.83, 3.25)  # 28x28 px, one per image: drawing.MNIST_STROKE, the widths canvas_to_image gives
FLAG_SHARE = 0.4  # share of the 1s (labels given) that get a flag: a short stroke down-left from the top
FLAG_LENGTH = (0.2, 0.45)  # its length, as a share of the digit's height
ELASTIC = 0.06  # smooth displacement, standard deviation as a share of the half side
ELASTIC_GRID = 4  # its random values sit on this coarse grid, smoothly interpolated
REPEN_MIN_SIDE = 16  # only images at least this big (MNIST) are redrawn; 8x8 has no centre line


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, *, strength: float = 1.0,
    labels: torch.Tensor | None = None, centres: torch.Tensor | None = None, pen: bool = True,
) -> torch.Tensor:
    """x (N, 1, H, W) float images, background at the batch minimum -> distorted copy, same shape.

    `strength` scales every range (0 returns an unchanged copy; 0.5..1.5 is sensible).
    The draws come from `generator` only, so the same generator state gives the same
    batch. Small images (8x8) get shifts in proportion to their size and gentler stroke
    changes. With `labels (N,)`, some 1s get the flag at the top that many people draw
    (and MNIST's writers seldom did). `centres (N, 1, H, W) bool`, the images' centre lines
    (`centre_lines`) when the caller keeps them (`centre_cache`): the same batch, without
    thinning the redrawn images again. `pen=False` leaves out what only a canvas does (the
    pen redraws and the flags): MNIST's own kinds of variation alone.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"augment_batch wants (N, 1, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    if n == 0 or strength <= 0:
        return x.clone()
    u = torch.rand(n, 13, generator=generator, device=generator.device).to(x.device, torch.float32)
    signed, pick = 2 * u[:, :6] - 1, u[:, 6]  # (N, 6) in -1..1, (N,) in 0..1

    bg = x.amin()
    ink = x - bg  # background exactly 0, which the warp's zero padding also fills in
    drawn = draws_as_canvas(h, w, pen)
    redraw = u[:, 7] < REPEN_SHARE if drawn else torch.zeros(n, dtype=torch.bool, device=x.device)
    if redraw.any():
        # a canvas pen is uniform and round; MNIST's scanned strokes swell and thin: part of
        # every batch is redrawn the canvas's way, the rest keeps (and varies) MNIST's strokes
        ink = ink.clone()
        lines = centre_lines(ink[redraw]) if centres is None else centres[redraw.to(centres.device)]
        ink[redraw] = repen(ink[redraw], u[redraw, 8], lines.to(ink.device))
    keep = ~redraw
    ink[keep] = _stroke_change(ink[keep], signed[keep, 5], pick[keep], strength, min(h, w))
    if labels is not None and drawn:
        flag = (labels.to(x.device) == 1) & (u[:, 9] < FLAG_SHARE)
        if flag.any():
            ink[flag] = add_flag(ink[flag], u[flag, 10:13])
    theta = _affine(signed[:, :5], strength, h, w).to(x.dtype)
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    if ELASTIC and min(h, w) >= REPEN_MIN_SIDE:
        # a smooth random displacement on top: hands bend strokes, not just the whole digit
        coarse = torch.randn(n, 2, ELASTIC_GRID, ELASTIC_GRID, generator=generator,
                             device=generator.device).to(x.device, x.dtype)
        field = _upsample(coarse, h, w)
        grid = grid + (ELASTIC * strength) * field.permute(0, 2, 3, 1)
    out = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + bg


def draws_as_canvas(h: int, w: int, pen: bool = True) -> bool:
    """Whether a batch of (h, w) images gets what only a canvas does (pen redraws, flags):
    asked for, and big enough to have a centre line (MNIST, not 8x8)."""
    return pen and min(h, w) >= REPEN_MIN_SIDE


def _upsample(coarse: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """coarse (N, C, g, g) -> (N, C, h, w), bicubic with aligned corners: as
    F.interpolate(mode="bicubic", align_corners=True), whose CPU kernel costs about 20x
    more for so few points. Bicubic interpolation is linear, so it is a matrix on each side."""
    rows = _bicubic_matrix(coarse.shape[-2], h, coarse.dtype, coarse.device)
    cols = _bicubic_matrix(coarse.shape[-1], w, coarse.dtype, coarse.device)
    return rows @ coarse @ cols.T


_MATRICES: dict = {}


def _bicubic_matrix(g: int, size: int, dtype, device) -> torch.Tensor:
    """(size, g): bicubic, aligned-corner interpolation of g points to `size`, read off
    F.interpolate applied to the unit vectors."""
    key = (g, size, dtype, str(device))
    if key not in _MATRICES:
        eye = torch.eye(g, dtype=torch.float64).view(g, 1, g, 1)
        cols = F.interpolate(eye, size=(size, 1), mode="bicubic", align_corners=True)  # (g, 1, size, 1)
        _MATRICES[key] = cols[:, 0, :, 0].T.contiguous().to(device, dtype)
    return _MATRICES[key]


def _affine(r: torch.Tensor, strength: float, h: int, w: int) -> torch.Tensor:
    """r (N, 5) in -1..1 -> theta (N, 2, 3) mapping output to input coordinates.

    The digit is sheared, rotated, zoomed and shifted: forward, in pixel units,
    p' = zoom * R(angle) @ Shear(shear) @ p + t. The sampler needs the inverse, in
    coordinates normalised to -1..1 across each side (hence the aspect ratio `a`).
    """
    angle = r[:, 0] * math.radians(ROTATE_DEG) * strength
    zoom = (1 + SCALE) ** (r[:, 1] * strength)  # symmetric in log scale, always positive
    shear = r[:, 2] * SHEAR * strength
    tx, ty = r[:, 3] * 2 * SHIFT * strength, r[:, 4] * 2 * SHIFT * strength
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = h / w
    # (R @ Shear)^-1 = Shear(-shear) @ R(-angle); both have determinant 1
    theta = torch.zeros(len(r), 2, 3, dtype=torch.float32, device=r.device)
    theta[:, 0, 0] = (cos + shear * sin) / zoom
    theta[:, 0, 1] = (sin - shear * cos) * a / zoom
    theta[:, 1, 0] = -sin / a / zoom
    theta[:, 1, 1] = cos / zoom
    theta[:, 0, 2] = -(theta[:, 0, 0] * tx + theta[:, 0, 1] * ty)
    theta[:, 1, 2] = -(theta[:, 1, 0] * tx + theta[:, 1, 1] * ty)
    return theta


def _stroke_change(
    ink: torch.Tensor, amount: torch.Tensor, pick: torch.Tensor, strength: float, side: int
) -> torch.Tensor:
    """Thicken (3x3 dilation) or thin (3x3 erosion) a random part of the batch, partly.

    ink (N, 1, H, W) >= 0; amount (N,) in -1..1 sets how far towards the full dilation
    (half to all of it) or erosion (a quarter to half: a full one wipes out MNIST's thinnest
    strokes) each image goes; pick (N,) in 0..1 chooses thinner / unchanged / thicker.
    """
    thin_p, _, thick_p = STROKE
    full = min(1.0, strength * side / STROKE_REF)
    size = amount.abs()
    w_thin = torch.where(pick < thin_p, (0.25 + 0.25 * size) * full, 0.0).view(-1, 1, 1, 1)
    w_thick = torch.where(pick >= 1 - thick_p, (0.5 + 0.5 * size) * full, 0.0).view(-1, 1, 1, 1)
    thinner = -_max3x3(-ink)
    thicker = _max3x3(ink)
    return ink + w_thin * (thinner - ink) + w_thick * (thicker - ink)


def _max3x3(x: torch.Tensor) -> torch.Tensor:
    """Max over each pixel's 3x3 neighbourhood: max_pool2d(x, 3, stride=1, padding=1).

    Done as two separable passes of shifted maxima, about 15x faster on a CPU for
    one-channel images; repeating the edge pixels changes no maximum.
    """
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def ink_masks(ink: torch.Tensor) -> torch.Tensor:
    """ink (N, 1, H, W) >= 0, background 0 -> (N, 1, H, W) bool: each image's ink over
    half the image's maximum, all its centre line depends on."""
    top = ink.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)
    return ink > 0.5 * top


def centre_lines(ink: torch.Tensor) -> torch.Tensor:
    """ink (N, 1, H, W) >= 0, background 0 -> (N, 1, H, W) bool: each image's centre line,
    a Zhang-Suen thinning of its `ink_masks`."""
    return thin_batch(ink_masks(ink))


def repen(ink: torch.Tensor, width: torch.Tensor, lines: torch.Tensor | None = None) -> torch.Tensor:
    """ink (N, 1, H, W) >= 0 -> its centre line redrawn with a round pen, anti-aliased.

    width (N,) in 0..1 picks each image's pen from REPEN_WIDTHS; `lines` are the images'
    `centre_lines` if already known. The pen is a soft disk (coverage of each pixel) stamped
    on every centre-line pixel, overlaps capped at full ink.
    """
    top = ink.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)
    skeleton = (centre_lines(ink) if lines is None else lines).to(ink.dtype)
    kernels = _pen_kernels(ink.dtype, ink.device)  # (K, 1, k, k)
    k = kernels.shape[-1]
    choice = (width * len(REPEN_WIDTHS)).long().clamp(0, len(REPEN_WIDTHS) - 1)
    # each image stamped with its own pen in one depthwise convolution (the images as
    # channels), not one convolution per pen, which cost more in calls than in arithmetic
    n, _, h, w = skeleton.shape
    out = F.conv2d(skeleton.view(1, n, h, w), kernels[choice], padding=k // 2, groups=n)
    return out.view(n, 1, h, w).clamp_(max=1.0) * top


_KERNELS: dict = {}


def _pen_kernels(dtype, device) -> torch.Tensor:
    key = (dtype, str(device))
    if key not in _KERNELS:
        r = int(math.ceil(max(REPEN_WIDTHS) / 2))
        yy, xx = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
        d = torch.sqrt(yy**2 + xx**2)
        ks = [(w / 2 + 0.5 - d).clamp(0, 1) for w in REPEN_WIDTHS]
        _KERNELS[key] = torch.stack(ks).unsqueeze(1).to(device, dtype)
    return _KERNELS[key]


def thin_batch(mask: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of every image of `mask (N, 1, H, W) bool` -> (N, 1, H, W) bool.

    Each pixel's 8 neighbours make a byte (eight shifted views OR-ed together, bit k for the
    k-th neighbour clockwise from north); a 256-entry table per sub-iteration says whether a
    pixel with that neighbourhood goes. Images drop out of the loop once thin, so a batch
    costs what its thickest digit needs, on the rest only.
    """
    luts = _thin_luts(mask.device)
    img = mask[:, 0].to(torch.uint8)  # (N, H, W) of 0/1
    out = torch.empty_like(img)
    active = torch.arange(len(img), device=mask.device)  # images still thinning
    for _ in range(32):
        changed = torch.zeros(len(active), dtype=torch.bool, device=mask.device)
        for step in (0, 1):
            p = F.pad(img, (1, 1, 1, 1))
            code = (p[:, :-2, 1:-1] | p[:, :-2, 2:] << 1 | p[:, 1:-1, 2:] << 2 | p[:, 2:, 2:] << 3
                    | p[:, 2:, 1:-1] << 4 | p[:, 2:, :-2] << 5 | p[:, 1:-1, :-2] << 6 | p[:, :-2, :-2] << 7)
            remove = luts[step][code.long()] & img
            changed |= remove.flatten(1).amax(1) > 0
            img = img - remove
        if not changed.all():
            out[active[~changed]] = img[~changed]
            active, img = active[changed], img[changed]
        if len(active) == 0:
            break
    out[active] = img
    return out.unsqueeze(1).bool()


_LUTS: dict = {}


def _thin_luts(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zhang-Suen's removal rule for each neighbourhood byte (bit k = neighbour P(k + 2),
    clockwise from north), for the two sub-iterations: `strokes.THIN_TABLES` on `device`."""
    if str(device) not in _LUTS:
        from digits_core.images.strokes import THIN_TABLES

        _LUTS[str(device)] = tuple(torch.from_numpy(t).to(device, torch.uint8) for t in THIN_TABLES)
    return _LUTS[str(device)]


def add_flag(ink: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """ink (N, 1, H, W) of 1s -> with a flag: a straight stroke from the top of the ink,
    down to the left, FLAG_LENGTH of the digit's height long, 15..55 degrees below the horizontal,
    as wide as a typical MNIST stroke (1.6..3 px). r (N, 3) in 0..1 draws length, angle, pen.
    """
    n, _, h, w = ink.shape
    top = ink.amax((1, 2, 3)).clamp_min(1e-6)
    strong = ink[:, 0] > 0.5 * top.view(-1, 1, 1)  # (N, H, W)
    rows = torch.arange(h, device=ink.device, dtype=ink.dtype)
    cols = torch.arange(w, device=ink.device, dtype=ink.dtype)
    has_row = strong.any(2)  # (N, H)
    first = torch.where(has_row, rows, torch.full_like(rows, h)).amin(1)  # (N,)
    last = torch.where(has_row, rows, torch.full_like(rows, -1)).amax(1)
    height = (last - first).clamp_min(4)
    top_row = strong[torch.arange(n), first.long().clamp(0, h - 1)].to(ink.dtype)  # (N, W)
    c0 = (top_row * cols).sum(1) / top_row.sum(1).clamp_min(1)
    r0 = first
    length = height * (FLAG_LENGTH[0] + (FLAG_LENGTH[1] - FLAG_LENGTH[0]) * r[:, 0])
    angle = torch.deg2rad(15 + 40 * r[:, 1])
    r1, c1 = r0 + length * torch.sin(angle), c0 - length * torch.cos(angle)
    pen = 1.6 + 1.4 * r[:, 2]
    # distance of every pixel to the segment (r0, c0)-(r1, c1)
    yy, xx = rows.view(1, h, 1), cols.view(1, 1, w)
    dy, dx = (r1 - r0).view(-1, 1, 1), (c1 - c0).view(-1, 1, 1)
    py, px = yy - r0.view(-1, 1, 1), xx - c0.view(-1, 1, 1)
    t = ((py * dy + px * dx) / (dy * dy + dx * dx).clamp_min(1e-6)).clamp(0, 1)
    dist = torch.sqrt((py - t * dy) ** 2 + (px - t * dx) ** 2)
    stroke = (pen.view(-1, 1, 1) / 2 + 0.5 - dist).clamp(0, 1) * top.view(-1, 1, 1)
    return torch.maximum(ink, stroke.unsqueeze(1))
