"""Plan dock: per-scale toggles, the "refine to scale k" slider, token maps per scale and plots of the planned states."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QWidget

from mage_core.render import scale_colors
from mage_studio.docks.base import StudioDock, heading, muted

TOKEN_MAP_SIZE = (360, 150)  # pixels of the token-map image
VIEWS_DELAY_MS = 30  # token maps / plots update this long after a plan arrives, so the viewport frame goes first


def token_map_image(tokens: list, codebook_size: int | None, size=TOKEN_MAP_SIZE) -> QImage:
    """K rows (coarse at the top); row k split into p_k cells coloured by token id."""
    w, h = size
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.fill(QColor(24, 28, 37))
    if not tokens:
        return img
    K = len(tokens)
    v = codebook_size or max(int(max(np.max(t) for t in tokens if len(t))) + 1, 1)
    p = QPainter(img)
    row_h = h / K
    for k, t in enumerate(tokens):
        t = np.asarray(t).reshape(-1)
        n = max(len(t), 1)
        for i, tok in enumerate(t):
            hue = (int(tok) * 0.61803398875) % 1.0  # golden-ratio hues: neighbouring ids look different
            col = QColor.fromHsvF(hue, 0.55, 0.35 + 0.6 * (int(tok) % 7) / 6)
            p.fillRect(QRectF(i * w / n, k * row_h, w / n + 0.5, row_h - 1), col)
    p.end()
    return img


def codebook_size(planner) -> int | None:
    """V from the planner (attribute or its checkpoint's model config), None when unknown."""
    v = getattr(planner, "codebook_size", None)
    if v is None:
        v = ((getattr(planner, "ckpt_meta", None) or {}).get("config") or {}).get("model", {}).get("codebook_size")
    return int(v) if v else None


class PlanDock(StudioDock):
    """Shows the plan the planner produced, scale by scale."""

    visibility_changed = Signal()

    def __init__(self, studio):
        super().__init__("Plan", "dock_plan", studio)
        self.body.addWidget(heading("Scales (coarse → fine)"))
        self.scale_box = QWidget()
        self.scale_grid = QGridLayout(self.scale_box)
        self.scale_grid.setContentsMargins(0, 0, 0, 0)
        self.body.addWidget(self.scale_box)
        self.checks: list[QCheckBox] = []
        row = QHBoxLayout()
        row.addWidget(QLabel("Refine to scale"))
        self.refine = QSlider(Qt.Orientation.Horizontal)
        self.refine.setRange(1, 1)
        self.refine.setToolTip("Show scales 1..k only: step the plan from coarse to fine ([ and ])")
        self.lbl_refine = QLabel("1/1")
        row.addWidget(self.refine, 1)
        row.addWidget(self.lbl_refine)
        self.body.addLayout(row)
        self.refine.valueChanged.connect(self._refine_changed)

        self.body.addWidget(heading("Token maps"))
        self.token_label = QLabel()
        self.token_label.setMinimumHeight(TOKEN_MAP_SIZE[1])
        self.token_label.setToolTip("One row per scale (coarse at the top); each cell is one token, coloured by its id")
        self.body.addWidget(self.token_label)
        self.lbl_tokens = muted("")
        self.body.addWidget(self.lbl_tokens)

        import pyqtgraph as pg

        self.body.addWidget(heading("Planned states per scale"))
        dim_row = QHBoxLayout()
        dim_row.addWidget(QLabel("Dimension"))
        self.dim_combo = QComboBox()
        self.dim_combo.currentIndexChanged.connect(lambda _: self._plot())
        dim_row.addWidget(self.dim_combo, 1)
        self.body.addLayout(dim_row)
        self.state_plot = pg.PlotWidget()
        self.state_plot.setMinimumHeight(150)
        self.state_plot.setLabel("bottom", "step in segment")
        self.body.addWidget(self.state_plot)
        self.rtg_plot = pg.PlotWidget()
        self.rtg_plot.setMinimumHeight(130)
        self.rtg_plot.setLabel("left", "RTG")
        self.rtg_plot.setLabel("bottom", "step in segment")
        self.body.addWidget(self.rtg_plot)
        self.body.addStretch(1)
        self.session.planner_changed.connect(self._on_planner)
        self.session.plan_ready.connect(self._on_plan)
        self.plan = None
        self._update_pending = False
        self._state_curves: list = []
        self._rtg_curves: list = []

    # ---- scales ------------------------------------------------------------------------------------------------
    def _on_planner(self, planner) -> None:
        for c in self.checks:
            c.deleteLater()
        self.checks = []
        scales = tuple(planner.scales)
        cols = scale_colors(len(scales), self.studio.render_config.palette)
        for k, pk in enumerate(scales):
            c = QCheckBox(f"{k + 1}: {pk}")
            c.setChecked(True)
            r, g, b = (int(255 * x) for x in cols[k])
            c.setStyleSheet(f"QCheckBox::indicator:checked {{ background: rgb({r},{g},{b}); border: 1px solid #ddd; }}")
            c.setToolTip(f"scale {k + 1}: {pk} token(s) over the segment")
            c.toggled.connect(lambda _: self.visibility_changed.emit())
            self.scale_grid.addWidget(c, k // 4, k % 4)
            self.checks.append(c)
        self.refine.setRange(1, max(len(scales), 1))
        self.refine.setValue(len(scales))
        names = ["RTG"] + [f"s[{i}]" for i in range(int(planner.obs_dim))]
        task = getattr(planner, "task", None)
        if task is not None and task.is_maze and planner.obs_dim >= 6:
            names[1:7] = ["x", "y", "vx", "vy", "goal x", "goal y"]
        self.dim_combo.blockSignals(True)
        self.dim_combo.clear()
        self.dim_combo.addItems(names[1:])
        self.dim_combo.blockSignals(False)

    def _refine_changed(self, v: int) -> None:
        self.lbl_refine.setText(f"{v}/{self.refine.maximum()}")
        self.visibility_changed.emit()

    def visible(self) -> list[bool]:
        k = self.refine.value()
        return [c.isChecked() and i < k for i, c in enumerate(self.checks)]

    def step_refine(self, delta: int) -> None:
        self.refine.setValue(self.refine.value() + delta)

    # ---- plan --------------------------------------------------------------------------------------------------
    def _on_plan(self, plan) -> None:
        """Remember the plan; draw the token maps and plots on the next event-loop turn (the viewport goes first)."""
        self.plan = plan
        if not self._update_pending:
            self._update_pending = True
            QTimer.singleShot(VIEWS_DELAY_MS, self._update_views)

    def _update_views(self) -> None:
        self._update_pending = False
        plan = self.plan
        if plan is None:
            return
        cb = codebook_size(self.session.planner)
        img = token_map_image(list(plan.tokens), cb)
        self.token_label.setPixmap(QPixmap.fromImage(img))
        uniq = len(set(int(x) for t in plan.tokens for x in np.asarray(t).reshape(-1)))
        self.lbl_tokens.setText(f"{sum(len(np.asarray(t).reshape(-1)) for t in plan.tokens)} tokens, "
                                f"{uniq} distinct codes; scales {tuple(plan.scales)}")
        self._plot()

    def _plot(self) -> None:
        """Update the per-scale curves in place (re-using plot items keeps re-plans cheap on the UI thread)."""
        import pyqtgraph as pg

        plan = self.plan
        if plan is None or self.dim_combo.currentIndex() < 0:
            for c in self._state_curves + self._rtg_curves:
                c.setData([], [])
            return
        d = self.dim_combo.currentIndex()
        states = np.asarray(plan.states_KHD)
        rtg = np.asarray(plan.rtg_KH)
        K = states.shape[0]
        if len(self._state_curves) != K:
            self.state_plot.clear()
            self.rtg_plot.clear()
            cols = scale_colors(K, self.studio.render_config.palette)
            pens = [pg.mkPen(tuple(int(255 * c) for c in cols[k]), width=2.2 if k == K - 1 else 1.4) for k in range(K)]
            self._state_curves = [self.state_plot.plot(pen=pens[k]) for k in range(K)]
            self._rtg_curves = [self.rtg_plot.plot(pen=pens[k]) for k in range(K)]
        vis = self.visible()
        for k in range(K):
            show = not (k < len(vis) and not vis[k])
            if show and d < states.shape[2]:
                self._state_curves[k].setData(states[k, :, d])
                self._rtg_curves[k].setData(rtg[k])
            else:
                self._state_curves[k].setData([], [])
                self._rtg_curves[k].setData([], [])
        self.state_plot.setLabel("left", self.dim_combo.currentText())
