"""Run dock: closed-loop execution with replanning (play/pause/step/reset) and an RTG sweep (target vs achieved)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox

from mage_core.evaluate import spearman
from mage_studio.docks.base import StudioDock, heading, muted
from mage_studio.rollout import ClosedLoop


class RunDock(StudioDock):
    """Execute the planner in the live viewport; sweep RTG targets and plot what was achieved."""

    def __init__(self, studio):
        super().__init__("Run", "dock_run", studio)
        self.body.addWidget(heading("Closed loop"))
        row = QHBoxLayout()
        self.btn_play = QPushButton("Play")
        self.btn_play.setCheckable(True)
        self.btn_play.setToolTip("Run closed loop with replanning (Space)")
        self.btn_step = QPushButton("Step")
        self.btn_step.setToolTip("One control step (N)")
        self.btn_reset = QPushButton("Reset")
        self.btn_reset.setToolTip("Back to the start (R)")
        for b in (self.btn_play, self.btn_step, self.btn_reset):
            row.addWidget(b)
        self.body.addLayout(row)
        grid = QGridLayout()
        grid.addWidget(QLabel("Replan every"), 0, 0)
        self.spin_replan = QSpinBox()
        self.spin_replan.setRange(1, 64)
        self.spin_replan.setSuffix(" step(s)")
        grid.addWidget(self.spin_replan, 0, 1)
        grid.addWidget(QLabel("Episode length"), 1, 0)
        self.spin_len = QSpinBox()
        self.spin_len.setRange(1, 5000)
        self.spin_len.setValue(300)
        grid.addWidget(self.spin_len, 1, 1)
        self.body.addLayout(grid)
        self.lbl_status = muted("Load a checkpoint to run.")
        self.body.addWidget(self.lbl_status)

        self.body.addWidget(heading("RTG sweep"))
        srow = QHBoxLayout()
        srow.addWidget(QLabel("Targets"))
        self.spin_targets = QSpinBox()
        self.spin_targets.setRange(2, 20)
        self.spin_targets.setValue(5)
        srow.addWidget(self.spin_targets)
        srow.addWidget(QLabel("Steps"))
        self.spin_sweep_len = QSpinBox()
        self.spin_sweep_len.setRange(1, 5000)
        self.spin_sweep_len.setValue(300)
        srow.addWidget(self.spin_sweep_len)
        self.btn_sweep = QPushButton("Sweep")
        self.btn_sweep.setToolTip("Run one episode per RTG target from the current start/goal and plot the return")
        srow.addWidget(self.btn_sweep)
        self.body.addLayout(srow)
        import pyqtgraph as pg

        self.sweep_plot = pg.PlotWidget()
        self.sweep_plot.setMinimumHeight(160)
        self.sweep_plot.setLabel("bottom", "RTG target")
        self.sweep_plot.setLabel("left", "achieved return")
        self.sweep_scatter = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(255, 196, 64), pen=pg.mkPen(None))
        self.sweep_line = self.sweep_plot.plot(pen=pg.mkPen((255, 196, 64, 120), width=1))
        self.sweep_plot.addItem(self.sweep_scatter)
        self.body.addWidget(self.sweep_plot)
        self.lbl_sweep = muted("")
        self.body.addWidget(self.lbl_sweep)
        self.body.addStretch(1)

        self.loop: ClosedLoop | None = None
        self.playing = False
        self.busy = False
        self.sweep_points: list[tuple[float, float]] = []
        self._sweep_queue: list[float] = []
        self.btn_play.toggled.connect(self.set_playing)
        self.btn_step.clicked.connect(self.step_once)
        self.btn_reset.clicked.connect(self.reset)
        self.btn_sweep.clicked.connect(self.start_sweep)
        self.session.planner_changed.connect(lambda _: self.reset())
        self.session.task_changed.connect(self._on_task)
        self.session.condition_changed.connect(self._condition_changed)

    def _on_task(self, task) -> None:
        self.spin_len.setValue(task.eval_steps)
        self.spin_sweep_len.setValue(task.eval_steps)
        self.reset()

    def _condition_changed(self) -> None:
        if self.loop is not None and self.loop.t == 0 and not self.busy:
            self.loop = None  # re-created from the new condition on the next step

    # ---- closed loop -------------------------------------------------------------------------------------------
    def _loop_factory(self):
        """A function (run on the worker) that builds a ClosedLoop from the condition as it is now."""
        s = self.session
        args = (s.task, s.planner, s.rtg, self.spin_replan.value(), self.spin_len.value(), s.start_xy, s.goal_xy)

        def make() -> ClosedLoop:
            task, planner, rtg, every, steps, start, goal = args
            loop = ClosedLoop(task, planner, rtg, replan_every=every, max_steps=steps)
            loop.reset(start, goal)
            return loop

        return make

    def reset(self) -> None:
        self.set_playing(False)
        if self.loop is not None and not self.busy:
            self.loop.close()
        self.loop = None
        self.studio.show_run_state(None)
        self.lbl_status.setText("Ready." if self.session.planner is not None else "Load a checkpoint to run.")

    def set_playing(self, on: bool) -> None:
        self.playing = bool(on) and self.session.planner is not None
        if self.btn_play.isChecked() != self.playing:
            self.btn_play.blockSignals(True)
            self.btn_play.setChecked(self.playing)
            self.btn_play.blockSignals(False)
        self.btn_play.setText("Pause" if self.playing else "Play")
        if self.playing:
            self.step_once()

    def toggle_play(self) -> None:
        self.set_playing(not self.playing)

    def step_once(self) -> None:
        s = self.session
        if s.planner is None or self.busy:
            return
        if self.loop is not None and self.loop.done:
            self.set_playing(False)
            return
        self.busy = True
        loop = self.loop
        make = self._loop_factory()

        def job():
            lp = loop or make()
            return lp, lp.step()

        s.worker.submit(job, self._stepped, self._failed)

    def _stepped(self, result) -> None:
        self.busy = False
        loop, res = result
        self.loop = loop
        self.studio.show_run_state(loop, res)
        tag = "✓ at goal" if res.success else ""
        plan = getattr(loop, "last_plan", None)  # the condition the model actually got (range and ceiling applied)
        cond = plan.condition_rtg if plan is not None else loop.rtg_target - loop.reward_sum + loop.t
        self.lbl_status.setText(f"step {loop.t}/{loop.horizon} · return {loop.reward_sum:.0f} · RTG cond {cond:.0f} {tag}")
        if res.done:
            self.set_playing(False)
            self.lbl_status.setText(self.lbl_status.text() + " · episode over")
        elif self.playing:
            QTimer.singleShot(0, self.step_once)

    def _failed(self, msg: str) -> None:
        self.busy = False
        self.set_playing(False)
        self.lbl_status.setText(f"Run failed: {msg}")
        self.studio.report_error("Run failed", msg)

    # ---- RTG sweep ---------------------------------------------------------------------------------------------
    def start_sweep(self) -> None:
        s = self.session
        if s.planner is None or self._sweep_queue:
            return
        lo, hi = s.rtg_range()
        self._sweep_queue = list(np.linspace(lo, hi, self.spin_targets.value()))
        self.sweep_points = []
        self._draw_sweep()
        self.btn_sweep.setEnabled(False)
        self._sweep_next()

    def _sweep_next(self) -> None:
        if not self._sweep_queue:
            self.btn_sweep.setEnabled(True)
            return
        s = self.session
        target = float(self._sweep_queue[0])
        task, planner, start, goal, steps = s.task, s.planner, s.start_xy, s.goal_xy, self.spin_sweep_len.value()
        self.lbl_sweep.setText(f"running target {target:.0f} ({len(self.sweep_points) + 1}/"
                               f"{len(self.sweep_points) + len(self._sweep_queue)})…")

        def job():
            lp = ClosedLoop(task, planner, target, max_steps=steps)
            try:
                lp.reset(start, goal)
                return target, lp.run(steps)
            finally:
                lp.close()

        s.worker.submit(job, self._sweep_point, self._sweep_failed)

    def _sweep_point(self, point) -> None:
        self._sweep_queue = self._sweep_queue[1:]
        self.sweep_points.append(point)
        self._draw_sweep()
        self._sweep_next()

    def _sweep_failed(self, msg: str) -> None:
        self._sweep_queue = []
        self.btn_sweep.setEnabled(True)
        self.lbl_sweep.setText(f"Sweep failed: {msg}")

    def _draw_sweep(self) -> None:
        if not self.sweep_points:
            self.sweep_scatter.setData([], [])
            self.sweep_line.setData([], [])
            return
        x, y = map(np.asarray, zip(*self.sweep_points))
        self.sweep_scatter.setData(x, y)
        self.sweep_line.setData(x, y)
        rho = spearman(x, y)
        if not self._sweep_queue or len(self._sweep_queue) <= 1:
            self.lbl_sweep.setText(f"{len(x)} targets · rank correlation {rho:.2f}" if np.isfinite(rho)
                                   else f"{len(x)} targets")
