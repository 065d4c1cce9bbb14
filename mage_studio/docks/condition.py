"""Condition dock: the agent's start and the goal (click/drag in the maze view) and the RTG target slider."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QSpinBox, QWidget)

from mage_studio.docks.base import StudioDock, heading, muted

SLIDER_STEPS = 1000  # resolution of the RTG slider


class ConditionDock(StudioDock):
    """Start / goal placement tools and the RTG target with the data's return distribution marked."""

    tool_changed = Signal(str)

    def __init__(self, studio):
        super().__init__("Condition", "dock_condition", studio)
        s = self.session
        self.body.addWidget(heading("Start and goal"))
        tools = QWidget()
        tl = QHBoxLayout(tools)
        tl.setContentsMargins(0, 0, 0, 0)
        self.btn_nav = QPushButton("Orbit")
        self.btn_start = QPushButton("Place start")
        self.btn_goal = QPushButton("Place goal")
        self.tool_group = QButtonGroup(self)
        for i, (b, tip) in enumerate(((self.btn_nav, "Drag to orbit the camera (O)"),
                                      (self.btn_start, "Click/drag in the maze to place the agent's start (S; Ctrl+click)"),
                                      (self.btn_goal, "Click/drag in the maze to place the goal (G; Shift+click)"))):
            b.setCheckable(True)
            b.setToolTip(tip)
            self.tool_group.addButton(b, i)
            tl.addWidget(b)
        self.btn_start.setChecked(True)
        self.tool_group.idClicked.connect(lambda i: self.tool_changed.emit(("navigate", "start", "goal")[i]))
        self.body.addWidget(tools)
        grid = QGridLayout()
        self.lbl_start = QLabel("—")
        self.lbl_goal = QLabel("—")
        grid.addWidget(QLabel("Start"), 0, 0)
        grid.addWidget(self.lbl_start, 0, 1)
        grid.addWidget(QLabel("Goal"), 1, 0)
        grid.addWidget(self.lbl_goal, 1, 1)
        self.btn_eval = QPushButton("Evaluation start/goal")
        self.btn_eval.setToolTip("Reset start and goal to the task's fixed evaluation cells")
        self.btn_eval.clicked.connect(self.use_eval_cells)
        grid.addWidget(self.btn_eval, 2, 0, 1, 2)
        self.body.addLayout(grid)
        # non-maze tasks: pick a dataset state as the initial state
        self.state_row = QWidget()
        sl = QHBoxLayout(self.state_row)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("Dataset state: episode"))
        self.spin_ep = QSpinBox()
        self.spin_step = QSpinBox()
        sl.addWidget(self.spin_ep)
        sl.addWidget(QLabel("step"))
        sl.addWidget(self.spin_step)
        self.spin_ep.valueChanged.connect(self._pick_state)
        self.spin_step.valueChanged.connect(self._pick_state)
        self.body.addWidget(self.state_row)
        self.state_row.setVisible(False)
        self.lbl_message = muted("")
        self.lbl_message.setObjectName("warning")
        self.body.addWidget(self.lbl_message)

        self.body.addWidget(heading("Return-to-go target"))
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("RTG target: the return the plan is conditioned on (PgUp/PgDn)")
        self.spin_rtg = QDoubleSpinBox()
        self.spin_rtg.setDecimals(1)
        self.spin_rtg.setKeyboardTracking(False)
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin_rtg)
        self.body.addLayout(row)
        self.lbl_range = muted("")
        self.body.addWidget(self.lbl_range)
        import pyqtgraph as pg

        self.hist = pg.PlotWidget()
        self.hist.setFixedHeight(120)
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.getAxis("left").setStyle(showValues=False)
        self.hist.setLabel("bottom", "episode RTG in the data")
        self.rtg_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((255, 196, 64), width=2))
        self.hist.addItem(self.rtg_line)
        self.rtg_line.sigDragged.connect(lambda ln: self.set_rtg(ln.value()))
        self.body.addWidget(self.hist)
        self._bars = None
        self.lbl_plan = muted("No checkpoint loaded — open one to plan.")
        self.body.addWidget(self.lbl_plan)
        self.body.addStretch(1)

        self.slider.valueChanged.connect(self._slider_moved)
        self.spin_rtg.valueChanged.connect(lambda v: self.set_rtg(v))
        s.condition_changed.connect(self.sync)
        s.dataset_changed.connect(self._on_dataset)
        s.planner_changed.connect(lambda _: self.sync_range())
        s.task_changed.connect(self._on_task)
        s.plan_ready.connect(self._on_plan)
        s.plan_failed.connect(lambda m: self.lbl_plan.setText(f"Plan failed: {m}"))
        s.notify.connect(self._on_notify)
        self._syncing = False

    # ---- RTG ---------------------------------------------------------------------------------------------------
    def sync_range(self) -> None:
        lo, hi = self.session.rtg_range()
        if hi <= lo:
            hi = lo + 1.0
        self._syncing = True
        self.spin_rtg.setRange(lo, hi)
        self.spin_rtg.setSingleStep(max((hi - lo) / 100, 0.1))
        self._syncing = False
        self.lbl_range.setText(f"range {lo:.0f} – {hi:.0f} (RTG labels seen in training data)")
        self.sync()

    def _slider_moved(self, v: int) -> None:
        if self._syncing:
            return
        lo, hi = self.session.rtg_range()
        self.set_rtg(lo + (hi - lo) * v / SLIDER_STEPS)

    def set_rtg(self, value: float) -> None:
        if self._syncing:
            return
        lo, hi = self.session.rtg_range()
        value = float(np.clip(value, lo, hi))
        if abs(value - self.session.rtg) > 1e-9:
            self.session.set_rtg(value)

    def _on_dataset(self, ds) -> None:
        import pyqtgraph as pg

        if self._bars is not None:
            self.hist.removeItem(self._bars)
            self._bars = None
        if ds.rtg0_N is not None and len(ds.rtg0_N):
            lo, hi = float(ds.rtg0_N.min()), float(ds.rtg0_N.max())
            counts, edges = np.histogram(ds.rtg0_N, bins=24, range=(lo, hi if hi > lo else lo + 1))
            self._bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(90, 130, 210, 170),
                                         pen=pg.mkPen(None))
            self.hist.addItem(self._bars)
        has_states = not ds.task.is_maze
        self.state_row.setVisible(has_states)
        if has_states:
            self.spin_ep.setRange(0, len(ds.episodes) - 1)
        self.sync_range()

    def _on_task(self, task) -> None:
        maze = task.is_maze
        for w in (self.btn_start, self.btn_goal, self.btn_eval):
            w.setEnabled(maze)
        self.sync_range()

    def _pick_state(self) -> None:
        ds = self.session.dataset
        if ds is None:
            return
        ep = ds.episodes[self.spin_ep.value()]
        self.spin_step.setMaximum(ep.length)
        self.session.set_state_template(ep.obs_TD[min(self.spin_step.value(), ep.length)])

    # ---- start / goal ------------------------------------------------------------------------------------------
    def use_eval_cells(self) -> None:
        t = self.session.task
        if t is None or not t.is_maze:
            return
        geo = t.geometry
        self.session.set_goal(geo.cell_to_xy(t.eval_goal_cell))
        self.session.set_start(geo.cell_to_xy(t.eval_start_cell))

    def sync(self) -> None:
        s = self.session
        fmt = lambda xy: "—" if xy is None else f"x {xy[0]:+.2f}, y {xy[1]:+.2f}"  # noqa: E731
        self.lbl_start.setText(fmt(s.start_xy))
        self.lbl_goal.setText(fmt(s.goal_xy))
        lo, hi = s.rtg_range()
        self._syncing = True
        self.slider.setValue(int(round((s.rtg - lo) / max(hi - lo, 1e-9) * SLIDER_STEPS)))
        self.spin_rtg.setValue(s.rtg)
        self.rtg_line.setValue(s.rtg)
        self._syncing = False

    def _on_notify(self, level: str, text: str) -> None:
        if level == "warning" and ("start" in text or "goal" in text):
            self.lbl_message.setText(text)

    def _on_plan(self, plan) -> None:
        s = self.session
        self.lbl_message.setText("")
        t = getattr(plan, "timings_ms", {}) or {}
        self.lbl_plan.setText(f"Plan for RTG {plan.condition_rtg:.1f}: model {t.get('total', 0):.1f} ms, "
                              f"condition → plan on screen {s.replan_latency_ms:.1f} ms")
