"""Plan dock: per-scale toggles, the "refine to scale k" slider, token maps per scale and plots of the planned states."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QSlider, QSpinBox, QWidget)

from mage_core.errors import MageError
from mage_core.render import scale_colors
from mage_studio.docks.base import StudioDock, heading, muted
from mage_studio.docks.steer import SteerPanel
from mage_studio.docks.tokens import TOKEN_MAP_SIZE, TokenMap, token_map_image
from mage_studio.overlays import finest_xy
from mage_studio.rollout import fmt_rtg

VIEWS_MAX_DELAY_MS = 300  # token maps / plots update once the viewport shows the plan, or after this long at most
SEED_MAX = 2 ** 31 - 1  # largest plan seed the spin box offers
DOTS_TIP = "The dots on each plan line mark its token centres: one dot per token of that scale."


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
    """Shows the plan the planner produced, scale by scale; sets which scales the view draws (state.overlay)."""

    def __init__(self, state, act, palette: str = "mage", parent=None):
        super().__init__("Plan", "dock_plan", state, act, parent)
        self.palette = palette  # the render config's scale palette (the toggles, token map and curves use it)
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
        self.spin_seed.valueChanged.connect(self._seed_changed)
        self.btn_resample.clicked.connect(lambda: self.spin_seed.setValue((self.spin_seed.value() + 1) % (SEED_MAX + 1)))
        self.steer = SteerPanel(state, act)  # hold scales 1..k, alternatives at scale k
        self.body.addWidget(self.steer)

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
        self.btn_compare_ckpt = QPushButton("Second checkpoint…")
        self.btn_compare_ckpt.setToolTip("Plan the same condition (start, goal, RTG target, seed) with another "
                                         "checkpoint of this task and draw its finest scale dashed grey over this plan")
        crow.addWidget(self.btn_compare_ckpt, 2, 0, 1, 2)
        self.body.addLayout(crow)
        self.lbl_compare = muted("")
        self.body.addWidget(self.lbl_compare)
        self.btn_compare.clicked.connect(lambda: self.set_compare(self.spin_compare.value()))
        self.btn_compare_clear.clicked.connect(lambda: self.set_compare(None))
        self.btn_compare_ckpt.clicked.connect(self._choose_compare_checkpoint)
        self.compare_planner = None  # the second checkpoint's planner (Compare: second checkpoint)

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
        state.events.planner.connect(self._on_planner)
        state.events.condition.connect(lambda c: self._sync_seed(c.seed))
        state.events.plan.connect(self._on_plan)
        state.events.run_frame.connect(self._on_run_frame)
        state.events.overlay.connect(lambda _o: self._plot())
        self.token_label.hovered.connect(lambda hit: state.update_overlay(hovered_token=hit))
        self.token_label.resized.connect(lambda: self.show_plan(self.plan) if self.plan is not None else None)
        self.plan = None  # the plan on show: the condition's, or the closed-loop step's during a run
        self._compare_busy = False
        self._update_pending = False
        self._state_curves: list = []
        self._rtg_curves: list = []

    def _seed_changed(self, seed: int) -> None:
        if seed != self.state.seed:
            self.state.seed = seed

    def _sync_seed(self, seed: int) -> None:
        """The box shows the condition's seed when something else set it (an adopted alternative's)."""
        if self.spin_seed.value() != seed:
            self.spin_seed.blockSignals(True)
            self.spin_seed.setValue(seed)
            self.spin_seed.blockSignals(False)

    # ---- scales ------------------------------------------------------------------------------------------------
    def _on_planner(self, planner) -> None:
        for c in self.checks:
            c.deleteLater()
        self.checks = []
        self.set_compare(None)
        self.show_plan(None)
        if planner is None:  # closed: no scales to toggle
            self._publish_visibility()
            return
        scales = tuple(planner.scales)
        cols = scale_colors(len(scales), self.palette)
        for k, pk in enumerate(scales):
            c = QCheckBox(f"{k + 1}: {pk}")
            c.setChecked(True)
            r, g, b = (int(255 * x) for x in cols[k])
            c.setStyleSheet(f"QCheckBox::indicator:checked {{ background: rgb({r},{g},{b}); border: 1px solid #ddd; }}")
            c.setToolTip(f"Scale {k + 1}: {pk} token{'s' if pk != 1 else ''} over the {planner.horizon}-step segment "
                         f"(about {planner.horizon / pk:.0f} steps each); uncheck to hide its plan")
            c.toggled.connect(lambda _: self._publish_visibility())
            self.scale_grid.addWidget(c, k // 4, k % 4)
            self.checks.append(c)
        lo, hi = self.state.rtg_range()
        self.spin_compare.setRange(lo, hi)  # the data's range, as the Condition dock limits the first target
        self.spin_compare.setValue(lo)  # the low end: the plan that contrasts most with a high target
        self.refine.setRange(1, max(len(scales), 1))
        self.refine.setValue(len(scales))
        self.dim_combo.blockSignals(True)
        self.dim_combo.clear()
        self.dim_combo.addItems(dim_names(getattr(planner, "task", None), planner.obs_dim))
        self.dim_combo.blockSignals(False)
        self._publish_visibility()

    def _refine_changed(self, v: int) -> None:
        """Refine to scale k checks scales 1..k and unchecks the rest: the boxes always say what is drawn."""
        self.lbl_refine.setText(f"{v}/{self.refine.maximum()}")
        for i, c in enumerate(self.checks):
            c.blockSignals(True)
            c.setChecked(i < v)
            c.blockSignals(False)
        self._publish_visibility()

    def _publish_visibility(self) -> None:
        self.state.update_overlay(visible=tuple(c.isChecked() for c in self.checks), refine=self.refine.value())

    def step_refine(self, delta: int) -> None:
        self.refine.setValue(self.refine.value() + delta)

    # ---- plan --------------------------------------------------------------------------------------------------
    def _on_plan(self, plan) -> None:
        """A plan from the condition: shown unless the viewport is showing a closed-loop run or a replay."""
        if self.state.view_mode == "condition":
            self.show_plan(plan)
        if self.state.overlay.compare_rtg is not None or self.state.overlay.compare_checkpoint is not None:
            self._plan_compare()  # the comparison follows the condition (start, goal, seed; a checkpoint's the target)

    def _on_run_frame(self, frame) -> None:
        """A closed-loop step shows its own plan; the end of a run shows the condition's plan again."""
        if frame is None:
            self.show_plan(self.state.plan)
        elif frame.plan is not None:
            self.show_plan(frame.plan)

    # ---- compare two RTG targets from the same start ----------------------------------------------------------
    def set_compare(self, rtg: float | None) -> None:
        """Compare the current plan with a plan for another RTG target (None: stop comparing)."""
        self.btn_compare_clear.setEnabled(rtg is not None)
        self.compare_planner = None
        self.state.update_overlay(compare_rtg=None if rtg is None else float(rtg), compare_plan=None,
                                  compare_checkpoint=None)
        if rtg is None:
            self.lbl_compare.setText("")
            return
        self.lbl_compare.setText(f"Planning RTG {rtg:.0f}…")
        self._plan_compare()

    def _choose_compare_checkpoint(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "A second checkpoint of this task", "checkpoints",
                                              "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.set_compare_checkpoint(path)

    def set_compare_checkpoint(self, path: str) -> None:
        """Compare the current plan with the plan a second checkpoint (of the same task) makes for the same
        condition, loaded on the worker; refused with a reason when it plans another task or observation."""
        s = self.state
        task, obs_dim = s.task, getattr(s.planner, "obs_dim", None)
        self.lbl_compare.setText(f"Loading {Path(path).name}…")

        def load():
            from mage_core.planner import Planner

            other = Planner.from_checkpoint(path)
            if task is not None and other.task.name != task.name:
                raise MageError(f"{Path(path).name} plans {other.task.name}, not {task.name}")
            if obs_dim is not None and other.obs_dim != obs_dim:
                raise MageError(f"{Path(path).name} expects {other.obs_dim} observation dims, this plan has {obs_dim}")
            return other

        def loaded(other):
            self.compare_planner = other
            self.btn_compare_clear.setEnabled(True)
            s.update_overlay(compare_rtg=None, compare_plan=None, compare_checkpoint=str(path))
            self.lbl_compare.setText(f"Planning with {Path(path).name}…")
            self._plan_compare()

        self.act.run_in_background(load, loaded, lambda msg: self.lbl_compare.setText(f"Cannot compare: {msg}"))

    def _compare_source(self) -> tuple:
        """(planner, RTG target) of the comparison: another target with this checkpoint, or this target with a
        second checkpoint; (None, None) when nothing is compared."""
        s = self.state
        if s.overlay.compare_checkpoint is not None and self.compare_planner is not None:
            return self.compare_planner, s.rtg
        if s.overlay.compare_rtg is not None:
            return s.planner, s.overlay.compare_rtg
        return None, None

    def _plan_compare(self) -> None:
        s = self.state
        planner, rtg = self._compare_source()
        if s.planner is None or planner is None or self._compare_busy:
            return
        try:
            obs = s.condition_obs()
        except Exception as exc:  # noqa: BLE001 - no condition yet: say why
            self.lbl_compare.setText(f"Cannot compare: {exc}")
            return
        seed = s.seed
        self._compare_busy = True

        def done(plan):
            self._compare_busy = False
            if self._compare_source() == (None, None):
                return
            if self._compare_source() != (planner, rtg):  # the target or the checkpoint changed while planning
                self._plan_compare()
                return
            s.update_overlay(compare_plan=plan)
            self._describe_compare()

        def failed(msg):
            self._compare_busy = False
            self.lbl_compare.setText(f"Compare failed: {msg}")

        self.act.run_in_background(lambda: planner.plan(obs, rtg, seed=seed), done, failed)

    def _describe_compare(self) -> None:
        s = self.state
        a, b = s.plan, s.overlay.compare_plan
        xy_b = finest_xy(b, s.task)
        ckpt = s.overlay.compare_checkpoint
        if ckpt is not None:
            text = f"Dashed grey: {Path(ckpt).name} (condition {fmt_rtg(b.condition_rtg)})"
            mine = Path(s.planner_path).name if s.planner_path else "this checkpoint"
            if a is not None:
                text += f" vs {mine} (condition {fmt_rtg(a.condition_rtg)}), same target and seed"
        else:
            text = f"Dashed grey: RTG {fmt_rtg(s.overlay.compare_rtg)} (condition {fmt_rtg(b.condition_rtg)})"
            if a is not None:
                text += f" vs this plan's RTG {fmt_rtg(s.rtg)} (condition {fmt_rtg(a.condition_rtg)})"
            xa = np.asarray(a.states_KHD)[-1]
            xy_a = finest_xy(a, s.task) if xy_b is not None else None
            if xy_a is not None:
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
        if not self._update_pending:  # the viewport's frame goes first: these views are slower and matter less
            self._update_pending = True
            # on the next turn: the overlay has asked the viewport for this plan's frame by then (it hears the plan
            # after the docks), so the views wait for that frame's paint instead of competing with its rendering
            QTimer.singleShot(0, lambda: self.act.when_view_shown(self._update_views))
            QTimer.singleShot(VIEWS_MAX_DELAY_MS, self._update_views)

    def _update_views(self) -> None:
        if not self._update_pending:  # already updated (the view was shown, or the time ran out)
            return
        self._update_pending = False
        plan = self.plan
        if plan is None:
            return
        cb = codebook_size(self.state.planner)
        size = (max(self.token_label.width(), 200), TOKEN_MAP_SIZE[1])
        cols = scale_colors(len(plan.tokens), self.palette)
        img = token_map_image(list(plan.tokens), size, cols)
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

        task = self.state.task
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
            cols = scale_colors(K, self.palette)
            pens = [pg.mkPen(tuple(int(255 * c) for c in cols[k]), width=2.2 if k == K - 1 else 1.4) for k in range(K)]
            self._state_curves = [self.state_plot.plot(pen=pens[k]) for k in range(K)]
            self._rtg_curves = [self.rtg_plot.plot(pen=pens[k]) for k in range(K)]
        vis = self.state.overlay.visible
        for k in range(K):
            show = not (k < len(vis) and not vis[k])
            if show and d < states.shape[2]:
                self._state_curves[k].setData(states[k, :, d])
                self._rtg_curves[k].setData(rtg[k])
            else:
                self._state_curves[k].setData([], [])
                self._rtg_curves[k].setData([], [])
        self.state_plot.setLabel("left", f"planned {self.dim_combo.currentText()}")
