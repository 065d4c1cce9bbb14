"""Exports from the studio: the current plan as JSON, and a figure PNG (the view with its legend, a title and a caption)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

FIGURE_BG = QColor(18, 21, 28)  # background of the figure's title and caption strips
TITLE_PX = 20  # title font size (pixels)
CAPTION_PX = 14  # caption font size (pixels)
STRIP_PAD = 10  # padding around the title and caption text (pixels)


def plan_to_dict(plan, meta: dict | None = None) -> dict:
    """A JSON-friendly plan: per scale its tokens, decoded states and RTG, plus the condition and `meta` (task,
    checkpoint, target, start, goal, seed)."""
    states = np.asarray(plan.states_KHD, dtype=float)
    rtg = np.asarray(plan.rtg_KH, dtype=float)
    scales = [int(p) for p in plan.scales]
    out = {
        "format": "mage-plan", "version": 1,
        "scales": scales,
        "condition_rtg": float(plan.condition_rtg),
        "requested_rtg": _opt_float(getattr(plan, "requested_rtg", None)),
        "rtg_ceiling": _opt_float(getattr(plan, "rtg_ceiling", None)),
        "action": np.asarray(plan.action_A, dtype=float).round(6).tolist(),
        "per_scale": [{"scale": k + 1, "tokens": [int(t) for t in np.asarray(plan.tokens[k]).reshape(-1)],
                       "states": states[k].round(6).tolist(), "rtg": rtg[k].round(4).tolist()}
                      for k in range(len(scales))],
        "timings_ms": {k: float(v) for k, v in (getattr(plan, "timings_ms", {}) or {}).items()},
    }
    out.update({"meta": _jsonable(meta or {})})
    return out


def write_plan_json(path, plan, meta: dict | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(plan_to_dict(plan, meta), indent=1))
    return path


def compose_figure(view: QImage, title: str, caption: str) -> QImage:
    """The view image (legend and header included) between a title strip and a caption strip, same width."""
    w = view.width()
    tf, cf = QFont(), QFont()
    tf.setPixelSize(TITLE_PX)
    tf.setBold(True)
    cf.setPixelSize(CAPTION_PX)
    th = TITLE_PX + 2 * STRIP_PAD
    from PySide6.QtGui import QFontMetrics

    fm = QFontMetrics(cf)  # the caption's "a  ·  b" parts packed into lines that fit the width (never cut off)
    lines = [ln for line in caption.split("\n") for ln in wrap_parts(line, fm, w - 2 * STRIP_PAD)]
    ch = len(lines) * int(CAPTION_PX * 1.4) + 2 * STRIP_PAD
    img = QImage(w, th + view.height() + ch, QImage.Format.Format_RGB32)
    img.fill(FIGURE_BG)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    p.setFont(tf)
    p.setPen(QColor(235, 238, 245))
    p.drawText(QRectF(STRIP_PAD, 0, w - 2 * STRIP_PAD, th), Qt.AlignmentFlag.AlignVCenter, title)
    p.drawImage(0, th, view)
    p.setFont(cf)
    p.setPen(QColor(190, 196, 210))
    for i, line in enumerate(lines):
        p.drawText(QRectF(STRIP_PAD, th + view.height() + STRIP_PAD + i * int(CAPTION_PX * 1.4), w - 2 * STRIP_PAD,
                          int(CAPTION_PX * 1.4)), Qt.AlignmentFlag.AlignVCenter, line)
    p.end()
    return img


def wrap_parts(text: str, fm, max_w: float, sep: str = "  ·  ") -> list[str]:
    """Pack the sep-separated parts of text into lines no wider than max_w (a part is never split)."""
    lines: list[str] = []
    for part in (x for x in text.split(sep) if x):
        if lines and fm.horizontalAdvance(lines[-1] + sep + part) <= max_w:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines or [text]


def write_rollout(path, frames_png: list, frame_ms: int = 40) -> tuple[Path, str]:
    """Write a recorded rollout (PNG-encoded frames): an animated GIF through Pillow (which matplotlib installs), else
    a folder of numbered PNG frames next to `path`. Returns (what was written, "gif" | "png-sequence")."""
    path = Path(path)
    if not frames_png:
        raise ValueError("no frames recorded")
    try:
        from PIL import Image
    except ImportError:  # no Pillow: the frames as they are, numbered
        folder = path.with_suffix("")
        folder = folder.with_name(folder.name + "-frames")
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(frames_png):
            (folder / f"frame_{i:04d}.png").write_bytes(bytes(data))
        return folder, "png-sequence"
    import io

    images = [Image.open(io.BytesIO(bytes(d))).convert("RGB") for d in frames_png]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(frame_ms), loop=0,
                   optimize=False)
    return path, "gif"


def _opt_float(v):
    return None if v is None else float(v)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
