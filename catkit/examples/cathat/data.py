"""Synthetic cat-hat images: deterministic cartoon cat faces, half of them wearing a tiny hat.

Every image is a pure function of ``(seed, hat, size)``. Cats vary in size, position, head tilt,
fur colour and pattern, eye colour, ear shape and whiskers; backgrounds are solid or gradient with
random clutter shapes (including cones, domes and bars like the hats) and pixel noise. Hats vary in
type (top hat, party cone, beanie, bowler, crown, cap, witch hat), colours, size, tilt and position
on the head. Hat colours are drawn from the same distribution as background and clutter colours, so
only the shape on top of the head tells the classes apart.

The cat, the hat and the noise use independent random streams, so ``make_image(s, True)`` is the
cat of ``make_image(s, False)`` with a hat on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASSES", "HAT_TYPES", "image_seed", "make_dataset", "make_image"]

CLASSES = ("no_hat", "hat")  # label 0, label 1
_SUPERSAMPLE = 2  # draw at 2x and downsample: smooth edges at small sizes

Color = tuple[int, int, int]
Point = tuple[float, float]

_FUR = [
    (226, 140, 60),  # ginger
    (150, 150, 155),  # grey
    (40, 38, 42),  # black
    (240, 236, 228),  # white
    (120, 84, 56),  # brown
    (232, 208, 160),  # cream
    (200, 180, 150),  # fawn
    (90, 90, 100),  # blue-grey
]
_EYES = [(120, 200, 80), (230, 200, 60), (90, 160, 230), (210, 140, 40), (150, 200, 170)]


def _jitter(rng: np.random.Generator, color: Color, amount: int) -> Color:
    r, g, b = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)
    return r, g, b


def _random_color(rng: np.random.Generator) -> Color:
    """Any colour: used alike for backgrounds, clutter and hats."""
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def _mix(a: Color, b: Color, t: float) -> Color:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return r, g, bl


def _arc(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360) -> list[Point]:
    """Points on an ellipse (angles in degrees, 0 = right, 90 = down)."""
    steps = max(8, int(abs(end - start) / 10))
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


class _Pen:
    """Draws shapes given in a local frame rotated by ``degrees`` about ``center``.

    Rotating the geometry (not the raster) keeps drawing fast and edges crisp.
    """

    def __init__(self, draw: ImageDraw.ImageDraw, center: Point = (0.0, 0.0), degrees: float = 0.0) -> None:
        self.draw = draw
        self.center = center
        self.degrees = degrees
        self._outer: _Pen | None = None

    def rotated(self, center: Point, degrees: float) -> _Pen:
        inner = _Pen(self.draw, center, degrees)
        inner._outer = self
        return inner

    def map(self, points: Sequence[Point]) -> list[Point]:
        rad = math.radians(self.degrees)
        c, s = math.cos(rad), math.sin(rad)
        cx, cy = self.center
        out = [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]
        return self._outer.map(out) if self._outer is not None else out

    def polygon(self, points: Sequence[Point], fill: Color) -> None:
        self.draw.polygon(self.map(points), fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Color) -> None:
        self.polygon(_arc(cx, cy, rx, ry), fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Color) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], fill)

    def line(self, points: Sequence[Point], fill: Color, width: float) -> None:
        self.draw.line(self.map(points), fill=fill, width=max(1, round(width)))


# ----------------------------------------------------------------------------------- background


def _background(rng: np.random.Generator, size: int, s: int) -> Image.Image:
    a, b = _random_color(rng), _random_color(rng)
    if rng.random() < 0.4:
        b = _mix(a, b, 0.25)  # nearly flat
    angle = rng.uniform(0, 2 * math.pi)
    ca, sa = math.cos(angle), math.sin(angle)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (xx * ca + yy * sa - min(0.0, ca) - min(0.0, sa)) / (abs(ca) + abs(sa))
    arr = np.asarray(a, np.float32) + (np.asarray(b, np.float32) - np.asarray(a, np.float32)) * t[..., None]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB").resize((s, s), Image.BILINEAR)


def _clutter(rng: np.random.Generator, pen: _Pen, s: int, keep_clear: tuple[float, float, float]) -> None:
    """Random shapes behind the cat, including hat-like cones, domes and bars.

    ``keep_clear`` = (x, y, radius): the crown of the head, where a shape would pass for a hat
    (a real photo has no hat-shaped clutter exactly there either). It is the same for both classes.
    """
    kx, ky, kr = keep_clear
    for _ in range(int(rng.integers(0, 4))):
        color = _random_color(rng)
        r = rng.uniform(0.03, 0.1) * s
        cx, cy = (float(v) for v in rng.uniform(0, s, size=2))
        for _attempt in range(20):
            if math.hypot(cx - kx, cy - ky) > kr + 1.3 * r:
                break
            cx, cy = (float(v) for v in rng.uniform(0, s, size=2))
        else:
            continue
        spun = pen.rotated((cx, cy), rng.uniform(0, 360))
        kind = rng.integers(0, 5)
        if kind == 0:
            spun.ellipse(cx, cy, r, r * rng.uniform(0.5, 1), color)
        elif kind == 1:
            spun.rect(cx - r, cy - r * 0.4, cx + r, cy + r * 0.4, color)
        elif kind == 2:
            spun.polygon(
                [(cx, cy - r * 1.3), (cx - r * 0.6, cy + r * 0.5), (cx + r * 0.6, cy + r * 0.5)], color
            )
        elif kind == 3:
            spun.polygon(_arc(cx, cy, r, r * 0.7, 180, 360), color)
        else:
            spun.line([(cx - r * 1.5, cy), (cx + r * 1.5, cy)], color, s * rng.uniform(0.01, 0.025))


# ------------------------------------------------------------------------------------------ cat


class _Cat:
    """One cat face, in supersampled pixels of the untilted head frame."""

    def __init__(self, rng: np.random.Generator, s: int) -> None:
        self.rng = rng
        self.r = rng.uniform(0.17, 0.22) * s
        self.cx = s / 2 + rng.uniform(-0.07, 0.07) * s
        self.cy = s / 2 + rng.uniform(0.04, 0.1) * s
        self.rx = self.r * rng.uniform(1.0, 1.15)
        self.ry = self.r * rng.uniform(0.85, 1.0)
        self.tilt = rng.uniform(-15, 15)
        self.fur = _jitter(rng, _FUR[int(rng.integers(len(_FUR)))], 18)
        dark_fur = sum(self.fur) < 300
        self.stripes = _mix(self.fur, (200, 190, 180) if dark_fur else (20, 15, 10), 0.45)
        self.n_stripes = int(rng.integers(0, 4))
        self.eye = _jitter(rng, _EYES[int(rng.integers(len(_EYES)))], 20)
        self.ear_angle = rng.uniform(32, 48)
        self.ear_h = self.r * rng.uniform(0.5, 0.8)
        self.ear_w = self.r * rng.uniform(0.45, 0.65)
        self.whisker = (235, 235, 235) if dark_fur else (30, 30, 30)
        self.n_whiskers = int(rng.integers(2, 4))
        self.body = rng.random() < 0.6

    def draw(self, pen: _Pen) -> None:
        rng, r, cx, cy = self.rng, self.r, self.cx, self.cy
        if self.body:
            pen.ellipse(cx, cy + r * 1.9, r * 1.5, r * 1.3, self.fur)
        inner = _mix(self.fur, (235, 150, 160), 0.5)
        for side in (-1, 1):
            a = math.radians(self.ear_angle) * side
            bx, by = cx + self.rx * 0.92 * math.sin(a), cy - self.ry * 0.92 * math.cos(a)
            tip = (bx + self.ear_h * math.sin(a * 1.1), by - self.ear_h * math.cos(a * 1.1))
            ux, uy = math.cos(a), math.sin(a)
            left = (bx - ux * self.ear_w / 2, by - uy * self.ear_w / 2)
            right = (bx + ux * self.ear_w / 2, by + uy * self.ear_w / 2)
            pen.polygon([left, tip, right], self.fur)
            pen.polygon(
                [
                    (bx + (left[0] - bx) * 0.55, by + (left[1] - by) * 0.55),
                    (bx + (tip[0] - bx) * 0.8, by + (tip[1] - by) * 0.8),
                    (bx + (right[0] - bx) * 0.55, by + (right[1] - by) * 0.55),
                ],
                inner,
            )
        pen.ellipse(cx, cy, self.rx, self.ry, self.fur)
        for i in range(self.n_stripes):
            x = cx + (i - (self.n_stripes - 1) / 2) * r * 0.22
            pen.line([(x, cy - self.ry * 0.95), (x, cy - self.ry * 0.55)], self.stripes, r * 0.08)
        eye_r = r * rng.uniform(0.14, 0.2)
        slit = eye_r * rng.uniform(0.2, 0.6)
        for side in (-1, 1):
            ex, ey = cx + side * r * 0.42, cy - r * 0.08
            pen.ellipse(ex, ey, eye_r, eye_r * 0.85, self.eye)
            pen.ellipse(ex, ey, slit, eye_r * 0.8, (10, 10, 10))
        nose_y = cy + r * 0.22
        nose_w = r * rng.uniform(0.08, 0.14)
        nose = _jitter(rng, (215, 110, 120), 25)
        pen.polygon(
            [
                (cx - nose_w, nose_y - nose_w * 0.6),
                (cx + nose_w, nose_y - nose_w * 0.6),
                (cx, nose_y + nose_w * 0.6),
            ],
            nose,
        )
        width = r * 0.03
        mouth_y = nose_y + nose_w * 0.6
        pen.line([(cx, mouth_y), (cx - r * 0.12, nose_y + r * 0.2)], (30, 30, 30), width)
        pen.line([(cx, mouth_y), (cx + r * 0.12, nose_y + r * 0.2)], (30, 30, 30), width)
        for side in (-1, 1):
            for k in range(self.n_whiskers):
                dy = (k - (self.n_whiskers - 1) / 2) * r * 0.12
                start = (cx + side * r * 0.2, nose_y + r * 0.05 + dy * 0.3)
                end = (
                    cx + side * r * rng.uniform(1.05, 1.3),
                    nose_y + dy * 1.6 + rng.uniform(-0.05, 0.05) * r,
                )
                pen.line([start, end], self.whisker, width)


# ------------------------------------------------------------------------------------------ hats

# A hat drawer gets the pen, its random stream, the hat's bottom-centre (x, y), height h, 2 colours.
HatDrawer = Callable[[_Pen, np.random.Generator, float, float, float, Color, Color], None]


def _top_hat(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    brim_w, crown_w = h * rng.uniform(0.9, 1.2), h * rng.uniform(0.55, 0.75)
    p.rect(x - brim_w / 2, y - h * 0.14, x + brim_w / 2, y, c1)
    p.rect(x - crown_w / 2, y - h, x + crown_w / 2, y - h * 0.1, c1)
    p.rect(x - crown_w / 2, y - h * 0.35, x + crown_w / 2, y - h * 0.22, c2)


def _party_cone(
    p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color
) -> None:
    w = h * rng.uniform(0.55, 0.8)
    p.polygon([(x - w / 2, y), (x + w / 2, y), (x, y - h)], c1)
    for t in (0.3, 0.6):  # stripes across the cone
        half = w / 2 * (1 - t)
        p.line([(x - half, y - h * t), (x + half, y - h * t + h * 0.05)], c2, h * 0.07)
    pom = h * rng.uniform(0.09, 0.15)
    p.ellipse(x, y - h, pom, pom, c2)


def _beanie(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    w = h * rng.uniform(0.9, 1.2)
    p.polygon(_arc(x, y - h * 0.15, w / 2, h * 0.6, 180, 360), c1)
    p.rect(x - w / 2, y - h * 0.2, x + w / 2, y, c2)
    pom = h * rng.uniform(0.12, 0.2)
    p.ellipse(x, y - h * 0.75, pom, pom, c2)


def _bowler(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    w = h * rng.uniform(0.7, 0.9)
    p.polygon(_arc(x, y - h * 0.1, w / 2, h * 0.7, 180, 360), c1)
    p.ellipse(x, y - h * 0.06, w * 0.75, h * 0.12, c1)
    p.rect(x - w / 2, y - h * 0.28, x + w / 2, y - h * 0.16, c2)


def _crown(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    w = h * rng.uniform(0.8, 1.1)
    points = int(rng.integers(3, 6))
    top = h * 0.75
    pts: list[Point] = [(x - w / 2, y)]
    for i in range(points * 2 + 1):
        pts.append((x - w / 2 + w * i / (points * 2), y - top if i % 2 == 0 else y - top * 0.45))
    pts.append((x + w / 2, y))
    p.polygon(pts, c1)
    gem = h * 0.08
    p.ellipse(x, y - top * 0.3, gem, gem, c2)


def _cap(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    w = h * rng.uniform(0.8, 1.0)
    p.polygon(_arc(x, y, w / 2, h * 0.55, 180, 360), c1)
    side = 1 if rng.random() < 0.5 else -1
    p.polygon(
        [
            (x, y - h * 0.1),
            (x + side * w * 0.95, y - h * 0.02),
            (x + side * w * 0.9, y + h * 0.08),
            (x, y + h * 0.02),
        ],
        c2,
    )


def _witch(p: _Pen, rng: np.random.Generator, x: float, y: float, h: float, c1: Color, c2: Color) -> None:
    brim = h * rng.uniform(1.0, 1.3)
    p.ellipse(x, y - h * 0.02, brim / 2, h * 0.08, c1)
    bend = rng.uniform(-0.25, 0.25) * h
    p.polygon([(x - h * 0.3, y - h * 0.02), (x + h * 0.3, y - h * 0.02), (x + bend, y - h)], c1)
    p.rect(x - h * 0.27, y - h * 0.2, x + h * 0.27, y - h * 0.08, c2)


HAT_TYPES: dict[str, HatDrawer] = {
    "top_hat": _top_hat,
    "party_cone": _party_cone,
    "beanie": _beanie,
    "bowler": _bowler,
    "crown": _crown,
    "cap": _cap,
    "witch": _witch,
}


def _draw_hat(rng: np.random.Generator, cat: _Cat, pen: _Pen) -> None:
    kind = list(HAT_TYPES)[int(rng.integers(len(HAT_TYPES)))]
    h = cat.r * rng.uniform(0.85, 1.2)
    c1, c2 = _random_color(rng), _random_color(rng)
    for _attempt in range(20):  # a hat the colour of the fur would be invisible on the head
        if sum((a - b) ** 2 for a, b in zip(c1, cat.fur, strict=True)) > 60**2:
            break
        c1 = _random_color(rng)
    offset = rng.uniform(-0.3, 0.3) * cat.rx
    x = cat.cx + offset
    # sit on the head outline at that x, a little sunk in, leaning with the head's curve
    y = cat.cy - cat.ry * math.sqrt(max(0.0, 1 - (offset / cat.rx) ** 2)) + h * rng.uniform(0.05, 0.2)
    lean = math.degrees(math.atan2(offset, cat.ry)) * 0.6 + rng.uniform(-15, 15)
    HAT_TYPES[kind](pen.rotated((x, y), lean), rng, x, y, h, c1, c2)


# ----------------------------------------------------------------------------------------- public


def make_image(seed: int, hat: bool, size: int = 64) -> Image.Image:
    """Draw one ``size`` x ``size`` RGB cat face; with ``hat=True`` it wears a tiny hat."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    s = size * _SUPERSAMPLE
    cat_rng = np.random.default_rng([seed, 0])
    hat_rng = np.random.default_rng([seed, 1])
    noise_rng = np.random.default_rng([seed, 2])

    cat = _Cat(cat_rng, s)
    image = _background(cat_rng, size, s)
    draw = ImageDraw.Draw(image)
    crown = _Pen(draw, (cat.cx, cat.cy), cat.tilt).map([(cat.cx, cat.cy - cat.ry - cat.r * 0.4)])[0]
    _clutter(cat_rng, _Pen(draw), s, (crown[0], crown[1], cat.r * 1.2))
    pen = _Pen(draw, (cat.cx, cat.cy), cat.tilt)
    cat.draw(pen)
    if hat:
        _draw_hat(hat_rng, cat, pen)
    image = image.resize((size, size), Image.BOX)

    arr = np.asarray(image, dtype=np.float32)
    arr = arr * noise_rng.uniform(0.85, 1.15) + noise_rng.uniform(-20, 20)  # exposure
    arr += noise_rng.normal(0.0, noise_rng.uniform(2.0, 8.0), size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def image_seed(dataset_seed: int, index: int) -> int:
    """Seed of image ``index`` in the dataset drawn with ``dataset_seed`` (independent streams)."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1)[0])


def make_dataset(n: int, seed: int, size: int = 64) -> tuple[list[Image.Image], np.ndarray]:
    """``n`` images and labels (1 = hat, 0 = no hat), exactly ``n // 2`` with hats, shuffled."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    labels = np.zeros(n, dtype=np.int64)
    labels[: n // 2] = 1
    np.random.default_rng([seed, n]).shuffle(labels)
    images = [make_image(image_seed(seed, i), bool(labels[i]), size) for i in range(n)]
    return images, labels
