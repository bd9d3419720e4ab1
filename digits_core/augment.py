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


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, *, strength: float = 1.0
) -> torch.Tensor:
    """x (N, 1, H, W) float images, background at the batch minimum -> distorted copy, same shape.

    `strength` scales every range (0 returns an unchanged copy; 0.5..1.5 is sensible).
    The draws come from `generator` only, so the same generator state gives the same
    batch. Small images (8x8) get shifts in proportion to their size and gentler stroke
    changes.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"augment_batch wants (N, 1, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    if n == 0 or strength <= 0:
        return x.clone()
    u = torch.rand(n, 7, generator=generator, device=generator.device).to(x.device, torch.float32)
    signed, pick = 2 * u[:, :6] - 1, u[:, 6]  # (N, 6) in -1..1, (N,) in 0..1

    bg = x.amin()
    ink = x - bg  # background exactly 0, which the warp's zero padding also fills in
    ink = _stroke_change(ink, signed[:, 5], pick, strength, min(h, w))
    theta = _affine(signed[:, :5], strength, h, w).to(x.dtype)
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    out = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + bg


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
