"""The Plan dock's token map: one row per scale, one cell per token shaded by its code id, hover for its time span."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QLabel

from mage_core.render import scale_colors

TOKEN_MAP_SIZE = (340, 150)  # default pixels of the token-map image (it follows the panel's width)
TOKEN_LABEL_W = 46  # left margin of the token map holding the row labels "k · p"
TOKEN_MIN_CELLS_W = 120  # the narrowest the token cells may get (pixels right of the labels)
GOLDEN = 0.61803398875  # spreads code ids over shades: neighbouring ids look different


def code_shade(color_rgb, code: int) -> QColor:
    """A token cell's colour: its scale's hue, lighter or darker by code id (the row reads as its scale)."""
    base = QColor.fromRgbF(*[float(c) for c in color_rgb])
    h, s_, _, _ = base.getHsvF()
    v = 0.35 + 0.6 * ((int(code) * GOLDEN) % 1.0)
    return QColor.fromHsvF(max(h, 0.0), 0.35 + 0.5 * s_, v)


def token_map_image(tokens: list, size=TOKEN_MAP_SIZE, colors=None) -> QImage:
    """K rows (coarse at the top), each labelled "k · p_k" in its scale colour; row k split into p_k cells shaded
    by code id in that scale's hue."""
    w, h = size
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.fill(QColor(24, 28, 37))
    if not tokens:
        return img
    K = len(tokens)
    cols = colors if colors is not None else scale_colors(K)
    p = QPainter(img)
    row_h = h / K
    cw = w - TOKEN_LABEL_W
    f = p.font()
    f.setPixelSize(int(max(8, min(12, row_h - 2))))
    p.setFont(f)
    for k, t in enumerate(tokens):
        t = np.asarray(t).reshape(-1)
        n = max(len(t), 1)
        p.setPen(QColor.fromRgbF(*[float(c) for c in cols[k]]))
        p.drawText(QRectF(2, k * row_h, TOKEN_LABEL_W - 6, row_h), Qt.AlignmentFlag.AlignVCenter
                   | Qt.AlignmentFlag.AlignRight, f"{k + 1} · {n}")
        for i, tok in enumerate(t):
            p.fillRect(QRectF(TOKEN_LABEL_W + i * cw / n, k * row_h, cw / n - (1 if n < 40 else 0), row_h - 1),
                       code_shade(cols[k], int(tok)))
    p.end()
    return img


def token_at(tokens: list, horizon: int, size, x: float, y: float):
    """(scale k, token i, code, first step, last step) of the token-map cell under (x, y), or None."""
    w, h = size
    if not tokens or x < TOKEN_LABEL_W or not (0 <= y < h) or x >= w:
        return None
    K = len(tokens)
    k = min(int(y / (h / K)), K - 1)
    t = np.asarray(tokens[k]).reshape(-1)
    n = max(len(t), 1)
    i = min(int((x - TOKEN_LABEL_W) / ((w - TOKEN_LABEL_W) / n)), n - 1)
    a = int(round(i * horizon / n))
    b = max(a, int(round((i + 1) * horizon / n)) - 1)
    return k, i, int(t[i]), a, b


class TokenMap(QLabel):
    """The token-map image; hovering a cell shows its scale, code and time span and reports it (hovered signal)."""

    hovered = Signal(object)  # (k, i, code, first step, last step) or None when the mouse leaves
    resized = Signal()  # the image is re-drawn at the new width (it never holds the panel wider than its column)

    def __init__(self):
        super().__init__()
        self.setMouseTracking(True)
        # an explicit minimum: a QLabel's own minimum is its pixmap's size, which would keep the panel as wide as the
        # widest window it was ever drawn in (a horizontal scrollbar after shrinking the window)
        self.setMinimumSize(TOKEN_LABEL_W + TOKEN_MIN_CELLS_W, TOKEN_MAP_SIZE[1])
        # the image at the top-left corner, where token_at measures from (centred, a taller label would put the hover on
        # the wrong scale's row)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.tokens: list = []
        self.horizon = 1
        self.img_size = TOKEN_MAP_SIZE

    def mouseMoveEvent(self, event) -> None:
        hit = token_at(self.tokens, self.horizon, self.img_size, event.position().x(), event.position().y())
        if hit is not None:
            k, i, code, a, b = hit
            self.setToolTip(f"scale {k + 1} ({len(np.asarray(self.tokens[k]).reshape(-1))} tokens) · token {i + 1} · "
                            f"code {code} · steps {a}–{b} of {self.horizon}")
        self.hovered.emit(hit)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self.hovered.emit(None)
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.resized.emit()
