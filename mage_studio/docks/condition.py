"""Condition dock: the agent's start and the goal (click/drag in the maze view) and the RTG target slider."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QSpinBox, QWidget)

from mage_studio.docks.base import StudioDock, heading, muted
from mage_studio.state import TOOLS

SLIDER_STEPS = 1000  # resolution of the RTG slider
RTG_BOX_LIMIT = 1e12  # the RTG box accepts any number this size; set_rtg limits it to the data's range, saying so
FEASIBLE_TIP = ("Feasible from this start: the highest RTG the training data shows from the current state (the return "
                "ceiling). Targets above it are planned with the ceiling, so that part of the slider (red) plans the "
                "same condition.")
CONDITION_USED_TIP = ("The condition used is the RTG the model was actually conditioned on: your target, limited to "
                      "the data's range and to the return ceiling from the current start.")


class ConditionDock(StudioDock):
    """Start / goal placement tools and the RTG target with the data's return distribution marked."""

    def __init__(self, state, act, parent=None):
        super().__init__("Condition", "dock_condition", state, act, parent)
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
        self.tool_group.button(TOOLS.index(state.tool)).setChecked(True)
        self.tool_group.idClicked.connect(self._tool_clicked)
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
        sl.addWidget(QLabel("Data episode"))  # short labels: the row fits a 300-px column
        self.spin_ep = QSpinBox()
        self.spin_step = QSpinBox()
        self.spin_ep.setToolTip("The dataset episode whose state starts the plan")
        self.spin_step.setToolTip("The step of that episode whose state starts the plan")
        sl.addWidget(self.spin_ep)
        sl.addWidget(QLabel("step"))
        sl.addWidget(self.spin_step)
        self.spin_ep.valueChanged.connect(self._pick_state)
        self.spin_step.valueChanged.connect(self._pick_state)
        self.body.addWidget(self.state_row)
        self.state_row.setVisible(False)
        # robots: or start from the evaluation env's reset with a seed
        self.reset_row = QWidget()
        rl = QHBoxLayout(self.reset_row)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Reset seed"))
        self.spin_reset_seed = QSpinBox()
        self.spin_reset_seed.setRange(0, 1_000_000)
        self.spin_reset_seed.setToolTip("Start from the state the evaluation environment resets to with this seed")
        rl.addWidget(self.spin_reset_seed)
        self.btn_reset_state = QPushButton("Use reset")
        self.btn_reset_state.setToolTip("Plan from the evaluation env's reset state with this seed")
        self.btn_reset_state.clicked.connect(lambda: state.reset_state(self.spin_reset_seed.value()))
        rl.addWidget(self.btn_reset_state)
        self.body.addWidget(self.reset_row)
        self.reset_row.setVisible(False)
        self.lbl_message = muted("")
        self.lbl_message.setObjectName("warning")
        self.body.addWidget(self.lbl_message)

        self.body.addWidget(heading("Return-to-go target"))
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("RTG target: the return the plan is conditioned on (PgUp/PgDn). Blue: feasible from "
                               "this start; red: above the return ceiling, planned as the ceiling.")
        self.spin_rtg = QDoubleSpinBox()
        self.spin_rtg.setDecimals(1)
        self.spin_rtg.setKeyboardTracking(False)
        self.spin_rtg.setRange(-RTG_BOX_LIMIT, RTG_BOX_LIMIT)  # typed values arrive whole; set_rtg limits and says so
        self.spin_rtg.setToolTip("Type an RTG target; values outside the data's range are limited to it, with a note")
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin_rtg)
        self.body.addLayout(row)
        self.lbl_range = muted("")
        self.lbl_range.setToolTip(FEASIBLE_TIP)
        self.body.addWidget(self.lbl_range)
        self.lbl_used = QLabel("")  # the condition actually used, always visible
        self.lbl_used.setObjectName("conditionUsed")
        self.lbl_used.setWordWrap(True)
        self.lbl_used.setToolTip(CONDITION_USED_TIP)
        self.body.addWidget(self.lbl_used)
        self.feasible_hi: float | None = None  # return ceiling from the current start (from the last plan)
        import pyqtgraph as pg

        self.hist = pg.PlotWidget()
        self.hist.setFixedHeight(120)
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.getAxis("left").setStyle(showValues=False)
        self.hist.setLabel("bottom", "episode RTG in the data")
        self.feasible_region = pg.LinearRegionItem(values=(0, 1), movable=False, brush=(92, 124, 250, 45),
                                                   pen=pg.mkPen((92, 124, 250, 160)))
        self.feasible_region.setVisible(False)
        self.hist.addItem(self.feasible_region)
        self.rtg_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((255, 196, 64), width=2))
        self.hist.addItem(self.rtg_line)
        self.rtg_line.sigDragged.connect(lambda ln: self.set_rtg(ln.value()))
        self.body.addWidget(self.hist)
        self._bars = None
        self.no_data = pg.TextItem("", color=(170, 176, 190), anchor=(0.5, 0.5))  # what the empty plot will show
        self.hist.addItem(self.no_data)
        self.lbl_plan = muted("No checkpoint loaded — open one to plan.")
        self.body.addWidget(self.lbl_plan)
        self.body.addStretch(1)

        self.slider.valueChanged.connect(self._slider_moved)
        self.spin_rtg.valueChanged.connect(lambda v: self.set_rtg(v))
        ev = state.events
        ev.condition.connect(lambda _c: self.sync())
        ev.dataset.connect(self._on_dataset)
        ev.planner.connect(self._on_planner)
        ev.task.connect(self._on_task)
        ev.plan.connect(self._on_plan)
        ev.plan_failed.connect(lambda m: self.lbl_plan.setText(f"Plan failed: {m}"))
        ev.notify.connect(self._on_notify)
        ev.tool.connect(lambda tool: self.tool_group.button(TOOLS.index(tool)).setChecked(True))
        self._syncing = False
        self._range_note_for: float | None = None  # the target the "outside the data's RTG range" note is about

    def _tool_clicked(self, i: int) -> None:
        self.state.tool = TOOLS[i]

    # ---- RTG ---------------------------------------------------------------------------------------------------
    def sync_range(self) -> None:
        lo, hi = self.state.rtg_range()
        if hi <= lo:
            hi = lo + 1.0
        self._syncing = True
        self.spin_rtg.setSingleStep(max((hi - lo) / 100, 0.1))
        self._syncing = False
        self.feasible_hi = None
        self._show_feasible()
        self.sync()

    def _show_feasible(self) -> None:
        """The data's range and, once a plan is in, the part feasible from this start (label, histogram, slider)."""
        lo, hi = self.state.rtg_range()
        f = self.feasible_hi
        if f is None or not np.isfinite(f):
            self.lbl_range.setText(f"data range {lo:.0f} – {hi:.0f} (RTG labels seen in training)")
            self.feasible_region.setVisible(False)
            self.slider.setStyleSheet("")
            return
        f = float(np.clip(f, lo, hi))
        self.lbl_range.setText(f"feasible from this start {lo:.0f} – {f:.0f}  ·  data range {lo:.0f} – {hi:.0f}")
        self.feasible_region.setRegion((lo, f))
        self.feasible_region.setVisible(True)
        frac = (f - lo) / max(hi - lo, 1e-9)
        a, b = min(max(frac, 0.0), 0.999), min(max(frac, 0.0), 0.999) + 0.001
        self.slider.setStyleSheet(
            "QSlider::groove:horizontal { height: 6px; border-radius: 3px; background: qlineargradient(x1:0, y1:0, "
            f"x2:1, y2:0, stop:0 #5c7cfa, stop:{a:.3f} #5c7cfa, stop:{b:.3f} #8a3347, stop:1 #8a3347); }}"
            "QSlider::sub-page:horizontal { background: transparent; }")

    def _slider_moved(self, v: int) -> None:
        if self._syncing:
            return
        lo, hi = self.state.rtg_range()
        self.set_rtg(lo + (hi - lo) * v / SLIDER_STEPS)

    def set_rtg(self, value: float) -> None:
        """A new target from the slider, the box or the histogram line: limited to the data's range, with a note."""
        if self._syncing:
            return
        lo, hi = self.state.rtg_range()
        v = float(value)
        if not np.isfinite(v):
            self.lbl_message.setText("The RTG target must be a number.")
            self.sync()
            return
        clipped = float(np.clip(v, lo, hi))
        if "RTG range" in self.lbl_message.text():
            self.lbl_message.setText("")
        if abs(clipped - v) > 1e-6:
            side = "above" if v > hi else "below"
            self.lbl_message.setText(f"{v:g} is {side} the data's RTG range ({lo:.0f} – {hi:.0f}); using "
                                     f"{clipped:.0f}.")
            self._range_note_for = clipped  # the note stays while this target does
        if abs(clipped - self.state.rtg) > 1e-9:
            self.state.rtg = clipped
        else:
            self.sync()  # the box shows the value used, not what was typed

    def _on_planner(self, _planner) -> None:
        self._range_note_for = None  # a note about the last checkpoint's range no longer applies
        self.lbl_message.setText("")
        self.sync_range()
        self._show_no_data()

    def _show_no_data(self) -> None:
        """Without a dataset the histogram says what it will show, over the checkpoint's RTG range."""
        ds = self.state.dataset
        if ds is not None and ds.rtg0_N is not None and len(ds.rtg0_N):
            self.no_data.setText("")
            return
        lo, hi = self.state.rtg_range()
        self.no_data.setText("no dataset loaded: the data's episode returns\nappear here once it is loaded or "
                             "generated")
        self.no_data.setPos((lo + hi) / 2, 0.5)
        self.hist.setXRange(lo, hi if hi > lo else lo + 1, padding=0.05)
        self.hist.setYRange(0, 1, padding=0)

    def _on_dataset(self, ds) -> None:
        import pyqtgraph as pg

        if self._bars is not None:
            self.hist.removeItem(self._bars)
            self._bars = None
        self.no_data.setText("")
        self.hist.enableAutoRange()  # the placeholder fixed the axes
        if ds.rtg0_N is not None and len(ds.rtg0_N):
            lo, hi = float(ds.rtg0_N.min()), float(ds.rtg0_N.max())
            counts, edges = np.histogram(ds.rtg0_N, bins=24, range=(lo, hi if hi > lo else lo + 1))
            self._bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(90, 130, 210, 170),
                                         pen=pg.mkPen(None))
            self.hist.addItem(self._bars)
        has_states = ds.task.suite.editable(ds.task).from_dataset and not ds.task.suite.editable(ds.task).points
        self.state_row.setVisible(has_states)
        if has_states:
            self.spin_ep.setRange(0, len(ds.episodes) - 1)
        self.sync_range()

    def _on_task(self, task) -> None:
        ed = task.suite.editable(task)
        points = self.state.places_points()
        for w in (self.btn_start, self.btn_goal, self.btn_eval):
            w.setEnabled(points)
        self.reset_row.setVisible(ed.from_reset and not points)
        self.sync_range()
        self._show_no_data()

    def _pick_state(self) -> None:
        ds = self.state.dataset
        if ds is None:
            return
        ep = ds.episodes[self.spin_ep.value()]
        self.spin_step.setMaximum(ep.length)
        self.state.state_template = ep.obs_TD[min(self.spin_step.value(), ep.length)]

    # ---- start / goal ------------------------------------------------------------------------------------------
    def use_eval_cells(self) -> None:
        t = self.state.task
        if t is None or not t.suite.editable(t).points:
            return
        pts = t.suite.default_points(t)
        self.state.set_goal(pts["goal"])
        self.state.set_start(pts["start"])

    def sync(self) -> None:
        s = self.state
        fmt = lambda xy: "—" if xy is None else f"x {xy[0]:+.2f}, y {xy[1]:+.2f}"  # noqa: E731
        self.lbl_start.setText(fmt(s.start_xy))
        self.lbl_goal.setText(fmt(s.goal_xy))
        lo, hi = s.rtg_range()
        self._syncing = True
        frac = (s.rtg - lo) / (hi - lo) if hi > lo and np.isfinite(s.rtg) else 0.0  # a one-value range: the left end
        self.slider.setValue(int(round(float(np.clip(frac, 0.0, 1.0)) * SLIDER_STEPS)))
        self.spin_rtg.setValue(s.rtg)
        self.rtg_line.setValue(s.rtg)
        self._syncing = False

    def _on_notify(self, level: str, text: str) -> None:
        if level == "warning" and ("start" in text or "goal" in text):
            self.lbl_message.setText(text)

    def _on_plan(self, plan) -> None:
        if plan is None:
            return
        s = self.state
        note = "RTG range" in self.lbl_message.text()
        if not note or self._range_note_for is None or abs(self._range_note_for - s.rtg) > 1e-6:
            self.lbl_message.setText("")  # a note about an earlier target (or run) never outlives it
        ceiling = getattr(plan, "rtg_ceiling", None)
        if ceiling != self.feasible_hi:
            self.feasible_hi = ceiling
            self._show_feasible()
        used = float(plan.condition_rtg)
        why = ""
        if abs(used - s.rtg) >= 0.5:
            why = (" — the target is above what the data shows from this start, so the plan uses the ceiling"
                   if ceiling is not None and used >= float(ceiling) - 0.5 else " — limited to the data's range")
        self.lbl_used.setText(f"Condition used from the start: <b>{used:.0f}</b> (target {s.rtg:.0f}){why}")
        t = getattr(plan, "timings_ms", {}) or {}
        self.lbl_plan.setText(f"Plan for RTG {plan.condition_rtg:.1f}: model {t.get('total', 0):.1f} ms, "
                              f"condition → plan ready {s.replan_latency_ms:.1f} ms")
