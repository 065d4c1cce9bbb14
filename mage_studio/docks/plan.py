"""Plan dock: per-scale toggles, the "refine to scale k" slider, token maps per scale and plots of the planned states."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QSlider, QSpinBox, QWidget)

from mage_core.render import scale_colors
from mage_studio.docks.base import StudioDock, heading, muted

TOKEN_MAP_SIZE = (340, 150)  # default pixels of the token-map image (it follows the panel's width)
TOKEN_LABEL_W = 46  # left margin of the token map holding the row labels "k · p"
TOKEN_MIN_CELLS_W = 120  # the narrowest the token cells may get (pixels right of the labels)
VIEWS_DELAY_MS = 30  # token maps / plots update this long after a plan arrives, so the viewport frame goes first
GOLDEN = 0.61803398875  # spreads code ids over shades: neighbouring ids look different
SEED_MAX = 2 ** 31 - 1  # largest plan seed the spin box offers
DOTS_TIP = "The dots on each plan line mark its token centres: one dot per token of that scale."


def code_shade(color_rgb, code: int) -> QColor:
    """A token cell's colour: its scale's hue, lighter or darker by code id (the row reads as its scale)."""
    base = QColor.fromRgbF(*[float(c) for c in color_rgb])
    h, s_, _, _ = base.getHsvF()
    v = 0.35 + 0.6 * ((int(code) * GOLDEN) % 1.0)
    return QColor.fromHsvF(max(h, 0.0), 0.35 + 0.5 * s_, v)


def token_map_image(tokens: list, codebook_size: int | None = None, size=TOKEN_MAP_SIZE, colors=None) -> QImage:
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


def scale_ranges(ks: list) -> str:
    """0-based scale indices as 1-based runs: [0, 1, 2, 4] -> "1–3, 5"."""
    runs, start = [], None
    for i, k in enumerate(ks):
        if start is None:
            start = k
        if i + 1 == len(ks) or ks[i + 1] != k + 1:
            runs.append(f"{start + 1}" if start == k else f"{start + 1}–{k + 1}")
            start = None
    return ", ".join(runs)


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
        # an explicit minimum: a QLabel's own minimum is its pixmap's size, which kept the panel as wide as the
        # widest window it was ever drawn in (a horizontal scrollbar after shrinking the window)
        self.setMinimumSize(TOKEN_LABEL_W + TOKEN_MIN_CELLS_W, TOKEN_MAP_SIZE[1])
        # the image at the top-left corner, where token_at measures from (centred, a taller label put the hover on
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


def codebook_size(planner) -> int | None:
    """V from the planner (attribute or its checkpoint's model config), None when unknown."""
    v = getattr(planner, "codebook_size", None)
    if v is None:
        v = ((getattr(planner, "ckpt_meta", None) or {}).get("config") or {}).get("model", {}).get("codebook_size")
    return int(v) if v else None


def dim_names(task, obs_dim: int) -> list[str]:
    """Names of the observation dims for the plots: the suite's named slices where it has them, else s[i]."""
    names = [f"s[{i}]" for i in range(int(obs_dim))]
    suite = getattr(task, "suite", None)
    slices = suite.obs_slices(task) if suite is not None else {}
    for name, sl in slices.items():
        idx = range(int(obs_dim))[sl]
        label = name.replace("_xy", "").replace("_", " ")
        for j, i in enumerate(idx):
            names[i] = f"{label} {'xyzw'[j] if len(idx) <= 4 else j}"
    return names


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
        self.refine.setToolTip("Refine to scale k: show scales 1..k only (the others are unchecked), to step the plan "
                               "from coarse to fine ([ and ]). Scale 1 is one token for the whole segment; the finest "
                               "scale is the plan the action comes from.")
        self.lbl_refine = QLabel("1/1")
        row.addWidget(self.refine, 1)
        row.addWidget(self.lbl_refine)
        self.body.addLayout(row)
        self.refine.valueChanged.connect(self._refine_changed)
        self.lbl_walls = muted("")
        self.lbl_walls.setWordWrap(True)
        self.lbl_walls.setToolTip("Whether each scale's plan stays out of the walls. A plan more than a quarter of a "
                                  "cell inside a wall cannot be followed; `mage diagnose --plans` measures how often a "
                                  "checkpoint plans like that along the expert's route.")
        # two lines reserved: a line that grows when a plan arrives would shift everything below it under the mouse
        self.lbl_walls.setMinimumHeight(2 * self.lbl_walls.fontMetrics().lineSpacing() + 2)
        self.body.addWidget(self.lbl_walls)
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        self.spin_seed = QSpinBox()
        self.spin_seed.setRange(0, SEED_MAX)
        self.spin_seed.setToolTip("Sampling seed of the plan: the transformer samples each scale's tokens, so another "
                                  "seed can give another plan for the same start, goal and RTG. The figure caption, "
                                  "the plan JSON and closed-loop runs use it.")
        self.btn_resample = QPushButton("Resample")
        self.btn_resample.setToolTip("Plan the same condition again with the next seed")
        seed_row.addWidget(self.spin_seed, 1)
        seed_row.addWidget(self.btn_resample)
        self.body.addLayout(seed_row)
        self.spin_seed.valueChanged.connect(self.session.set_seed)
        self.btn_resample.clicked.connect(lambda: self.spin_seed.setValue((self.spin_seed.value() + 1) % (SEED_MAX + 1)))

        self.body.addWidget(heading("Compare"))
        crow = QGridLayout()  # two lines: fits a 300-px column
        crow.addWidget(QLabel("Second RTG"), 0, 0)
        self.spin_compare = QDoubleSpinBox()
        self.spin_compare.setDecimals(0)
        self.spin_compare.setRange(-1e9, 1e9)
        self.spin_compare.setToolTip("A second RTG target planned from the same start, goal and seed (within the "
                                     "data's RTG range)")
        self.btn_compare = QPushButton("Compare")
        self.btn_compare.setToolTip("Plan the second RTG target too and draw its finest scale dashed grey over this "
                                    "plan; it re-plans with every condition change until Clear")
        self.btn_compare_clear = QPushButton("Clear")
        self.btn_compare_clear.setToolTip("Stop comparing")
        self.btn_compare_clear.setEnabled(False)
        crow.addWidget(self.spin_compare, 0, 1)
        crow.addWidget(self.btn_compare, 1, 0)
        crow.addWidget(self.btn_compare_clear, 1, 1)
        self.body.addLayout(crow)
        self.lbl_compare = muted("")
        self.body.addWidget(self.lbl_compare)
        self.btn_compare.clicked.connect(lambda: self.set_compare(self.spin_compare.value()))
        self.btn_compare_clear.clicked.connect(lambda: self.set_compare(None))

        self.body.addWidget(heading("Token maps"))
        self.token_label = TokenMap()
        self.token_label.setMinimumHeight(TOKEN_MAP_SIZE[1])
        self.token_label.setToolTip("One row per scale (coarse at the top, labelled scale · tokens); each cell is one "
                                    "token, in its scale's colour shaded by its code id. Hover a cell for its code and "
                                    "time span (highlighted in the viewport).")
        self.body.addWidget(self.token_label)
        self.lbl_tokens = muted("")
        self.body.addWidget(self.lbl_tokens)

        import pyqtgraph as pg

        self.body.addWidget(heading("Planned states per scale"))
        dim_row = QHBoxLayout()
        dim_row.addWidget(QLabel("Dimension"))
        self.dim_combo = QComboBox()
        self.dim_combo.setToolTip("The planned state dimension the plot below shows, one curve per scale")
        self.dim_combo.currentIndexChanged.connect(lambda _: self._plot())
        dim_row.addWidget(self.dim_combo, 1)
        self.body.addLayout(dim_row)
        self.state_plot = pg.PlotWidget()
        self.state_plot.setMinimumHeight(150)
        self.state_plot.setLabel("bottom", "planned step")
        self.body.addWidget(self.state_plot)
        self.rtg_plot = pg.PlotWidget()
        self.rtg_plot.setMinimumHeight(130)
        self.rtg_plot.setLabel("left", "planned RTG")
        self.rtg_plot.setLabel("bottom", "planned step")
        self.rtg_plot.setToolTip("The return-to-go decoded along each scale's plan, from the condition at step 0")
        self.body.addWidget(self.rtg_plot)
        for plot in (self.state_plot, self.rtg_plot):  # plain units on the axes, never "x (x0.001)"
            for ax in ("left", "bottom"):
                plot.getAxis(ax).enableAutoSIPrefix(False)
        self.lbl_dots = muted(DOTS_TIP)
        self.body.addWidget(self.lbl_dots)
        self.body.addStretch(1)
        self.session.planner_changed.connect(self._on_planner)
        self.session.plan_ready.connect(self._on_plan)
        self.token_label.hovered.connect(self._token_hovered)
        self.token_label.resized.connect(lambda: self.show_plan(self.plan) if self.plan is not None else None)
        self.plan = None
        self.compare_rtg: float | None = None  # the second RTG target being compared (None: no comparison)
        self.compare_plan = None  # its plan from the same condition and seed
        self._compare_busy = False
        self.hovered_token = None  # (k, i, code, first step, last step) under the mouse in the token map
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
            c.setToolTip(f"Scale {k + 1}: {pk} token{'s' if pk != 1 else ''} over the {planner.horizon}-step segment "
                         f"(about {planner.horizon / pk:.0f} steps each); uncheck to hide its plan")
            c.toggled.connect(lambda _: self.visibility_changed.emit())
            self.scale_grid.addWidget(c, k // 4, k % 4)
            self.checks.append(c)
        self.set_compare(None)
        lo, hi = self.session.rtg_range()
        self.spin_compare.setRange(lo, hi)  # the data's range, as the Condition dock limits the first target
        self.spin_compare.setValue(lo)  # the low end: the plan that contrasts most with a high target
        self.refine.setRange(1, max(len(scales), 1))
        self.refine.setValue(len(scales))
        self.dim_combo.blockSignals(True)
        self.dim_combo.clear()
        self.dim_combo.addItems(dim_names(getattr(planner, "task", None), planner.obs_dim))
        self.dim_combo.blockSignals(False)
        self.show_plan(None)

    def _refine_changed(self, v: int) -> None:
        """Refine to scale k checks scales 1..k and unchecks the rest: the boxes always say what is drawn."""
        self.lbl_refine.setText(f"{v}/{self.refine.maximum()}")
        for i, c in enumerate(self.checks):
            c.blockSignals(True)
            c.setChecked(i < v)
            c.blockSignals(False)
        self.visibility_changed.emit()

    def visible(self) -> list[bool]:
        return [c.isChecked() for c in self.checks]

    def step_refine(self, delta: int) -> None:
        self.refine.setValue(self.refine.value() + delta)

    # ---- plan --------------------------------------------------------------------------------------------------
    def _on_plan(self, plan) -> None:
        """A plan from the condition: shown unless the viewport is showing a closed-loop run or a replay."""
        if getattr(self.studio, "view_mode", "condition") == "condition":
            self.show_plan(plan)
        if self.compare_rtg is not None:
            self._plan_compare()  # the comparison follows the condition (start, goal, seed)

    # ---- compare two RTG targets from the same start ----------------------------------------------------------
    def set_compare(self, rtg: float | None) -> None:
        """Compare the current plan with a plan for another RTG target (None: stop comparing)."""
        self.compare_rtg = None if rtg is None else float(rtg)
        self.compare_plan = None
        self.btn_compare_clear.setEnabled(rtg is not None)
        if rtg is None:
            self.lbl_compare.setText("")
            self.visibility_changed.emit()
            return
        self.lbl_compare.setText(f"Planning RTG {rtg:.0f}…")
        self._plan_compare()

    def _plan_compare(self) -> None:
        s = self.session
        if s.planner is None or self.compare_rtg is None or self._compare_busy:
            return
        try:
            obs = s.condition_obs()
        except Exception as exc:  # noqa: BLE001 - no condition yet: say why
            self.lbl_compare.setText(f"Cannot compare: {exc}")
            return
        planner, rtg, seed = s.planner, self.compare_rtg, s.seed
        self._compare_busy = True

        def done(plan):
            self._compare_busy = False
            if self.compare_rtg is None:
                return
            if rtg != self.compare_rtg:  # the target changed while planning
                self._plan_compare()
                return
            self.compare_plan = plan
            self._describe_compare()
            self.visibility_changed.emit()

        def failed(msg):
            self._compare_busy = False
            self.lbl_compare.setText(f"Compare failed: {msg}")

        s.worker.submit(lambda: planner.plan(obs, rtg, seed=seed), done, failed)

    def compare_xy(self):
        """(H, 2) xy of the compared plan's finest scale, or None (no comparison, or a task without an xy plan)."""
        if self.compare_plan is None:
            return None
        from mage_core.render import plan_overlay

        try:
            ov = plan_overlay(self.compare_plan.states_KHD, tuple(self.compare_plan.scales), task=self.session.task)
        except Exception:  # noqa: BLE001 - a plan without xy dims
            return None
        return np.asarray(ov.plans_xy[-1]) if ov.plans_xy else None

    def _describe_compare(self) -> None:
        from mage_studio.docks.run import fmt_rtg

        a, b = self.session.plan, self.compare_plan
        xy_b = self.compare_xy()
        text = f"Dashed grey: RTG {fmt_rtg(self.compare_rtg)} (condition {fmt_rtg(b.condition_rtg)})"
        if a is not None:
            text += f" vs this plan's RTG {fmt_rtg(self.session.rtg)} (condition {fmt_rtg(a.condition_rtg)})"
            xa = np.asarray(a.states_KHD)[-1]
            if xy_b is not None:
                from mage_core.render import plan_overlay

                xy_a = np.asarray(plan_overlay(a.states_KHD, tuple(a.scales), task=self.session.task).plans_xy[-1])
                n = min(len(xy_a), len(xy_b))
                gap = float(np.mean(np.linalg.norm(xy_a[:n, :2] - xy_b[:n, :2], axis=1)))
                text += f"; the finest plans are {gap:.2f} apart on average"
            elif xa.shape == np.asarray(b.states_KHD)[-1].shape:
                gap = float(np.mean(np.linalg.norm(xa - np.asarray(b.states_KHD)[-1], axis=1)))
                text += f"; the finest planned states differ by {gap:.2f} on average (no xy to draw for this task)"
        self.lbl_compare.setText(text)

    def show_plan(self, plan) -> None:
        """Show this plan (None: clear the views); draw on the next event-loop turn (the viewport goes first)."""
        self.plan = plan
        if plan is None:
            self.token_label.tokens = []
            self.token_label.clear()
            self.lbl_tokens.setText("")
            self._plot()
            return
        if not self._update_pending:
            self._update_pending = True
            QTimer.singleShot(VIEWS_DELAY_MS, self._update_views)

    def _update_views(self) -> None:
        self._update_pending = False
        plan = self.plan
        if plan is None:
            return
        cb = codebook_size(self.session.planner)
        size = (max(self.token_label.width(), 200), TOKEN_MAP_SIZE[1])
        cols = scale_colors(len(plan.tokens), self.studio.render_config.palette)
        img = token_map_image(list(plan.tokens), cb, size, cols)
        self.token_label.tokens = list(plan.tokens)
        self.token_label.horizon = int(np.asarray(plan.states_KHD).shape[1])
        self.token_label.img_size = size
        self.token_label.setPixmap(QPixmap.fromImage(img))
        self._describe_walls(plan)
        uniq = len(set(int(x) for t in plan.tokens for x in np.asarray(t).reshape(-1)))
        self.lbl_tokens.setText(f"{sum(len(np.asarray(t).reshape(-1)) for t in plan.tokens)} tokens, "
                                f"{uniq} distinct codes" + (f" of {cb}" if cb else "") +
                                f"; tokens per scale {tuple(plan.scales)}")
        self._plot()

    def _describe_walls(self, plan) -> None:
        """One line: which scales' plans run into a wall, and how deep (hidden for tasks without walls)."""
        from mage_core.plancheck import INFEASIBLE_DEPTH, scale_wall_depths

        task = self.session.task
        depth_K = None if task is None else scale_wall_depths(task, plan.states_KHD)
        self.lbl_walls.setVisible(depth_K is not None)
        if depth_K is None:
            return
        bad = [k for k, d in enumerate(depth_K) if d > INFEASIBLE_DEPTH]
        if not bad:
            self.lbl_walls.setText("Walls: every scale's plan stays clear of them.")
            self.lbl_walls.setStyleSheet("")
            return
        worst = max(bad, key=lambda k: depth_K[k])
        finest = "the finest plan too" if bad[-1] == len(depth_K) - 1 else "the finest plan is clear"
        self.lbl_walls.setText(f"Through a wall: scale{'s' if len(bad) > 1 else ''} {scale_ranges(bad)} (deepest "
                               f"{depth_K[worst]:.2f} cell, scale {worst + 1}); {finest}.")
        self.lbl_walls.setStyleSheet("color: #f0a050;")

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
        self.state_plot.setLabel("left", f"planned {self.dim_combo.currentText()}")

    def _token_hovered(self, hit) -> None:
        self.hovered_token = hit
        self.visibility_changed.emit()  # the viewport highlights the hovered token's span
