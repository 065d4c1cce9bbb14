"""Train dock: start/stop/resume `mage train` in a background process; live per-stage losses, progress, codebook usage."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton)

from mage_core.config import PRESETS
from mage_studio.docks.base import StudioDock, muted
from mage_studio.process import EventProcess, mage_command

LOSS_COLORS = [(99, 179, 237), (246, 173, 85), (104, 211, 145), (252, 129, 129), (183, 148, 244), (237, 137, 200),
               (129, 230, 217), (236, 201, 75)]  # one colour per loss name, in order of appearance
LOG_KEEP = 400  # lines kept in the process log view


def train_argv(dataset: str, preset: str, device: str, out: str, resume: str | None = None,
               steps_scale: float | None = None) -> list[str]:
    """The `mage train` command line the dock runs (events as JSON lines on stdout); resume reuses the run's config."""
    if resume:
        return mage_command("train", "--resume", resume, "--device", device, "--events", "-")
    argv = mage_command("train", "--dataset", dataset, "--preset", preset, "--device", device, "--out", out,
                        "--events", "-")
    if steps_scale and steps_scale != 1.0:
        argv += ["--steps-scale", f"{steps_scale:g}"]
    return argv


def default_checkpoint_dir() -> Path:
    """Where the studio writes new checkpoints: $MAGE_CHECKPOINTS, else the user's data folder (never the repository)."""
    if os.environ.get("MAGE_CHECKPOINTS"):
        return Path(os.environ["MAGE_CHECKPOINTS"])
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".local" / "share" / "mage-studio") / "checkpoints"


class TrainDock(StudioDock):
    """Background training with live curves; the window never waits on it."""

    def __init__(self, state, act, parent=None):
        super().__init__("Train", "dock_train", state, act, parent)
        grid = QGridLayout()
        grid.addWidget(QLabel("Dataset"), 0, 0)
        self.combo_ds = QComboBox()
        self.combo_ds.setEditable(True)
        self.combo_ds.setToolTip("Dataset id or path")
        grid.addWidget(self.combo_ds, 0, 1, 1, 3)
        grid.addWidget(QLabel("Preset"), 1, 0)
        self.combo_preset = QComboBox()
        self.combo_preset.addItems(list(PRESETS))
        self.combo_preset.setCurrentText("small" if "small" in PRESETS else PRESETS[0])
        self.combo_preset.setToolTip("Model and training size: tiny (a quick try), small (the bundled checkpoints), "
                                     "paper (the paper's sizes; slow on a CPU)")
        grid.addWidget(self.combo_preset, 1, 1)
        grid.addWidget(QLabel("Device"), 1, 2)
        self.combo_device = QComboBox()
        self.combo_device.addItems(["auto", "cpu"])
        self.combo_device.setToolTip("auto = CUDA when present, else CPU")
        grid.addWidget(self.combo_device, 1, 3)
        grid.addWidget(QLabel("Steps ×"), 2, 0)
        self.spin_scale = QDoubleSpinBox()
        self.spin_scale.setRange(0.01, 10.0)
        self.spin_scale.setSingleStep(0.1)
        self.spin_scale.setValue(1.0)
        self.spin_scale.setToolTip("Multiply every stage's step count (0.1 for a quick try)")
        grid.addWidget(self.spin_scale, 2, 1)
        grid.addWidget(QLabel("Output"), 3, 0)
        self.edit_out = QLineEdit(str(default_checkpoint_dir() / "studio-run.pt"))
        self.edit_out.setToolTip("The checkpoint file training writes (every few hundred steps, atomically); Resume "
                                 "continues from it. Start asks before replacing an existing file.")
        grid.addWidget(self.edit_out, 3, 1, 1, 3)
        self.body.addLayout(grid)
        row = QHBoxLayout()  # three buttons on one line, the checkbox under them: fits a 300-px column
        self.btn_start = QPushButton("Start")
        self.btn_start.setObjectName("primary")
        self.btn_start.setToolTip("Train from scratch with `mage train` in a background process (Ctrl+T)")
        self.btn_stop = QPushButton("Stop")
        self.btn_stop.setToolTip("Stop the training process; the last periodic checkpoint stays and Resume continues it")
        self.btn_resume = QPushButton("Resume")
        self.btn_resume.setToolTip("Continue from the output checkpoint's saved training state")
        for w in (self.btn_start, self.btn_stop, self.btn_resume):
            row.addWidget(w)
        self.body.addLayout(row)
        self.chk_load = QCheckBox("Load when done")
        self.chk_load.setChecked(True)
        self.chk_load.setToolTip("Open the finished checkpoint in the studio (plans from it at once)")
        self.btn_open_run = QPushButton("Open run…")
        self.btn_open_run.setToolTip("Plot a finished (or stopped) run's curves from its events: pick its checkpoint "
                                     "(every run writes CKPT.events.jsonl beside it) or an events file")
        row2 = QHBoxLayout()
        row2.addWidget(self.chk_load)
        row2.addStretch(1)
        row2.addWidget(self.btn_open_run)
        self.body.addLayout(row2)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.body.addWidget(self.progress)
        self.lbl_status = muted("Idle.")
        self.body.addWidget(self.lbl_status)

        import pyqtgraph as pg

        self.lbl_legend = QLabel("")  # the loss names in their colours, above the plot (never over the curves)
        self.lbl_legend.setWordWrap(True)
        self.lbl_legend.setTextFormat(Qt.TextFormat.RichText)
        self.body.addWidget(self.lbl_legend)
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setMinimumHeight(170)
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "training step (dashed: a stage starts)")
        self.loss_plot.setToolTip("Losses per stage on one step axis: the stages run one after another and a dashed "
                                  "line marks where each starts (yellow: where a Resume continued)")
        self.loss_plot.setLabel("left", "loss (log)")
        self.loss_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.body.addWidget(self.loss_plot)
        self.usage_plot = pg.PlotWidget()
        self.usage_plot.setFixedHeight(150)
        self.usage_plot.setLabel("bottom", "scale")
        self.usage_plot.setLabel("left", "codebook use")
        self.usage_plot.setYRange(0, 1)
        self.usage_plot.setToolTip("Codebook usage per scale: the share of the codebook's codes the autoencoder's "
                                   "tokens use (low: collapsed codes)")
        self.body.addWidget(self.usage_plot)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_KEEP)
        self.log.setFixedHeight(90)
        self.log.setPlaceholderText("process output")
        self.body.addWidget(self.log)

        self.proc = EventProcess(self)
        self.proc.event.connect(self.on_event)
        self.proc.output.connect(self.log.appendPlainText)
        self._overwrite_box = None  # the "replace the existing checkpoint?" question while it is open
        self.proc.finished.connect(self._on_finished)
        self.btn_start.clicked.connect(lambda: self.start(resume=False))
        self.btn_resume.clicked.connect(lambda: self.start(resume=True))
        self.btn_stop.clicked.connect(self.stop)
        self.btn_open_run.clicked.connect(self.open_run_dialog)
        self.command_override = None  # tests/bench: a function (resume: bool) -> argv replacing `mage train`
        self.curves: dict[tuple, object] = {}  # (loss name, stage) -> its curve: a loss never bridges two stages
        self.points: dict[str, list] = {}  # loss name -> [(x, y)] in training-step order
        self._point_stage: dict[str, list] = {}  # loss name -> the stage of each point
        self.colors: dict[str, tuple] = {}  # loss name -> colour
        self.markers: list = []  # stage-start and resume lines on the chart
        self.stage_names: list[str] = []  # "k name" of each stage, listed under the legend
        self.resumed_at: int | None = None  # global step the last Resume continued from
        self.stage_offsets: dict[str, int] = {}
        self.stage_totals: dict[str, int] = {}
        self.last_checkpoint: str | None = None
        self.events_seen = 0
        self._t0 = 0.0
        self._set_running(False)
        state.events.dataset.connect(lambda ds: self.combo_ds.setCurrentText(str(ds.id)))

    def detect_devices(self) -> None:
        """Add 'cuda' when torch sees a GPU (torch imported on a worker, after the window is up)."""
        def probe():
            import torch

            return torch.cuda.is_available()

        def done(has_cuda):
            if has_cuda and self.combo_device.findText("cuda") < 0:
                self.combo_device.addItem("cuda")
            self.act.show_device("cuda" if has_cuda else "cpu")

        self.act.run_in_background(probe, done, lambda m: None)

    def refresh_datasets(self, ids: list[str]) -> None:
        cur = self.combo_ds.currentText()
        self.combo_ds.clear()
        self.combo_ds.addItems(ids)
        if cur:
            self.combo_ds.setCurrentText(cur)

    # ---- process control ---------------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.btn_start.setEnabled(not running)
        self.btn_resume.setEnabled(not running)
        self.btn_stop.setEnabled(running)

    def start(self, resume: bool = False, overwrite: bool = False) -> None:
        """Start (or resume) training; a new run asks first when its output file exists already."""
        if self.proc.is_running():
            return
        ds = self.combo_ds.currentText().strip()
        out = self.edit_out.text().strip()
        if self.command_override is None and not ds:
            self.act.report_error("Cannot start training", "Pick a dataset to train on.")
            return
        if resume and self.command_override is None and not Path(out).is_file():
            self.act.report_error("Cannot resume", f"There is no checkpoint at {out} to resume from.")
            return
        if not resume and not overwrite and out and Path(out).exists():
            self._ask_overwrite(out)
            return
        if self.command_override is not None:
            argv = self.command_override(resume)
        else:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            argv = train_argv(ds, self.combo_preset.currentText(), self.combo_device.currentText(), out,
                              resume=out if resume else None, steps_scale=self.spin_scale.value())
        if not resume:
            self._clear_plots()
            self.log.clear()
        else:
            self.log.appendPlainText("— resumed —")
        self.log.appendPlainText("$ " + " ".join(argv))
        self.lbl_status.setText("Starting…")
        self._t0 = time.perf_counter()
        self._set_running(True)
        self.proc.start(argv)

    def _ask_overwrite(self, out: str) -> None:
        """A non-blocking question: replace the existing file, or keep it (and pick another name)."""
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Question, "Replace the checkpoint?",
                          f"{out} exists already. Training from scratch replaces it (Resume continues it instead).",
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("mageOverwriteDialog")
        self.btn_overwrite = box.addButton("Replace it", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda b: self.start(False, overwrite=True) if b is self.btn_overwrite else
                                  self.lbl_status.setText("Not started: pick another output file, or Resume."))
        box.open()
        self._overwrite_box = box

    def stop(self) -> None:
        if self.proc.is_running():
            self.lbl_status.setText("Stopping…")
            self.proc.stop()

    def open_run_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open a training run", str(Path(self.edit_out.text()).parent),
                                              "Runs (*.pt *.jsonl);;Checkpoints (*.pt);;Events (*.jsonl);;All files (*)")
        if path:
            self.open_run(path)

    def open_run(self, path: str) -> bool:
        """Plot a past run: a checkpoint (its CKPT.events.jsonl beside it) or an events file; False with an error
        report when there is nothing to plot."""
        from mage_core.errors import MageError
        from mage_core.training.runlog import events_path

        events = events_path(path) if str(path).endswith(".pt") else Path(path)
        if not events.is_file():
            self.act.report_error("Cannot open the run", f"There is no events file {events.name} beside {path}; runs "
                                  "write one as they train (a checkpoint from elsewhere may come without it).")
            return False
        try:
            self.load_events_file(str(events))
        except MageError as exc:
            self.act.report_error("Cannot open the run", str(exc))
            return False
        return True

    def load_events_file(self, path: str) -> int:
        """Plot a past run from its JSON-lines events file (`mage train --events FILE`); returns events read."""
        import json

        from mage_core.errors import MageError

        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise MageError(f"cannot read {path}: {exc.strerror}") from None
        events = []
        for i, line in enumerate(lines):
            if line.strip():
                try:
                    ev = json.loads(line)
                except ValueError:
                    raise MageError(f"{path} line {i + 1} is not JSON; expected `mage train --events` output") from None
                if isinstance(ev, dict) and "event" in ev:
                    events.append(ev)
        if not events:
            raise MageError(f"{path} holds no training events")
        self._clear_plots()
        self._t0 = time.perf_counter()
        for ev in events:
            self.on_event(ev)
        done = [e for e in events if e.get("event") == "done"]
        self.lbl_status.setText(f"Training log {Path(path).name}: {len(events)} events"
                                + (f", finished in {_fmt_s(float(done[-1].get('wall_s', 0)))}" if done else ""))
        return len(events)

    def _clear_plots(self) -> None:
        self.loss_plot.clear()
        self.curves, self.points, self._point_stage, self.colors, self.markers = {}, {}, {}, {}, []
        self.stage_names = []
        self.resumed_at = None
        self.lbl_legend.setText("")
        self.stage_offsets, self.stage_totals = {}, {}
        self.usage_plot.clear()
        self.progress.setValue(0)
        self.events_seen = 0

    # ---- events ------------------------------------------------------------------------------------------------
    def _global_step(self, stage, step: int) -> int:
        return self.stage_offsets.get(str(stage), 0) + int(step)

    def on_event(self, ev: dict) -> None:
        self.events_seen += 1
        kind = ev.get("event")
        if kind == "start":
            off = 0
            fresh = not self.stage_totals
            for i, st in enumerate(ev.get("stages", [])):
                for key in (str(st.get("name")), str(i + 1)):  # step events name the stage by index or name
                    self.stage_offsets[key] = off
                self.stage_totals[str(i + 1)] = int(st.get("steps", 0))
                if fresh and int(st.get("steps", 0)) > 0:
                    self._marker(off, f"{i + 1}", (150, 160, 185))  # the number only: names in the legend row
                    self.stage_names.append(f"{i + 1} {st.get('name', '')}".strip())
                off += int(st.get("steps", 0))
            self._update_legend()
            self.progress.setRange(0, max(off, 1))
            resumed = (f" · resumed from the checkpoint at stage step {ev['resumed_from']}"
                       if ev.get("resumed_from") is not None else "")
            self.lbl_status.setText(f"Training {ev.get('algo', 'mage')} on {ev.get('task', '?')} · {ev.get('device', '?')}"
                                    f" · {ev.get('params', 0):,} parameters{resumed}")
        elif kind == "step":
            self._on_step(ev)
        elif kind == "stage_end":
            self.lbl_status.setText(f"Stage {ev.get('stage')} finished.")
        elif kind == "checkpoint":
            self.last_checkpoint = ev.get("path")
        elif kind == "done":
            self.last_checkpoint = ev.get("checkpoint") or self.last_checkpoint
            self.progress.setValue(self.progress.maximum())
        elif kind == "error":
            self.log.appendPlainText(f"error: {ev.get('message')}")

    def _marker(self, x: float, label: str, color) -> None:
        import pyqtgraph as pg

        line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                               label=label, labelOpts={"position": 0.92, "color": color, "anchors": [(0, 0), (0, 0)]})
        self.loss_plot.addItem(line)
        self.markers.append((x, label))

    def _rewind(self, x: int) -> None:
        """Resume restarts at the last checkpoint: drop the points at or after it (they are trained again), so the
        chart never shows the same steps twice."""
        for name, pts in self.points.items():
            keep = [i for i, (px, _) in enumerate(pts) if px < x]
            self.points[name] = [pts[i] for i in keep]
            self._point_stage[name] = [self._point_stage[name][i] for i in keep]
        for name in {n for n, _ in self.curves}:
            self._redraw(name)
        if self.resumed_at != x:
            self.resumed_at = x
            self._marker(x, "resumed", (255, 196, 64))

    def _redraw(self, name: str) -> None:
        import pyqtgraph as pg

        by_stage = {}
        for (x, y), st in zip(self.points[name], self._point_stage[name]):
            by_stage.setdefault(st, []).append((x, y))
        for (n, st), curve in self.curves.items():
            if n == name and st not in by_stage:
                curve.setData([], [])
        for st, pts in by_stage.items():
            key = (name, st)
            if key not in self.curves:
                self.curves[key] = self.loss_plot.plot(pen=pg.mkPen(self.colors[name], width=1.6))
            xs, ys = zip(*pts)
            self.curves[key].setData(np.asarray(xs), np.asarray(ys))

    def _update_legend(self) -> None:
        text = "  ".join(f"<span style='color: rgb{c}'>━ {n}</span>" for n, c in self.colors.items())
        if self.stage_names:  # the stage lines are numbered on the chart (full names overlapped in a narrow panel)
            text += "<br><span style='color: #9aa3b5'>stages: " + " · ".join(self.stage_names) + "</span>"
        self.lbl_legend.setText(text)

    def _on_step(self, ev: dict) -> None:
        stage = str(ev.get("stage"))
        label = ev.get("stage_name") or stage
        if stage not in self.stage_offsets:  # no start event (or unknown stage): append after the others
            self.stage_offsets[stage] = sum(self.stage_totals.values())
            self.stage_totals[stage] = int(ev.get("total", 0))
            self.progress.setRange(0, max(sum(self.stage_totals.values()), 1))
        x = self._global_step(stage, ev.get("step", 0))
        last = max((pts[-1][0] for pts in self.points.values() if pts), default=None)
        if last is not None and x <= last:  # steps already drawn come again: a resumed run
            self._rewind(x)
        for name, val in (ev.get("losses") or {}).items():
            try:
                v = float(val)
            except (TypeError, ValueError):
                continue
            if not np.isfinite(v) or v <= 0:
                continue
            if name not in self.colors:
                self.colors[name] = LOSS_COLORS[len(self.colors) % len(LOSS_COLORS)]
                self.points[name], self._point_stage[name] = [], []
                self._update_legend()
            self.points[name].append((x, v))
            self._point_stage[name].append(stage)
            self._redraw_last(name, stage)
        usage = ev.get("codebook_usage")
        if usage:
            import pyqtgraph as pg

            self.usage_plot.clear()
            self.usage_plot.addItem(pg.BarGraphItem(x=np.arange(1, len(usage) + 1), height=np.asarray(usage, float),
                                                    width=0.7, brush=(90, 130, 210, 200)))
        self.progress.setValue(min(x, self.progress.maximum()))
        eta = ev.get("eta_s")
        total_left = sum(self.stage_totals.values()) - x
        rate = ev.get("segments_per_s")
        parts = [f"stage {stage} {label if label != stage else ''} · step {ev.get('step')}/{ev.get('total')}"]
        if eta is not None:
            parts.append(f"ETA {_fmt_s(float(eta))}")
        elif total_left > 0 and x > 0:
            parts.append(f"ETA {_fmt_s((time.perf_counter() - self._t0) / x * total_left)}")
        if rate:
            parts.append(f"{float(rate):,.0f} segments/s")
        acc = ev.get("token_acc")
        if acc:
            parts.append(f"token acc {np.mean(acc):.2f}")
        self.lbl_status.setText(" · ".join(parts))

    def _redraw_last(self, name: str, stage: str) -> None:
        """Cheap update after one new point: only that loss's curve of that stage."""
        import pyqtgraph as pg

        key = (name, stage)
        if key not in self.curves:
            self.curves[key] = self.loss_plot.plot(pen=pg.mkPen(self.colors[name], width=1.6))
        pts = [p for p, st in zip(self.points[name], self._point_stage[name]) if st == stage]
        xs, ys = zip(*pts)
        self.curves[key].setData(np.asarray(xs), np.asarray(ys))

    def _on_finished(self, ok: bool, message: str) -> None:
        self._set_running(False)
        if ok:
            done = f"Done in {_fmt_s(time.perf_counter() - self._t0)}: {self.last_checkpoint or 'no checkpoint'}"
            if self.chk_load.isChecked() and self.last_checkpoint:
                # said here as well as in the status bar, where a later message can replace it
                done += (" — now loaded in the studio. A short run plans roughly: evaluate it (Run ▸ Evaluate) "
                         "before trusting it; File ▸ Recent reopens the checkpoint it replaced.")
                self.act.open_checkpoint(self.last_checkpoint)
            self.lbl_status.setText(done)
        else:
            self.lbl_status.setText(f"Training {message}")
            if "stopped" not in message:
                self.act.report_error("Training failed", f"Training {message}")


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
