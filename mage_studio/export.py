"""Exports from the studio: the current plan as JSON, a figure PNG (the view with its legend, a title and a caption),
and a closed-loop rollout as an animated GIF."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from mage_studio.rollout import fmt_rtg

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
        "held_scales": int(getattr(plan, "held_scales", 0) or 0),  # scales 1..k given, not sampled (0: none)
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
    """Write a recorded rollout (PNG-encoded frames): an MP4 when the path ends in .mp4 (the `video` extra), else an
    animated GIF through Pillow, or without Pillow a folder of numbered PNG frames next to `path`. Returns (what was
    written, "mp4" | "gif" | "png-sequence")."""
    path = Path(path)
    if not frames_png:
        raise ValueError("no frames recorded")
    if path.suffix.lower() == ".mp4":  # MP4 through the engine's video writer (the `video` extra)
        import io

        from PIL import Image

        from mage_core.video import check_video_path, write_video

        check_video_path(path)
        frames = (np.asarray(Image.open(io.BytesIO(bytes(d))).convert("RGB")) for d in frames_png)
        return write_video(path, frames, fps=1000.0 / max(int(frame_ms), 1)), "mp4"
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


def figure_caption(state) -> tuple[str, str]:
    """(title, caption) for an exported figure of the studio's state: what is shown and under which condition."""
    s = state
    run = s.view_mode == "run"
    frame = s.run_frame if run else None
    task = s.task.name if s.task is not None else "no task"
    ckpt = Path(s.planner_path).name if s.planner_path else ("in-memory planner" if s.planner else "no checkpoint")
    plan = (frame.plan if frame is not None else None) if run else s.plan
    title = f"MAGE closed loop · {task}" if run else f"MAGE plan · {task}"
    parts = [f"checkpoint {ckpt}", f"RTG target {fmt_rtg(s.rtg)}"]
    if plan is not None:
        parts.append(f"condition {fmt_rtg(plan.condition_rtg)}")
        shown = [str(k + 1) for k, v in enumerate(s.overlay.visible) if v]
        parts.append(f"scales shown {', '.join(shown) or 'none'} of {len(plan.scales)} "
                     f"(refined to scale {s.overlay.refine})")
    held = int(getattr(plan, "held_scales", 0) or 0) if plan is not None else 0
    if held:
        parts.append(f"scales 1–{held} held, finer ones sampled")
    if s.view_mode == "condition" and s.overlay.alternatives:
        parts.append(f"{len(s.overlay.alternatives)} alternatives at scale {s.overlay.alternatives_scale} "
                     f"(faint, numbered by likelihood)")
    if s.view_mode == "condition" and s.overlay.compare_plan is not None:
        what = (f"checkpoint {Path(s.overlay.compare_checkpoint).name} at the same target and seed"
                if s.overlay.compare_checkpoint is not None else f"RTG target {fmt_rtg(s.overlay.compare_rtg)}")
        parts.append(f"compared with {what} (dashed grey, finest scale)")
    parts.append(f"seed {frame.seed if frame is not None else s.seed}")  # the run's own seed during a run
    if frame is not None:  # the step's own target and condition
        parts = [parts[0]] + parts[3:] + [frame.status()]
    return title, "  ·  ".join(parts)  # compose_figure wraps it to the figure's width


class Exporter:
    """File ▸ Save figure and Export plan for the studio's state and view; outcomes go to the status bar, failures
    to report_error."""

    def __init__(self, state, viewport, report_error: Callable[[str, str], None],
                 show_status: Callable[[str, int], None]):
        self.state = state
        self.viewport = viewport
        self.report_error = report_error  # (title, message): a non-blocking error dialog
        self.show_status = show_status  # (text, milliseconds): a status-bar line

    def export_figure(self, path: str, on_done: Callable | None = None) -> None:
        """Render the view at its full resolution, then save it with legend, title and caption (asynchronous);
        on_done(path or None) once written."""
        vp = self.viewport
        if vp.task is None:
            self.report_error("Cannot save the figure", "There is no scene to save yet.")
            return
        rid = vp.refresh(budget=10 ** 9)  # one frame at the view's full resolution (the usual one is capped)

        def shot():
            title, caption = figure_caption(self.state)
            fig = compose_figure(vp.grab().toImage(), title, caption)
            ok = fig.save(str(path))
            vp.refresh(settled=True)
            if ok:
                self.show_status(f"Saved {path} ({fig.width()}×{fig.height()})", 6000)
            else:
                self.report_error("Cannot save the figure", f"Could not write {path}.")
            if on_done is not None:
                on_done(str(path) if ok else None)

        vp.when_shown(rid, shot)

    def export_plan(self, path: str) -> str | None:
        """Write the current plan and its condition as JSON; returns the path (None: no plan, or not written)."""
        s = self.state
        if s.plan is None:
            return None
        meta = {"task": s.task.name if s.task else None, "checkpoint": s.planner_path, "rtg_target": s.rtg,
                "start_xy": s.start_xy, "goal_xy": s.goal_xy, "seed": s.seed,
                "held_tokens": [t.tolist() for t in s.held_tokens] if s.held_tokens else None}
        try:
            write_plan_json(path, s.plan, meta)
        except OSError as exc:
            self.report_error("Cannot export the plan", f"Could not write {path}: {exc.strerror}.")
            return None
        self.show_status(f"Exported the plan to {path}", 6000)
        return str(path)


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


def run_target_pair(state, act, path: str, on_done: Callable) -> None:
    """Write the low / high RTG target pair of the loaded planner on the worker (the data's return range, the current
    seed); on_done(result with a one-line 'message') or on_done(None) after the error was reported."""
    from mage_core.target_pair import write_target_pair

    planner = state.planner
    if planner is None:
        act.report_error("Nothing to run", "Open a checkpoint first: the pair runs its planner at two targets.")
        on_done(None)
        return
    lo, hi = state.rtg_range()
    seed = int(state.seed)

    def job():
        r = write_target_pair(None, path, low=lo, high=hi, seed=seed, planner=planner)
        parts = []
        for run, which in zip(r["runs"], ("low", "high")):
            norm = "" if run["normalised"] is None else f" ({run['normalised']:.0f} normalised)"
            parts.append(f"{which} target {run['target']:,.0f} -> return {run['episode_return']:,.0f}{norm}")
        r["message"] = f"Saved the pair to {r['gif']}: " + "; ".join(parts) + "."
        return r

    def failed(msg):
        act.report_error("Cannot export the pair", msg)
        on_done(None)

    act.run_in_background(job, on_done, failed)
