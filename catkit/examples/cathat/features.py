"""Image features for the cat-hat classifier: histograms of oriented gradients (HOG) on two grids.

This module is shipped inside every cat-hat model archive as ``code/features.py`` and loaded by
``code/inference.py``, so it must import only numpy and Pillow (never catkit). Bump
``FEATURE_VERSION`` whenever the output changes; models record it and refuse mismatched code.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FEATURE_VERSION = 1
CELL = 8  # pixels per cell side
BINS = 9  # unsigned orientation bins over 0..180 degrees
_EPS = 1e-6


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """RGB ``uint8`` array of shape ``(size, size, 3)`` (converted and resized as needed)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _gradients(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gradient magnitude and unsigned orientation (in bins, 0..BINS) of a batch.

    Each pixel uses the colour channel with the strongest gradient, so edges between colours of
    equal brightness still count.
    """
    x = images.astype(np.float32) * np.float32(1 / 255)
    # [1, 2, 1] / 4 smoothing in both directions: damps pixel noise and JPEG block edges.
    x[:, 1:-1] = (x[:, :-2] + 2 * x[:, 1:-1] + x[:, 2:]) * np.float32(0.25)
    x[:, :, 1:-1] = (x[:, :, :-2] + 2 * x[:, :, 1:-1] + x[:, :, 2:]) * np.float32(0.25)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1] = x[:, 2:] - x[:, :-2]
    m2 = gx * gx + gy * gy
    best_gx, best_gy, best_m2 = gx[..., 0], gy[..., 0], m2[..., 0]
    for c in (1, 2):
        better = m2[..., c] > best_m2
        best_gx = np.where(better, gx[..., c], best_gx)
        best_gy = np.where(better, gy[..., c], best_gy)
        best_m2 = np.where(better, m2[..., c], best_m2)
    angle = np.arctan2(best_gy, best_gx) * np.float32(BINS / np.pi)  # -BINS..BINS
    angle = np.mod(angle, np.float32(BINS))
    return np.sqrt(best_m2), angle


def _block_features(mag: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Cell histograms (linear orientation interpolation) normalised in 2x2 blocks (L2-Hys)."""
    n, h, w = mag.shape
    lo_f = np.floor(angle)
    w_hi = angle - lo_f
    lo = lo_f.astype(np.int64) % BINS
    hi = (lo + 1) % BINS
    ch, cw = h // CELL, w // CELL
    cell = (np.arange(h) // CELL)[:, None] * cw + (np.arange(w) // CELL)[None, :]
    base = (np.arange(n)[:, None, None] * (ch * cw) + cell[None]) * BINS
    index = np.concatenate([(base + lo).ravel(), (base + hi).ravel()])
    weight = np.concatenate([(mag * (1 - w_hi)).ravel(), (mag * w_hi).ravel()])
    hist = np.bincount(index, weights=weight, minlength=n * ch * cw * BINS)
    hist = hist.reshape(n, ch, cw, BINS).astype(np.float32)
    blocks = np.concatenate([hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=-1)
    blocks /= np.sqrt((blocks**2).sum(-1, keepdims=True) + _EPS)
    np.minimum(blocks, 0.2, out=blocks)
    blocks /= np.sqrt((blocks**2).sum(-1, keepdims=True) + _EPS)
    return blocks.reshape(n, -1)


def hog(images: np.ndarray) -> np.ndarray:
    """HOG features of a batch ``(n, h, w, 3)`` of RGB images -> ``(n, n_features)`` float32.

    Two cell grids are used: one aligned with the image and one shifted by half a cell, so a small
    object is seen whole by some cell wherever it sits. Cells are ``CELL`` pixels, ``BINS``
    unsigned orientation bins, 2x2-cell blocks with L2-Hys normalisation (Dalal & Triggs).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB images shaped (n, h, w, 3), got {images.shape}")
    _n, h, w, _ = images.shape
    if h % CELL or w % CELL or h < 3 * CELL or w < 3 * CELL:
        raise ValueError(f"image sides must be multiples of {CELL} and at least {3 * CELL}, got {h}x{w}")
    mag, angle = _gradients(images)
    half = CELL // 2
    shifted = (slice(None), slice(half, h - half), slice(half, w - half))
    return np.concatenate(
        [_block_features(mag, angle), _block_features(mag[shifted], angle[shifted])], axis=1
    ).astype(np.float32)


def extract(images: list[Image.Image] | np.ndarray, size: int) -> np.ndarray:
    """Feature matrix for PIL images or an ``(n, size, size, 3)`` uint8 array."""
    if isinstance(images, np.ndarray):
        batch = images
    else:
        batch = (
            np.stack([to_array(img, size) for img in images])
            if len(images)
            else np.zeros((0, size, size, 3), np.uint8)
        )
    return hog(batch)
