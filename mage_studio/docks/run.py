"""Run dock: closed-loop execution with replanning (play/pause/step/reset) and an RTG sweep (target vs achieved).

Over 500 lines on purpose: the closed loop, the RTG sweep, the low / high target pair and N-episode evaluation share
one run state (planner, condition, seed, recorded frames) and one status line.
"""
from __future__ import annotations

import json
import re

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox

from mage_core.controllability import SweepRow, summarise
from mage_core.evaluate import spearman
from mage_core.policies import checkpoint_ref_scores
from mage_studio.docks.base import StudioDock, heading, muted
from mage_studio.process import EventProcess, env_for_children, mage_command
from mage_studio.rollout import ClosedLoop, fmt_rtg, frame_of

ROLLOUT_FRAME_W = 540  # recorded rollout frames are scaled to this width (PNG-encoded: ~300 frames stay small)
PLAY_FRAME_WAIT_MS = 250  # Play starts the next step once the frame showing this one is painted, or after this long
ROLLOUT_FRAME_MS = 40  # one closed-loop step per GIF frame at 25 frames/s
EVAL_EPISODES = 10  # default episodes of "Evaluate" (the CLI's default)
PROGRESS_RE = re.compile(r"(\d+)/(\d+) steps")  # `mage eval`'s progress lines on stderr: "... 300/3000 steps ..."


def eval_argv(checkpoint: str, episodes: int, rtg: float | None = None) -> list[str]:
    """The `mage eval` command the Run dock runs: the evaluation protocol, result as JSON on stdout."""
    argv = mage_command("eval", "--checkpoint", str(checkpoint), "--episodes", str(int(episodes)), "--json", "-")
    if rtg is not None:
        argv += ["--rtg", f"{float(rtg):g}"]
    return argv


def parse_eval_output(lines: list[str]) -> dict | None:
    """The JSON result `mage eval --json -` prints after its summary line (None when there is none)."""
    for i, line in enumerate(lines):
        if line.startswith("{"):
            try:
                d = json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
            if isinstance(d, dict) and "mean" in d:
                return d
    return None


def eval_summary(d: dict) -> str:
    """One result line: raw return mean ± s.e., normalised when the references are known, success rate."""
    n = int(d.get("n", len(d.get("returns", []))))
    text = f"{n} episodes: return {float(d['mean']):.1f} ± {float(d['se']):.1f} (s.e.)"
    if d.get("normalised_mean") is not None:
        text += f" · normalised {float(d['normalised_mean']):.1f} ± {float(d['normalised_se']):.1f}"
    if d.get("success_rate") is not None:
        text += f" · success {100 * float(d['success_rate']):.0f}%"
    rtg = (d.get("extra") or {}).get("rtg_target")
    if rtg is not None:
        text += f" · RTG target {fmt_rtg(rtg)}"
    return text


STATUS_LINES = 3  # lines reserved for the closed loop's status (step, return, target, condition, held scales)
CONDITION_TIP = ("The RTG the model is conditioned on at this step: the target minus the return collected so far, "
                 "plus the steps elapsed (the sparse-reward window relabel the model was trained with), then limited "
                 "to the data's range and to the best return the data shows from the current state (the ceiling). "
                 "It rises while the agent has not reached the goal yet.")


class RunDock(StudioDock):
    """Execute the planner in the live viewport; sweep RTG targets and plot what was achieved."""

    def __init__(self, state, act, parent=None):
        super().__init__("Run", "dock_run", state, act, parent)
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
        self.spin_replan.setToolTip("Re-plan every n control steps (1: every step, as `mage eval` runs MAGE); between "
                                    "re-plans the agent follows the last plan's finest scale")
        grid.addWidget(self.spin_replan, 0, 1)
        grid.addWidget(QLabel("Episode length"), 1, 0)
        self.spin_len = QSpinBox()
        self.spin_len.setRange(1, 5000)
        self.spin_len.setValue(300)
        self.spin_len.setToolTip("Steps until the episode ends (the task's evaluation length by default)")
        grid.addWidget(self.spin_len, 1, 1)
        self.body.addLayout(grid)
        self.lbl_status = muted("Load a checkpoint to run.")
        self.lbl_status.setToolTip(CONDITION_TIP)
        # a fixed height of STATUS_LINES lines: a status that wraps to more lines never moves the buttons below it
        self.lbl_status.setFixedHeight(STATUS_LINES * self.lbl_status.fontMetrics().lineSpacing() + 4)
        self.lbl_status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.body.addWidget(self.lbl_status)
        self.btn_export_rollout = QPushButton("Export rollout…")
        self.btn_export_rollout.setToolTip("Save the current closed-loop run as an MP4 video or a GIF: one frame of the "
                                           "viewport (plan, executed path, header) per step since the last Reset")
        self.btn_export_rollout.setEnabled(False)
        xrow = QHBoxLayout()
        xrow.addWidget(self.btn_export_rollout)
        self.btn_export_pair = QPushButton("Low / high pair…")
        self.btn_export_pair.setToolTip("Run the lowest and the highest RTG target of the data from the same reset and "
                                        "save them side by side as a GIF (and its last frame as PNG) for a slide")
        self.btn_export_pair.setEnabled(False)
        self.btn_export_pair.clicked.connect(self.export_pair_dialog)
        xrow.addWidget(self.btn_export_pair)
        self.body.addLayout(xrow)

        self.body.addWidget(heading("Evaluate"))
        egrid = QGridLayout()
        egrid.addWidget(QLabel("Episodes"), 0, 0)
        self.spin_episodes = QSpinBox()
        self.spin_episodes.setRange(1, 1000)
        self.spin_episodes.setValue(EVAL_EPISODES)
        self.spin_episodes.setToolTip("Episodes of the evaluation protocol (the task's fixed start and goal, its "
                                      "episode length), run by `mage eval` in a background process")
        egrid.addWidget(self.spin_episodes, 0, 1)
        self.btn_eval = QPushButton("Evaluate")
        self.btn_eval.setToolTip("Score the checkpoint at the current RTG target: `mage eval --checkpoint … "
                                 "--episodes N --rtg G --json -` (mean ± standard error, as the CLI reports it)")
        self.btn_eval_stop = QPushButton("Stop")
        self.btn_eval_stop.setToolTip("Stop the evaluation process")
        self.btn_eval_stop.setEnabled(False)
        egrid.addWidget(self.btn_eval, 1, 0)
        egrid.addWidget(self.btn_eval_stop, 1, 1)
        self.body.addLayout(egrid)
        self.eval_progress = QProgressBar()
        self.eval_progress.setFormat("%p%")
        self.eval_progress.setVisible(False)
        self.body.addWidget(self.eval_progress)
        self.lbl_eval = muted("")
        self.body.addWidget(self.lbl_eval)

        self.body.addWidget(heading("RTG sweep"))
        srow = QHBoxLayout()
        srow.addWidget(QLabel("Targets"))
        self.spin_targets = QSpinBox()
        self.spin_targets.setRange(2, 20)
        self.spin_targets.setValue(5)
        self.spin_targets.setToolTip("How many RTG targets, evenly spaced over the range below (one episode each)")
        srow.addWidget(self.spin_targets)
        srow.addWidget(QLabel("Steps"))
        self.spin_sweep_len = QSpinBox()
        self.spin_sweep_len.setRange(1, 5000)
        self.spin_sweep_len.setValue(300)
        self.spin_sweep_len.setToolTip("Steps of each sweep episode")
        srow.addWidget(self.spin_sweep_len)
        self.btn_sweep = QPushButton("Sweep")
        self.btn_sweep.setToolTip("Run one episode per RTG target from the current start/goal and plot the return")
        self.body.addLayout(srow)
        rrow = QHBoxLayout()
        rrow.addWidget(QLabel("Over"))
        self.combo_range = QComboBox()
        self.combo_range.addItems(["feasible range", "data range"])
        self.combo_range.setToolTip("Feasible: from the data's lowest RTG up to the return ceiling of the current start "
                                    "(targets above it all plan the same condition, so they cannot differ)")
        rrow.addWidget(self.combo_range, 1)
        rrow.addWidget(self.btn_sweep)
        self.body.addLayout(rrow)
        import pyqtgraph as pg

        self.sweep_plot = pg.PlotWidget()
        self.sweep_plot.setMinimumHeight(160)
        self.sweep_plot.setLabel("bottom", "RTG target")
        self.sweep_plot.setLabel("left", "achieved return")
        self.sweep_plot.setToolTip("One point per RTG target: the return the closed loop achieved. Dashed: y = x "
                                   "(achieved exactly what was asked)")
        self.sweep_identity = self.sweep_plot.plot(pen=pg.mkPen((200, 205, 215, 150), width=1,
                                                                style=Qt.PenStyle.DashLine))  # y = x
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
        self.sweep_range: tuple[float, float] | None = None  # the targets' range of the last sweep
        self.rho = float("nan")  # rank correlation of the last sweep (target vs achieved)
        self.sweep_summary = None  # the last finished sweep's spans, slope and verdict (controllability.SweepSummary)
        self.btn_play.toggled.connect(self.set_playing)
        self.btn_step.clicked.connect(self.step_once)
        self.btn_reset.clicked.connect(self.reset)
        self.btn_sweep.clicked.connect(self.start_sweep)
        self.eval_proc = EventProcess(self)
        self.eval_proc.output.connect(self._eval_output)
        self.eval_proc.finished.connect(self._eval_finished)
        self.eval_result: dict | None = None  # the last evaluation's JSON result
        self.eval_command_override = None  # tests: a function (checkpoint, episodes, rtg) -> argv replacing `mage eval`
        self.rollout_frames: list[bytes] = []  # PNG-encoded viewport frames of the current run, one per step
        self.rollout_steps: list[int] = []  # the step each recorded frame shows
        self._frame_wanted: tuple[object, int] | None = None  # (token, step) of the next view frame to keep
        self._play_token = 0  # the step Play waits to see painted (a stale fallback timer finds another token)
        self._play_waiting = False
        self.btn_export_rollout.clicked.connect(self.export_rollout_dialog)
        self.btn_eval.clicked.connect(self.start_eval)
        self.btn_eval_stop.clicked.connect(self.eval_proc.stop)
        state.events.planner.connect(lambda _p: self.reset())
        state.events.task.connect(self._on_task)
        state.events.condition.connect(lambda _c: self._condition_changed())

    @property
    def frame(self):
        """The closed-loop step on screen (a RunFrame; None: no run shown)."""
        return self.state.run_frame

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
        s = self.state
        args = (s.task, s.planner, s.rtg, self.spin_replan.value(), self.spin_len.value(), s.start_xy, s.goal_xy,
                s.state_template, s.seed, s.held_tokens)

        def make() -> ClosedLoop:
            task, planner, rtg, every, steps, start, goal, state, seed, held = args
            loop = ClosedLoop(task, planner, rtg, replan_every=every, max_steps=steps, seed=seed, prefix_tokens=held)
            loop.reset(start, goal, state)
            return loop

        return make

    def reset(self) -> None:
        self.set_playing(False)
        if self.loop is not None and not self.busy:
            self.loop.close()
        self.loop = None
        self.rollout_frames, self.rollout_steps, self._frame_wanted = [], [], None
        self.btn_export_rollout.setEnabled(False)
        self.btn_export_pair.setEnabled(self.state.planner is not None)
        self.state.run_frame = None
        self.lbl_status.setText("Ready." if self.state.planner is not None else "Load a checkpoint to run.")

    def set_playing(self, on: bool) -> None:
        self.playing = bool(on) and self.state.planner is not None
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
        s = self.state
        if s.planner is None or self.busy:
            return
        if self.frame is not None and self.frame.done:
            self.set_playing(False)
            msg = (f"The episode is over ({self.frame.t}/{self.frame.horizon} steps, return "
                   f"{self.frame.reward_sum:.0f}). Press Reset (R) to run it again.")
            self.lbl_status.setText(msg)
            self.act.show_status(msg, 6000)
            return
        self.busy = True
        loop = self.loop
        make = self._loop_factory()

        def job():  # the frame is taken here, on the worker, right after the step: one snapshot for every panel
            lp = loop or make()
            res = lp.step()
            return lp, frame_of(lp, res)

        self.act.run_in_background(job, self._stepped, self._failed)

    def _stepped(self, result) -> None:
        self.busy = False
        loop, frame = result
        self.loop = loop
        self.state.run_frame = frame
        shot = object()  # this step's claim on the next view frame (a later step replaces it)
        self._frame_wanted = (shot, frame.t)  # keep the frame that shows this step
        self.act.grab_view(lambda img: self._record_frame(shot, img))
        self.lbl_status.setText(frame.status() + (" · episode over" if frame.done else ""))
        if frame.done:
            self.set_playing(False)
        elif self.playing:  # every step is shown (and recorded): the next one starts when this one is on screen
            self._play_token += 1
            self._play_waiting = True
            token = self._play_token
            QTimer.singleShot(PLAY_FRAME_WAIT_MS, lambda: self._play_next(token))

    def _failed(self, msg: str) -> None:
        self.busy = False
        self.set_playing(False)
        self.lbl_status.setText(f"Run failed: {msg}")
        self.act.report_error("Run failed", msg)

    # ---- RTG sweep ---------------------------------------------------------------------------------------------
    def feasible_range(self) -> tuple[float, float]:
        """The data's lowest RTG up to the return ceiling from the current start (the data's range without one)."""
        s = self.state
        lo, hi = s.rtg_range()
        ceiling = getattr(s.plan, "rtg_ceiling", None)
        if ceiling is None and hasattr(s.planner, "rtg_ceiling"):
            try:
                c = s.planner.rtg_ceiling(np.asarray(s.condition_obs(), np.float32)[None])
                ceiling = None if c is None else float(np.asarray(c).reshape(-1)[0])
            except Exception:  # noqa: BLE001 - no ceiling model or no condition yet: the data's range
                ceiling = None
        if ceiling is None or not np.isfinite(ceiling) or ceiling <= lo:
            return lo, hi
        return lo, float(min(ceiling, hi))

    def start_sweep(self) -> None:
        s = self.state
        if s.planner is None or self._sweep_queue:
            return
        lo, hi = self.feasible_range() if self.combo_range.currentIndex() == 0 else s.rtg_range()
        self.sweep_range = (lo, hi)
        self._sweep_queue = list(np.linspace(lo, hi, self.spin_targets.value()))
        self.sweep_points = []
        self._draw_sweep()
        self.btn_sweep.setEnabled(False)
        self._sweep_next()

    def _sweep_next(self) -> None:
        if not self._sweep_queue:
            self.btn_sweep.setEnabled(True)
            return
        s = self.state
        target = float(self._sweep_queue[0])
        task, planner, start, goal, steps, seed = (s.task, s.planner, s.start_xy, s.goal_xy,
                                                   self.spin_sweep_len.value(), s.seed)
        self.lbl_sweep.setText(f"running target {target:.0f} ({len(self.sweep_points) + 1}/"
                               f"{len(self.sweep_points) + len(self._sweep_queue)})…")

        def job():
            lp = ClosedLoop(task, planner, target, max_steps=steps, seed=seed)
            try:
                lp.reset(start, goal)
                return target, lp.run(steps)
            finally:
                lp.close()

        self.act.run_in_background(job, self._sweep_point, self._sweep_failed)

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
        if self.sweep_range is not None:  # y = x: achieved exactly what was asked
            lo, hi = self.sweep_range
            self.sweep_identity.setData([lo, hi], [lo, hi])
        if not self.sweep_points:
            self.sweep_scatter.setData([], [])
            self.sweep_line.setData([], [])
            return
        x, y = map(np.asarray, zip(*self.sweep_points))
        self.sweep_scatter.setData(x, y)
        self.sweep_line.setData(x, y)
        self.rho = spearman(x, y) if len(x) > 1 else float("nan")
        if not self._sweep_queue or len(self._sweep_queue) <= 1:
            which = "feasible range" if self.combo_range.currentIndex() == 0 else "data range"
            lo, hi = self.sweep_range or (x.min(), x.max())
            self.sweep_summary = summarise([SweepRow(float(t), float(a), 0.0, None, None, 1) for t, a in zip(x, y)],
                                           self._ref_scores())
            sm = self.sweep_summary
            unit = "pts" if sm.normalised else "return"
            rho = f" · rank correlation {self.rho:.2f}" if np.isfinite(self.rho) else ""
            self.lbl_sweep.setText(f"<b>{sm.verdict}</b>: achieved {sm.achieved_span:+.0f} {unit} over a "
                                   f"{sm.swept_span:.0f}-{unit} sweep (slope {sm.slope:.2f}){rho}<br>"
                                   f"{len(x)} targets over the {which} {lo:.0f} – {hi:.0f} (dashed: y = x)")

    def _ref_scores(self) -> tuple[float, float] | None:
        """The checkpoint's reference scores (random, expert), so the sweep's spans are normalised points."""
        s = self.state
        meta = getattr(s.planner, "ckpt_meta", None)
        if not meta or s.task is None:
            return None
        try:
            return checkpoint_ref_scores(meta, s.task)
        except Exception:  # noqa: BLE001 - no reference scores: the spans stay in raw return
            return None

    # ---- evaluate N episodes (a `mage eval` subprocess: the UI never waits, the CLI's own numbers) ----------
    def start_eval(self) -> None:
        s = self.state
        if self.eval_proc.is_running():
            return
        ckpt = s.planner_path
        if s.planner is None or (not ckpt and self.eval_command_override is None):
            self.act.report_error("Cannot evaluate", "Evaluate runs `mage eval` on a checkpoint file: open a "
                                  "checkpoint first (this planner has no file).")
            return
        n = self.spin_episodes.value()
        make = self.eval_command_override or eval_argv
        argv = make(ckpt, n, s.rtg)
        self.eval_result = None
        self.eval_progress.setRange(0, 0)  # busy until the first progress line
        self.eval_progress.setVisible(True)
        self.lbl_eval.setText(f"Evaluating {n} episode{'s' if n != 1 else ''} at RTG target {fmt_rtg(s.rtg)}…")
        self.btn_eval.setEnabled(False)
        self.btn_eval_stop.setEnabled(True)
        self.eval_proc.start(argv, env=env_for_children())

    def _eval_output(self, line: str) -> None:
        m = PROGRESS_RE.search(line)
        if m:
            done, total = int(m.group(1)), max(int(m.group(2)), 1)
            self.eval_progress.setRange(0, total)
            self.eval_progress.setValue(min(done, total))

    def _eval_finished(self, ok: bool, message: str) -> None:
        self.btn_eval.setEnabled(True)
        self.btn_eval_stop.setEnabled(False)
        self.eval_progress.setVisible(False)
        result = parse_eval_output(self.eval_proc.stdout_lines) if ok else None
        if ok and result is not None:
            self.eval_result = result
            self.lbl_eval.setText(eval_summary(result))
            self.act.show_status("Evaluation: " + self.lbl_eval.text(), 8000)
        elif "stopped" in message:
            self.lbl_eval.setText("Evaluation stopped.")
        else:
            why = message if not ok else "it printed no result"
            self.lbl_eval.setText(f"Evaluation failed: {why}")
            self.act.report_error("Evaluation failed", f"`mage eval` {why}")

    # ---- rollout export (the viewport's frames of the current run) ----------------------------------------------
    def _record_frame(self, shot, img) -> None:
        """Keep the first view frame that shows the last step (a frame of an older step, or one shown while the view
        left the run, is not kept)."""
        want = self._frame_wanted
        if want is None or want[0] is not shot or self.state.view_mode != "run":
            return
        self._frame_wanted = None
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice

        if img.width() > ROLLOUT_FRAME_W:
            img = img.scaledToWidth(ROLLOUT_FRAME_W, Qt.TransformationMode.SmoothTransformation)
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        img.save(buf, "PNG")
        buf.close()
        self.rollout_frames.append(bytes(data))
        self.rollout_steps.append(want[1])
        self.btn_export_rollout.setEnabled(True)
        if self._play_waiting:
            token = self._play_token
            QTimer.singleShot(0, lambda: self._play_next(token))

    def _play_next(self, token: int) -> None:
        """Play's next step, once per step: after its frame was painted, or when the wait ran out."""
        if token != self._play_token or not self._play_waiting:
            return
        self._play_waiting = False
        if self.playing:
            self.step_once()

    def export_pair_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Export low / high target pair", "mage-rtg-pair.gif", "GIF (*.gif)")
        if path:
            self.export_pair(path)

    def export_pair(self, path: str, on_done=None) -> None:
        """The low / high target pair (mage_core.target_pair) on the worker; the status line says what each achieved."""
        from mage_studio.export import run_target_pair

        self.btn_export_pair.setEnabled(False)
        self.lbl_status.setText("Running the lowest and the highest target for the pair…")

        def done(result):
            self.btn_export_pair.setEnabled(self.state.planner is not None)
            if result is not None:
                self.lbl_status.setText(result["message"])
                self.act.show_status(result["message"], 10000)
            if on_done is not None:
                on_done(result)

        run_target_pair(self.state, self.act, path, done)

    def export_rollout_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if not self.rollout_frames:
            self.act.report_error("Nothing to export", "Run the closed loop first (Play or Step): the rollout "
                                  "records one viewport frame per step.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export rollout", "mage-rollout.mp4", "MP4 video (*.mp4);;GIF (*.gif)")
        if path:
            self.export_rollout(path)

    def export_rollout(self, path: str, on_done=None) -> None:
        """Write the recorded frames as an animated GIF on the worker (a numbered PNG folder without Pillow)."""
        from mage_studio.export import write_rollout

        frames = list(self.rollout_frames)
        if not frames:
            self.act.report_error("Nothing to export", "No closed-loop frames are recorded yet.")
            return
        self.btn_export_rollout.setEnabled(False)
        self.lbl_status.setText(f"Writing the rollout ({len(frames)} frames)…")

        def done(result):
            out, kind = result
            self.btn_export_rollout.setEnabled(bool(self.rollout_frames))
            msg = (f"Saved the rollout to {out} ({len(frames)} frames)" if kind in ("gif", "mp4") else
                   f"Pillow is not installed, so the rollout was written as {len(frames)} numbered PNG frames in {out}")
            self.lbl_status.setText(msg + ".")
            self.act.show_status(msg, 8000)
            if on_done is not None:
                on_done(result)

        def failed(msg):
            self.btn_export_rollout.setEnabled(bool(self.rollout_frames))
            self.act.report_error("Cannot export the rollout", msg)
            if on_done is not None:
                on_done(None)

        self.act.run_in_background(lambda: write_rollout(path, frames, ROLLOUT_FRAME_MS), done, failed)
