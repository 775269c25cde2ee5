"""Generation settings in PNG files, in the A1111 "parameters" text chunk that other Stable Diffusion tools read.

    a red circle
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: demo-shapes

Qt-free; PIL comes with diffusers. Also stores images content-addressed under the data dir
(``images/<sha256>.png``), the shape the session store and exports expect.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from playground.errors import KnownError

KEY = "parameters"
_PARAM = re.compile(r'\s*([\w][\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def format_parameters(s: dict[str, Any]) -> str:
    """The A1111 text for ``settings`` (prompt, negative_prompt, steps, guidance, seed, width, height, scheduler,
    model; missing ones are left out)."""
    lines = [str(s.get("prompt", ""))]
    if s.get("negative_prompt"):
        lines.append(f"Negative prompt: {s['negative_prompt']}")
    fields = []
    for label, key in (("Steps", "steps"), ("Sampler", "scheduler"), ("CFG scale", "guidance"), ("Seed", "seed")):
        if s.get(key) is not None:
            fields.append(f"{label}: {_quote(_num(s[key]))}")
    if s.get("width") and s.get("height"):
        fields.append(f"Size: {s['width']}x{s['height']}")
    if s.get("model"):
        fields.append(f"Model: {_quote(str(s['model']))}")
    if fields:
        lines.append(", ".join(fields))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict[str, Any]:
    """Settings from A1111 text: prompt, negative_prompt, and whichever of steps, scheduler, guidance, seed,
    width, height, model it names (other fields under "extra")."""
    lines = text.strip().split("\n")
    params_line = ""
    if lines and len(_PARAM.findall(lines[-1])) >= 2 and lines[-1].lstrip().startswith("Steps:"):
        params_line = lines.pop()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip()}
    extra: dict[str, str] = {}
    for key, value in _PARAM.findall(params_line):
        value = _unquote(value.strip())
        try:
            if key == "Steps":
                out["steps"] = int(value)
            elif key == "Sampler":
                out["scheduler"] = value
            elif key == "CFG scale":
                out["guidance"] = float(value)
            elif key == "Seed":
                out["seed"] = int(value)
            elif key == "Size":
                w, h = value.lower().split("x")
                out["width"], out["height"] = int(w), int(h)
            elif key == "Model":
                out["model"] = value
            else:
                extra[key] = value
        except ValueError:
            extra[key] = value
    if extra:
        out["extra"] = extra
    return out


def png_bytes(image: Any, settings: dict[str, Any]) -> bytes:
    """The PIL ``image`` as PNG bytes carrying ``settings`` in the "parameters" text chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(KEY, format_parameters(settings))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_settings(source: str | Path | bytes) -> dict[str, Any] | None:
    """The settings written in a PNG (a path or its bytes), or None when it carries no "parameters" chunk."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            text = im.info.get(KEY) or (getattr(im, "text", {}) or {}).get(KEY)
    except (OSError, UnidentifiedImageError) as exc:
        raise KnownError(f"Not a readable image: {exc}") from exc
    return parse_parameters(text) if isinstance(text, str) and text.strip() else None


def store_png(data: bytes, root: Path) -> dict[str, str]:
    """Write PNG bytes as ``root/images/<sha256>.png`` (content-addressed, idempotent); return the run's image ref
    ``{"path": "images/<sha256>.png", "sha256": ...}``."""
    digest = hashlib.sha256(data).hexdigest()
    rel = f"images/{digest}.png"
    dest = root / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return {"path": rel, "sha256": digest}


def _num(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _quote(value: Any) -> str:
    text = str(value)
    if "," in text or "\n" in text or ":" in text or '"' in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
    return text
