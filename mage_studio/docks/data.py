"""Data dock: built-in tasks and local Minari datasets, dataset generation with progress, summary and episode browser."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QSlider, QSpinBox)

from mage_core.tasks import TASKS
from mage_studio.docks.base import StudioDock, heading, muted
from mage_studio.process import EventProcess, mage_command

REPLAY_INTERVAL_MS = 30  # episode replay: one dataset step per tick


class DataDock(StudioDock):
    """Pick or generate a dataset, inspect it, replay its episodes."""

    def __init__(self, state, act, parent=None):
        super().__init__("Data", "dock_data", state, act, parent)
        self.body.addWidget(heading("Built-in tasks"))
        row = QHBoxLayout()
        self.task_combo = QComboBox()
        self.task_combo.addItems(sorted(TASKS))
        self.task_combo.setToolTip("Show a built-in task's maze (no dataset needed)")
        self.task_combo.activated.connect(lambda _: act.show_task(self.task_combo.currentText()))
        row.addWidget(self.task_combo, 1)
        self.body.addLayout(row)
        gen = QHBoxLayout()
        gen.addWidget(QLabel("Steps"))
        self.spin_steps = QSpinBox()
        self.spin_steps.setRange(100, 5_000_000)
        self.spin_steps.setSingleStep(10_000)
        self.spin_steps.setValue(100_000)
        self.spin_steps.setToolTip("Environment steps of the dataset to generate (100k: about ten seconds)")
        gen.addWidget(self.spin_steps)
        self.btn_gen = QPushButton("Generate")
        self.btn_gen.setToolTip("Generate a dataset for the selected task with `mage data make` in the background")
        self.btn_gen.clicked.connect(self.generate)
        gen.addWidget(self.btn_gen)
        self.body.addLayout(gen)
        self.gen_progress = QProgressBar()
        self.gen_progress.setVisible(False)
        self.body.addWidget(self.gen_progress)
        self.lbl_gen = muted("")
        self.body.addWidget(self.lbl_gen)

        self.body.addWidget(heading("Local datasets"))
        self.list = QListWidget()
        self.list.setMinimumHeight(90)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemDoubleClicked.connect(lambda it: act.open_dataset(it.data(Qt.ItemDataRole.UserRole)))
        self.body.addWidget(self.list)
        brow = QHBoxLayout()
        self.btn_load = QPushButton("Load")
        self.btn_load.setToolTip("Load the selected dataset (or double-click it)")
        self.btn_load.clicked.connect(self._load_selected)
        self.btn_refresh = QPushButton("Refresh")
        self.btn_refresh.setToolTip("List the local Minari datasets again")
        self.btn_refresh.clicked.connect(self.refresh)
        self.btn_open = QPushButton("Open folder…")
        self.btn_open.setToolTip("Open a Minari dataset folder from disk")
        self.btn_open.clicked.connect(lambda: act.open_dataset_dialog())
        for b in (self.btn_load, self.btn_refresh, self.btn_open):
            brow.addWidget(b)
        self.body.addLayout(brow)

        self.body.addWidget(heading("Summary"))
        self.lbl_summary = muted("No dataset loaded.")
        self.body.addWidget(self.lbl_summary)
        import pyqtgraph as pg

        self.hist = pg.PlotWidget()
        self.hist.setFixedHeight(120)
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.setLabel("bottom", "episode return (RTG label at the first step)")
        self.body.addWidget(self.hist)

        self.body.addWidget(heading("Episode browser"))
        erow = QHBoxLayout()
        erow.addWidget(QLabel("Episode"))
        self.spin_ep = QSpinBox()
        self.spin_ep.setRange(0, 0)
        self.spin_ep.setToolTip("The dataset episode to show and replay")
        self.spin_ep.valueChanged.connect(self._episode_changed)
        erow.addWidget(self.spin_ep)
        self.btn_play = QPushButton("Replay")
        self.btn_play.setCheckable(True)
        self.btn_play.setToolTip("Play this dataset episode in the viewport")
        self.btn_play.toggled.connect(self._toggle_replay)
        erow.addWidget(self.btn_play)
        self.body.addLayout(erow)
        self.btn_use = QPushButton("Use as start")  # its own line: the row fits a 300-px column
        self.btn_use.setToolTip("Condition the planner on this dataset state")
        self.btn_use.clicked.connect(self._use_state)
        self.body.addWidget(self.btn_use)
        self.step_slider = QSlider(Qt.Orientation.Horizontal)
        self.step_slider.setToolTip("The episode's step shown in the viewport")
        self.step_slider.valueChanged.connect(self._show_step)
        self.body.addWidget(self.step_slider)
        self.lbl_ep = muted("")
        self.body.addWidget(self.lbl_ep)
        self.body.addStretch(1)

        self.proc = EventProcess(self)
        self.proc.event.connect(self._on_event)
        self.proc.finished.connect(self._on_finished)
        self.replay_timer = QTimer(self)
        self.replay_timer.setInterval(REPLAY_INTERVAL_MS)
        self.replay_timer.timeout.connect(self._replay_tick)
        state.events.dataset.connect(self._on_dataset)
        state.events.task.connect(lambda t: self.task_combo.setCurrentText(t.name) if t.name in TASKS else None)
        self.generated_id: str | None = None
        self.command_override = None  # tests: a function (task, steps) -> argv replacing `mage data make`

    # ---- listing -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.list.clear()
        try:
            from mage_core.data.store import list_datasets

            rows = list_datasets()
        except Exception as exc:
            self.list.addItem(f"(cannot list datasets: {exc})")
            return
        for r in rows:
            it = QListWidgetItem(f"{r['id']}   ·   {r.get('episodes')} ep, {r.get('steps')} steps")
            it.setData(Qt.ItemDataRole.UserRole, r["id"])
            it.setToolTip(r.get("path", ""))
            self.list.addItem(it)
        if not rows:
            self.list.addItem("(none yet — Generate one above)")

    def _load_selected(self) -> None:
        it = self.list.currentItem()
        if it is not None and it.data(Qt.ItemDataRole.UserRole):
            self.act.open_dataset(it.data(Qt.ItemDataRole.UserRole))

    # ---- generation --------------------------------------------------------------------------------------------
    def generate(self) -> None:
        if self.proc.is_running():
            self.proc.stop()
            return
        task = self.task_combo.currentText()
        steps = self.spin_steps.value()
        argv = (self.command_override(task, steps) if self.command_override else
                mage_command("data", "make", task, "--steps", str(steps), "--events", "-", "--force"))
        self.gen_progress.setRange(0, steps)
        self.gen_progress.setValue(0)
        self.gen_progress.setVisible(True)
        self.btn_gen.setText("Cancel")
        self.lbl_gen.setText(f"Generating {task} ({steps:,} steps)…")
        self.generated_id = None
        self.proc.start(argv)

    def _on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "progress":
            self.gen_progress.setRange(0, int(ev.get("total", 1)))
            self.gen_progress.setValue(int(ev.get("done", 0)))
        elif kind == "done":
            self.generated_id = ev.get("dataset_id")

    def _on_finished(self, ok: bool, message: str) -> None:
        self.btn_gen.setText("Generate")
        self.gen_progress.setVisible(False)
        if ok and self.generated_id:
            self.lbl_gen.setText(f"Generated {self.generated_id}.")
            self.refresh()
            self.act.open_dataset(self.generated_id)
        else:
            self.lbl_gen.setText(f"Generation {message}")
            if "stopped" not in message:
                self.act.report_error("Dataset generation failed", message)

    # ---- summary -----------------------------------------------------------------------------------------------
    def _on_dataset(self, ds) -> None:
        import pyqtgraph as pg

        lengths = np.array([e.length for e in ds.episodes])
        if ds.task.suite.reports_success(ds.task):
            succ = np.mean([e.success for e in ds.episodes]) if ds.episodes else 0.0
            goal = f"{100 * succ:.0f}% reach the goal"
        else:  # no goal (locomotion): an episode that ends early fell; nothing is a success
            goal = "no goal, no success rate"
        ref = ds.info.get("ref_min_score"), ds.info.get("ref_max_score")
        ref_s = f"\nref scores {ref[0]:.1f} / {ref[1]:.1f} (random / expert)" if None not in ref else ""
        self.lbl_summary.setText(
            f"{ds.id}\ntask {ds.task.name} · {len(ds.episodes)} episodes · {ds.steps:,} steps\n"
            f"obs dim {ds.obs_dim} · action dim {ds.act_dim} · {goal}\n"
            f"episode length mean {lengths.mean():.0f} (min {lengths.min()}, max {lengths.max()}){ref_s}")
        self.hist.clear()
        returns = ds.rtg0_N if ds.rtg0_N is not None else np.array([float(e.rewards_T.sum()) for e in ds.episodes])
        counts, edges = np.histogram(returns, bins=min(30, max(len(returns) // 2, 5)))
        self.hist.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(100, 190, 160, 180),
                                          pen=pg.mkPen(None)))
        self.spin_ep.setRange(0, max(len(ds.episodes) - 1, 0))
        self._episode_changed(self.spin_ep.value())

    # ---- episode browser ---------------------------------------------------------------------------------------
    def _episode(self):
        ds = self.state.dataset
        if ds is None or not ds.episodes:
            return None
        return ds.episodes[min(self.spin_ep.value(), len(ds.episodes) - 1)]

    def _episode_changed(self, _=None) -> None:
        ep = self._episode()
        if ep is None:
            return
        self.step_slider.blockSignals(True)
        self.step_slider.setRange(0, ep.length)
        self.step_slider.setValue(0)
        self.step_slider.blockSignals(False)
        task = self.state.dataset.task
        if task.suite.reports_success(task):
            end = "reached the goal" if ep.success else "did not reach the goal"
        else:  # the episode's success flag is its termination here: a fall, not an arrival
            end = "ended by a termination (a fall)" if ep.success else "ran until the time limit or the data's end"
        self.lbl_ep.setText(f"{ep.length} steps, return {float(ep.rewards_T.sum()):.1f}, {end}")

    def _toggle_replay(self, on: bool) -> None:
        if on and self._episode() is not None:
            if self.step_slider.value() >= self.step_slider.maximum():
                self.step_slider.setValue(0)
            self.replay_timer.start()
        else:
            self.replay_timer.stop()
            self.btn_play.setChecked(False)

    def _replay_tick(self) -> None:
        if self.step_slider.value() >= self.step_slider.maximum():
            self._toggle_replay(False)
            return
        self.step_slider.setValue(self.step_slider.value() + 1)

    def _show_step(self, t: int) -> None:
        ep = self._episode()
        if ep is not None:
            self.act.show_episode_step(ep, t)

    def _use_state(self) -> None:
        ep = self._episode()
        if ep is None:
            return
        obs = ep.obs_TD[self.step_slider.value()]
        task = self.state.task
        if task.suite.editable(task).points:
            pts = task.suite.points_of(task, obs)
            self.state.set_goal(pts["goal"])
            self.state.set_start(pts["start"])
        else:
            self.state.state_template = obs
