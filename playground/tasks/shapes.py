"""Synthetic captioned shapes for the embedded demo text-to-image model, and a checker of generated images.

Captions follow one grammar: ``a {colour} {shape}[ on a {background} background][ {position}]`` ("an" before a
vowel), e.g. "a red circle", "a blue square on a yellow background", "a green triangle at the top left".
An unspecified background is white (black for a white shape); an unspecified position is the centre. The same
module renders training images and judges generated ones (dominant colour, shape by bounding-box fill, background,
position by centroid), so the training script's evaluation and the tests agree on what "follows the prompt" means.
numpy only: no torch, no Qt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 220, 30),
    "green": (30, 170, 60),
    "blue": (30, 80, 220),
    "purple": (140, 50, 190),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
# Position phrase -> (x, y) centre as fractions of the image size.
POSITIONS: dict[str, tuple[float, float]] = {
    "at the top left": (0.28, 0.28),
    "at the top": (0.5, 0.28),
    "at the top right": (0.72, 0.28),
    "on the left": (0.28, 0.5),
    "in the center": (0.5, 0.5),
    "on the right": (0.72, 0.5),
    "at the bottom left": (0.28, 0.72),
    "at the bottom": (0.5, 0.72),
    "at the bottom right": (0.72, 0.72),
}
WORDS = ("a", "an", "on", "background", "at", "the", "in", "top", "bottom", "left", "right", "center",
         *COLOURS, *SHAPES)


@dataclass(frozen=True)
class Caption:
    """One scene: what the prompt asks for. ``background``/``position`` are None when the prompt leaves them out."""

    colour: str
    shape: str
    background: str | None = None
    position: str | None = None

    @property
    def text(self) -> str:
        """The prompt for this scene, in the one grammar the demo model was trained on."""
        out = f"{_article(self.colour)} {self.colour} {self.shape}"
        if self.background:
            out += f" on {_article(self.background)} {self.background} background"
        if self.position:
            out += f" {self.position}"
        return out

    @property
    def effective_background(self) -> str:
        """The background colour the image should have (white by default, black behind a white shape)."""
        if self.background:
            return self.background
        return "black" if self.colour == "white" else "white"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def parse_caption(text: str) -> Caption | None:
    """Returns the Caption a prompt in the demo grammar describes, or None when it does not name a colour and shape."""
    words = text.lower().replace(",", " ").split()
    colour = shape = background = None
    for i, w in enumerate(words):
        if w in SHAPES and shape is None:
            shape = w
            if i > 0 and words[i - 1] in PALETTE:
                colour = words[i - 1]
        if w == "background" and i > 0 and words[i - 1] in PALETTE:
            background = words[i - 1]
    if colour is None or shape is None:
        return None
    position = next((p for p in sorted(POSITIONS, key=len, reverse=True) if p in " ".join(words)), None)
    return Caption(colour, shape, background, position)


def all_captions() -> list[Caption]:
    """Every caption the grammar allows (shape colour differs from the background)."""
    out = []
    for colour in COLOURS:
        for shape in SHAPES:
            for bg in (None, *COLOURS):
                if bg == colour:
                    continue
                for pos in (None, *POSITIONS):
                    out.append(Caption(colour, shape, bg, pos))
    return out


def held_out_captions(n: int = 50, seed: int = 1234) -> list[Caption]:
    """``n`` captions never shown in training (half with a background, a third placed); split into tuning and
    scored prompts by :func:`tuning_captions` / :func:`scored_captions`."""
    rng = random.Random(seed)
    pool = all_captions()
    rng.shuffle(pool)
    chosen: list[Caption] = []
    for c in pool:  # balance: colour and shape appear evenly
        if len(chosen) >= n:
            break
        if sum(x.colour == c.colour for x in chosen) < n // len(COLOURS) + 1 and sum(
            x.shape == c.shape for x in chosen
        ) < n // len(SHAPES) + 1:
            chosen.append(c)
    return chosen


# The unseen captions split once, for every measurement of the demo model: guidance (and any other knob) is picked
# on the tuning prompts only, and the reported figures come from the other 30, which no choice has looked at.
TUNING_PROMPTS = 20


def tuning_captions() -> list[Caption]:
    """Unseen captions used only to pick settings (guidance) for the demo model: the first 20 held-out ones."""
    return held_out_captions()[:TUNING_PROMPTS]


def scored_captions() -> list[Caption]:
    """Unseen captions used only for the demo model's reported figures, disjoint from :func:`tuning_captions`."""
    return held_out_captions()[TUNING_PROMPTS:]


def random_caption(rng: random.Random, exclude: frozenset[str] = frozenset()) -> Caption:
    """A random training caption (60% with a background, 40% with a position), not one of ``exclude``'s texts."""
    while True:
        colour = rng.choice(COLOURS)
        shape = rng.choice(SHAPES)
        bg = rng.choice([c for c in COLOURS if c != colour]) if rng.random() < 0.6 else None
        pos = rng.choice(list(POSITIONS)) if rng.random() < 0.4 else None
        cap = Caption(colour, shape, bg, pos)
        if cap.text not in exclude:
            return cap


def render(captions: list[Caption], size: int = 64, rng: random.Random | None = None,
           supersample: int = 2) -> np.ndarray:
    """Returns uint8 images (B, size, size, 3) drawing each caption, with jittered size/position and soft edges."""
    rng = rng or random.Random(0)
    b, s = len(captions), size * supersample
    # per-image parameters as fractions of the image size
    cx = np.empty(b)
    cy = np.empty(b)
    r = np.empty(b)
    for i, c in enumerate(captions):
        if c.position and c.position != "in the center":
            px, py = POSITIONS[c.position]
            r[i] = rng.uniform(0.14, 0.19)
            jitter = 0.03
        else:
            px, py = 0.5, 0.5
            r[i] = rng.uniform(0.2, 0.3) if not c.position else rng.uniform(0.16, 0.22)
            jitter = 0.04
        cx[i] = px + rng.uniform(-jitter, jitter)
        cy[i] = py + rng.uniform(-jitter, jitter)
    coords = (np.arange(s) + 0.5) / s
    x = coords[None, None, :]  # (1, 1, S)
    y = coords[None, :, None]  # (1, S, 1)
    cx3, cy3, r3 = cx[:, None, None], cy[:, None, None], r[:, None, None]
    circle = (x - cx3) ** 2 + (y - cy3) ** 2 <= r3**2
    square = (np.abs(x - cx3) <= r3 * 0.88) & (np.abs(y - cy3) <= r3 * 0.88)
    top = cy3 - r3
    triangle = (y <= cy3 + r3 * 0.8) & (y >= top) & (np.abs(x - cx3) <= (y - top) * 0.62)
    kind = np.array([SHAPES.index(c.shape) for c in captions])[:, None, None]
    mask = np.where(kind == 0, circle, np.where(kind == 1, square, triangle))  # (B, S, S)
    fg = np.array([PALETTE[c.colour] for c in captions], dtype=np.float32)[:, None, None, :]
    bg = np.array([PALETTE[c.effective_background] for c in captions], dtype=np.float32)[:, None, None, :]
    img = np.where(mask[..., None], fg, bg)  # (B, S, S, 3)
    if supersample > 1:
        img = img.reshape(b, size, supersample, size, supersample, 3).mean(axis=(2, 4))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Judgement:
    """What the checker sees in an image; ``*_ok`` compare it with the caption (position_ok is None if unasked)."""

    colour: str | None
    shape: str | None
    background: str
    position: str | None
    colour_ok: bool
    shape_ok: bool
    background_ok: bool
    position_ok: bool | None


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette name nearest to an RGB triple."""
    names = list(PALETTE)
    ref = np.array([PALETTE[n] for n in names], dtype=np.float32)
    return names[int(np.argmin(((ref - rgb.astype(np.float32)) ** 2).sum(axis=1)))]


def judge(image: np.ndarray, caption: Caption, threshold: float = 70.0) -> Judgement:
    """Judges a uint8 (H, W, 3) image against ``caption``: background from the border, the shape as the pixels far
    from it; colour = nearest palette colour of their median, shape = bounding-box fill (square ~0.78+, circle ~0.6+,
    triangle ~0.4), position = centroid in a 3×3 grid."""
    img = image[..., :3].astype(np.float32)
    h, w = img.shape[:2]
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[:, :2].reshape(-1, 3),
                             img[:, -2:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    background = nearest_colour(bg_rgb)
    mask = np.sqrt(((img - bg_rgb) ** 2).sum(axis=-1)) > threshold
    colour = shape = position = None
    if mask.sum() >= 0.02 * h * w:
        colour = nearest_colour(np.median(img[mask], axis=0))
        ys, xs = np.nonzero(mask)
        rows = np.nonzero(mask.sum(axis=1) >= 2)[0]  # rows/columns with 2+ pixels: stray specks don't widen the box
        cols = np.nonzero(mask.sum(axis=0) >= 2)[0]
        if len(rows) == 0 or len(cols) == 0:
            rows, cols = ys, xs
        y0, y1, x0, x1 = rows.min(), rows.max(), cols.min(), cols.max()
        box = (y1 - y0 + 1) * (x1 - x0 + 1)
        fill = mask[y0 : y1 + 1, x0 : x1 + 1].sum() / max(box, 1)
        if fill >= 0.86:
            shape = "square"
        elif fill >= 0.64:
            shape = "circle"
        else:
            shape = "triangle"
        col = "left" if xs.mean() < w / 3 else "right" if xs.mean() > 2 * w / 3 else ""
        row = "top" if ys.mean() < h / 3 else "bottom" if ys.mean() > 2 * h / 3 else ""
        position = {
            ("top", "left"): "at the top left", ("top", ""): "at the top", ("top", "right"): "at the top right",
            ("", "left"): "on the left", ("", ""): "in the center", ("", "right"): "on the right",
            ("bottom", "left"): "at the bottom left", ("bottom", ""): "at the bottom",
            ("bottom", "right"): "at the bottom right",
        }[(row, col)]
    return Judgement(
        colour=colour,
        shape=shape,
        background=background,
        position=position,
        colour_ok=colour == caption.colour,
        shape_ok=shape == caption.shape,
        background_ok=background == caption.effective_background,
        position_ok=None if caption.position is None else position == caption.position,
    )


def score(images: list[np.ndarray], captions: list[Caption]) -> dict[str, float]:
    """Returns the rates (0..1) of colour, shape, both, background and (asked-for) position being right."""
    js = [judge(im, c) for im, c in zip(images, captions, strict=True)]
    placed = [j for j in js if j.position_ok is not None]
    n = max(len(js), 1)
    return {
        "colour": sum(j.colour_ok for j in js) / n,
        "shape": sum(j.shape_ok for j in js) / n,
        "colour_and_shape": sum(j.colour_ok and j.shape_ok for j in js) / n,
        "background": sum(j.background_ok for j in js) / n,
        "position": sum(bool(j.position_ok) for j in placed) / max(len(placed), 1),
        "n": float(len(js)),
    }
