"""Frames to a video file: MP4 (H.264) through imageio's ffmpeg plugin, the optional `video` extra, or GIF through
Pillow; a caption band under a frame and a legend box on it. Qt-free, for the CLI and the studio alike."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from mage_core.errors import MageError, UsageError

VIDEO_SUFFIXES = (".mp4", ".gif")  # the formats write_video writes, by file suffix
VIDEO_EXTRA = 'pip install "mage-studio[video]"'  # the install step for MP4 (imageio + imageio-ffmpeg's own ffmpeg)
CAPTION_BG = (22, 24, 30)  # colour of the caption band
CAPTION_FG = (232, 234, 240)  # caption text colour
CAPTION_PAD = 6  # pixels around and between caption lines


def check_video_path(path) -> Path:
    """The path as a Path when write_video can write it (.mp4 with the `video` extra installed, or .gif); else a
    UsageError for another suffix, a MageError naming the install step for MP4 without the extra. Call it before the
    work that makes the frames."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UsageError(f"{p}: a video is written as {' or '.join(VIDEO_SUFFIXES)}, by its suffix")
    if suffix == ".mp4":
        try:
            import imageio.v2  # noqa: F401
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise MageError(f"MP4 needs imageio with its ffmpeg plugin: {VIDEO_EXTRA} (or write a .gif)") from None
    return p


def _even(frame_HW3: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: repeat the last row / column where one is odd."""
    h, w = frame_HW3.shape[:2]
    return np.pad(frame_HW3, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame_HW3


class VideoWriter:
    """Frames appended one at a time to an MP4 (streamed to ffmpeg) or a GIF (kept as palette images until close).
    The file appears only when closed after at least one frame (written beside it, then renamed); a writer left by an
    exception leaves nothing. Use as a context manager, or call close()."""

    def __init__(self, path, fps: float = 30.0):
        self.path = check_video_path(path)
        if not fps > 0:
            raise UsageError(f"frames per second must be positive, got {fps}")
        self.fps = float(fps)
        self.frames = 0  # frames appended so far
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
        self._mp4 = None
        self._gif: list = []
        if self.path.suffix.lower() == ".mp4":
            import imageio.v2 as iio

            self._mp4 = iio.get_writer(self._tmp, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                       quality=7, macro_block_size=1, pixelformat="yuv420p",
                                       ffmpeg_log_level="error")

    def append(self, frame_HW3: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 RGB frame (every frame the same size)."""
        rgb = _rgb(frame_HW3)
        if self._mp4 is not None:
            self._mp4.append_data(_even(rgb))
        else:
            from PIL import Image

            self._gif.append(Image.fromarray(rgb).quantize(colors=256, method=Image.Quantize.MEDIANCUT))
        self.frames += 1

    def close(self, keep: bool = True) -> Path | None:
        """Finish the file; returns its path (None when nothing was kept: no frames, or keep=False)."""
        try:
            if self._mp4 is not None:
                self._mp4.close()
                self._mp4 = None
            elif self._gif and keep:
                self._gif[0].save(self._tmp, format="GIF", save_all=True, append_images=self._gif[1:],
                                  duration=max(20, int(round(1000 / self.fps))), loop=0)
            self._gif = []
            if keep and self.frames:
                os.replace(self._tmp, self.path)
                return self.path
            return None
        finally:
            if self._tmp.exists():
                self._tmp.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)


def write_video(path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write (H, W, 3) uint8 RGB frames (any iterable: MP4 streams them) to path (.mp4 or .gif); returns the path."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.append(frame)
    if not writer.frames:
        raise MageError(f"no frames to write to {path}")
    return writer.path


def _rgb(frame) -> np.ndarray:
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] != 3:
        raise MageError(f"a video frame must be an (H, W, 3) RGB image; got shape {f.shape}")
    return np.ascontiguousarray(f, dtype=np.uint8)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # a scalable font where Pillow has FreeType
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def caption_frame(frame_HW3: np.ndarray, lines: list[str], font_px: int = 14) -> np.ndarray:
    """The frame with a band under it holding `lines` of text (what the video shows, the numbers so far)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(_rgb(frame_HW3))
    font = _font(font_px)
    line_h = font_px + CAPTION_PAD
    out = Image.new("RGB", (img.width, img.height + len(lines) * line_h + CAPTION_PAD), CAPTION_BG)
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((CAPTION_PAD, img.height + CAPTION_PAD // 2 + i * line_h), line, fill=CAPTION_FG, font=font)
    return np.asarray(out)


LEGEND_BG = (15, 18, 25, 200)  # the legend box: dark and translucent over the scene
LEGEND_SWATCH_PX = 22  # length of a legend row's colour line


def legend_frame(frame_HW3: np.ndarray, rows: list[tuple], font_px: int = 13) -> np.ndarray:
    """The frame with a legend box in its top-right corner: one row per (label, rgb) (rgb in 0..1, drawn as a short
    thick line; None: a text-only row)."""
    from PIL import Image, ImageDraw

    if not rows:
        return _rgb(frame_HW3)
    img = Image.fromarray(_rgb(frame_HW3)).convert("RGBA")
    font = _font(font_px)
    draw = ImageDraw.Draw(img)
    line_h = font_px + CAPTION_PAD
    text_w = max(int(draw.textlength(str(label), font=font)) for label, _ in rows)
    w = text_w + LEGEND_SWATCH_PX + 3 * CAPTION_PAD
    h = len(rows) * line_h + CAPTION_PAD
    x0 = max(img.width - w - 2 * CAPTION_PAD, 0)
    y0 = 2 * CAPTION_PAD
    box = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(box).rounded_rectangle((x0, y0, x0 + w, y0 + h), radius=6, fill=LEGEND_BG)
    img = Image.alpha_composite(img, box)
    draw = ImageDraw.Draw(img)
    for i, (label, rgb) in enumerate(rows):
        y = y0 + CAPTION_PAD // 2 + i * line_h
        tx = x0 + CAPTION_PAD
        if rgb is not None:
            c = tuple(int(round(255 * float(v))) for v in rgb[:3])
            mid = y + line_h // 2
            draw.line((tx, mid, tx + LEGEND_SWATCH_PX, mid), fill=c, width=4)
            tx += LEGEND_SWATCH_PX + CAPTION_PAD
        draw.text((tx, y + 1), str(label), fill=CAPTION_FG, font=font)
    return np.asarray(img.convert("RGB"))
