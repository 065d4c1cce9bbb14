"""The studio's main window: the MuJoCo viewport in the centre, docks around it, menus, shortcuts, status bar, settings."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QTabWidget, QToolBar

from mage_core.errors import MageError
from mage_core.render import Overlay, RenderConfig, plan_overlay
from mage_core.tasks import TASKS, get_task
from mage_studio.docks.base import configure_pyqtgraph
from mage_studio.qt_util import MainThreadGC, as_sentence, error_text, show_error
from mage_studio.session import DatasetView, Session, episode_rtg0
from mage_studio.viewport import Viewport, legend_rows

RECENT_MAX = 8  # entries kept in the recent-files menus
DOCKS_FALLBACK_MS = 3000  # build the docks after this long even if no frame has been rendered yet
PLANNER_THREADS = int(os.environ.get("MAGE_STUDIO_THREADS", "1"))  # torch CPU threads for batch-1 planning (more
# threads only add synchronisation overhead at batch 1, and spin badly on a shared CPU)
DOCK_MIN_WIDTH = 300  # minimum width of every dock (fits its controls at 1280x800)
DOCK_WIDTH_FRACTION = 0.23  # default width of each dock column as a fraction of the window width ...
DOCK_MAX_WIDTH = 480  # ... but never wider than this (4K: the viewport gets the rest)
WINDOW_SCREEN_FRACTION = 0.92  # first-launch window size as a fraction of the screen's available area
SETTINGS_VERSION = 2  # bump when the dock layout changes incompatibly (2: tabbed columns; v1 states could be all-hidden)
# The default layout: two tabbed dock columns around the viewport; the first dock of each column is raised.
LEFT_DOCKS = ("condition_dock", "data_dock", "checkpoint_dock")
RIGHT_DOCKS = ("plan_dock", "run_dock", "train_dock")


class MainWindow(QMainWindow):
    """MAGE Studio: dataset → checkpoint → condition → plan → run, and training in the background."""

    def __init__(self, settings: QSettings | None = None, render_config: RenderConfig | None = None,
                 initial_task: str = "pointmaze-umaze", planner_device: str = "cpu"):
        super().__init__()
        self.setWindowTitle("MAGE Studio")
        self.setObjectName("mageStudio")
        self.settings = settings or QSettings("MAGE", "MAGE Studio")
        self.render_config = render_config or RenderConfig()
        self.planner_device = planner_device  # where loaded checkpoints plan (batch-1 planning is fastest on CPU)
        self.errors: list[str] = []  # every error shown (tests and the status bar read it)
        self.last_dialog = None
        self.docks_ready = False  # the docks are built on the first event-loop turn, after the window is up
        self.gc = MainThreadGC(self)  # Python's GC runs on this thread only (see MainThreadGC)
        self.session = Session(self)
        import_scene_modules()  # before the render thread starts: it must never import them while we build widgets
        self.viewport = Viewport(self.render_config)
        self.setCentralWidget(self.viewport)
        if initial_task in TASKS:  # start building the scene on the render thread while the docks are made
            self.viewport.set_task(get_task(initial_task))
        self.view_mode = "condition"  # "condition" | "run" | "replay"
        self._run_overlay: Overlay | None = None
        self._replay: tuple | None = None
        self._initial_task = initial_task
        self._build_status_bar()
        self.statusBar().showMessage("Loading panels…")
        self.ignore_saved_layout = False  # --reset-layout: start from the default layout, not the saved one
        geo = self.settings.value("window/geometry")
        if not (isinstance(geo, (QByteArray, bytes)) and self.restoreGeometry(geo)):
            self.resize(*default_window_size(self.screen().availableGeometry().size()))
        # the scene first: the docks are built once the first frame is up (or after a short fallback delay)
        self.viewport.frame_painted.connect(self._first_frame)
        QTimer.singleShot(DOCKS_FALLBACK_MS, self._finish_setup)

    def _first_frame(self, _ms: float) -> None:
        self.viewport.frame_painted.disconnect(self._first_frame)
        QTimer.singleShot(0, self._finish_setup)

    def _finish_setup(self) -> None:
        """Docks, menus and wiring: built right after the window first shows (pyqtgraph is slow to import)."""
        if self.docks_ready:
            return
        configure_pyqtgraph()
        from mage_studio.docks.checkpoint import CheckpointDock
        from mage_studio.docks.condition import ConditionDock
        from mage_studio.docks.data import DataDock
        from mage_studio.docks.plan import PlanDock
        from mage_studio.docks.run import RunDock
        from mage_studio.docks.train import TrainDock

        self.data_dock = DataDock(self)
        self.checkpoint_dock = CheckpointDock(self)
        self.condition_dock = ConditionDock(self)
        self.plan_dock = PlanDock(self)
        self.run_dock = RunDock(self)
        self.train_dock = TrainDock(self)
        self.docks = [getattr(self, n) for n in LEFT_DOCKS + RIGHT_DOCKS]
        for d in self.docks:
            d.setMinimumWidth(DOCK_MIN_WIDTH)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)

        self._build_actions()
        self.apply_default_layout()
        self._wire()
        self.set_task_by_name(self._initial_task)
        self._restore_settings()
        self.docks_ready = True
        self.statusBar().showMessage("Ready", 2000)

    # ---- construction ----------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.lbl_device = QLabel("device: …")
        self.lbl_model = QLabel("model: none")
        self.lbl_perf = QLabel("")
        sb.addPermanentWidget(self.lbl_perf)
        sb.addPermanentWidget(self.lbl_model)
        sb.addPermanentWidget(self.lbl_device)

    def _action(self, text, shortcut=None, slot=None, checkable=False, tip=None) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if checkable:
            a.setCheckable(True)
        if slot is not None:
            a.triggered.connect(slot)
        if tip or shortcut:
            a.setToolTip(f"{tip or text} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        m = self.menuBar()
        f = m.addMenu("&File")
        self.act_open_ckpt = self._action("Open checkpoint…", "Ctrl+O", self.open_checkpoint_dialog)
        self.act_open_ds = self._action("Open dataset folder…", "Ctrl+Shift+O", self.open_dataset_dialog)
        f.addAction(self.act_open_ckpt)
        f.addAction(self.act_open_ds)
        f.addAction(self._action("Open training log…", None, self.open_events_dialog))
        self.recent_menu = f.addMenu("Recent")
        f.addSeparator()
        f.addAction(self._action("Save figure (PNG)…", "Ctrl+E", self.export_image_dialog,
                                 tip="The view at its full resolution with legend, title and a caption (checkpoint, "
                                     "RTG, seed, scales)"))
        f.addAction(self._action("Export plan (JSON)…", "Ctrl+Shift+E", self.export_plan_dialog,
                                 tip="The current plan: per-scale tokens, decoded states and RTG, and its condition"))
        f.addSeparator()
        f.addAction(self._action("Quit", "Ctrl+Q", self.close))

        v = m.addMenu("&View")
        self.act_top = self._action("Top-down view", "T", self.viewport.view_top_down, tip="Top-down camera preset")
        self.act_orbit_view = self._action("Orbit view", "V", self.viewport.view_orbit, tip="Three-quarter orbit camera")
        v.addAction(self.act_top)
        v.addAction(self.act_orbit_view)
        v.addSeparator()
        self.tool_group = QActionGroup(self)
        self.act_tool_nav = self._action("Orbit tool", "O", lambda: self.set_tool("navigate"), True)
        self.act_tool_start = self._action("Place start", "S", lambda: self.set_tool("start"), True)
        self.act_tool_goal = self._action("Place goal", "G", lambda: self.set_tool("goal"), True)
        for a in (self.act_tool_nav, self.act_tool_start, self.act_tool_goal):
            self.tool_group.addAction(a)
            v.addAction(a)
        v.addSeparator()
        self.act_coarser = self._action("Coarser scale", "[", lambda: self.plan_dock.step_refine(-1))
        self.act_finer = self._action("Finer scale", "]", lambda: self.plan_dock.step_refine(+1))
        v.addAction(self.act_coarser)
        v.addAction(self.act_finer)
        v.addSeparator()
        for d in self.docks:
            v.addAction(d.toggleViewAction())
        self.act_reset_layout = self._action("Reset layout", None, self.reset_layout,
                                             tip="Show every panel and the toolbar in their default places")
        self._view_menu = v

        r = m.addMenu("&Run")
        self.act_play = self._action("Play / pause", "Space", self.run_dock.toggle_play)
        self.act_step = self._action("Step", "N", self.run_dock.step_once)
        self.act_reset = self._action("Reset", "R", self.run_dock.reset)
        self.act_replan = self._action("Re-plan now", "F5", self.session.replan_now)
        self.act_rtg_up = self._action("RTG +5%", "PgUp", lambda: self.nudge_rtg(+0.05))
        self.act_rtg_down = self._action("RTG -5%", "PgDown", lambda: self.nudge_rtg(-0.05))
        self.act_train = self._action("Start training", "Ctrl+T", lambda: self.train_dock.start(False))
        for a in (self.act_play, self.act_step, self.act_reset, self.act_replan, self.act_rtg_up, self.act_rtg_down,
                  self.act_train):
            r.addAction(a)

        h = m.addMenu("&Help")
        h.addAction(self._action("Keyboard shortcuts", "F1", self.show_shortcuts))

        tb = QToolBar("Toolbar")
        tb.setObjectName("toolbar_main")
        tb.setMovable(False)
        self.addToolBar(tb)
        self.toolbar = tb
        v.addAction(tb.toggleViewAction())  # a hidden toolbar can always be brought back from the View menu
        v.addSeparator()
        v.addAction(self.act_reset_layout)
        for a in (self.act_open_ckpt, self.act_open_ds):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_top, self.act_orbit_view):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_tool_nav, self.act_tool_start, self.act_tool_goal):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_play, self.act_step, self.act_reset):
            tb.addAction(a)
        self.set_tool("start")

    def _wire(self) -> None:
        s = self.session
        s.task_changed.connect(self._on_task)
        s.condition_changed.connect(self._on_condition)
        s.plan_ready.connect(self._on_plan)
        s.planner_changed.connect(self._on_planner)
        s.notify.connect(self._on_notify)
        self.plan_dock.visibility_changed.connect(self._refresh_overlay)
        self.plan_dock.visibility_changed.connect(self.plan_dock._plot)
        self.condition_dock.tool_changed.connect(self.set_tool)
        vp = self.viewport
        vp.world_clicked.connect(self._on_world_pick)
        vp.world_dragged.connect(self._on_world_pick)
        vp.frame_painted.connect(self._on_frame)
        self._fps_frames = 0
        self._fps_t0 = time.perf_counter()

    # ---- settings --------------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        """The saved dock layout, unless --reset-layout asked for the default or the saved one is unusable."""
        state = self.settings.value("window/state")
        if not self.ignore_saved_layout and isinstance(state, (QByteArray, bytes)):
            if not self.restoreState(state, SETTINGS_VERSION) or not self._layout_usable():
                self.apply_default_layout()
        self._rebuild_recent()

    def _layout_usable(self) -> bool:
        """A restored layout is usable when the toolbar and at least one dock are shown (not hidden explicitly)."""
        return not self.toolbar.isHidden() and any(not d.isHidden() for d in self.docks)

    def apply_default_layout(self) -> None:
        """Every dock docked, shown and in its default tab; the toolbar shown; columns sized so the viewport is the
        largest thing on screen. Built step by step, never from a saveState() snapshot: one taken while the docks
        were still being shown recorded them all as hidden (the old Reset layout that hid everything)."""
        L, R = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        for area, names in ((L, LEFT_DOCKS), (R, RIGHT_DOCKS)):
            docks = [getattr(self, n) for n in names]
            for d in docks:
                d.setFloating(False)
                self.addDockWidget(area, d)
                d.show()
            for d in docks[1:]:
                self.tabifyDockWidget(docks[0], d)
            docks[0].raise_()
        self.toolbar.show()
        self.menuBar().show()
        self._size_dock_columns()
        QTimer.singleShot(0, self._size_dock_columns)  # again once the docks are shown (sizes apply to shown docks)

    def _size_dock_columns(self) -> None:
        w = int(np.clip(DOCK_WIDTH_FRACTION * self.width(), DOCK_MIN_WIDTH, DOCK_MAX_WIDTH))
        self.resizeDocks([getattr(self, LEFT_DOCKS[0]), getattr(self, RIGHT_DOCKS[0])], [w, w],
                         Qt.Orientation.Horizontal)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(SETTINGS_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        """View ▸ Reset layout (and --reset-layout before the docks exist): the default layout, always complete."""
        if not self.docks_ready:  # start-up: do not build the docks early, just skip the saved layout
            self.ignore_saved_layout = True
            return
        self.apply_default_layout()

    def recent(self, kind: str) -> list[str]:
        v = self.settings.value(f"recent/{kind}", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def _add_recent(self, kind: str, item: str) -> None:
        items = [item] + [x for x in self.recent(kind) if x != item]
        self.settings.setValue(f"recent/{kind}", items[:RECENT_MAX])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent("checkpoints"):
            self.recent_menu.addAction(f"Checkpoint: {path}", lambda p=path: self.open_checkpoint(p))
        for ds in self.recent("datasets"):
            self.recent_menu.addAction(f"Dataset: {ds}", lambda d=ds: self.open_dataset(d))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def after_show(self) -> None:
        """Slow things deferred until the window is on screen: dataset listing, torch, device detection."""
        self._finish_setup()
        self.data_dock.refresh()
        try:
            from mage_core.data.store import list_datasets

            self.train_dock.refresh_datasets([r["id"] for r in list_datasets()])
        except Exception:
            pass
        self.train_dock.detect_devices()

    def closeEvent(self, event) -> None:
        if self.docks_ready:
            self.save_settings()
            self.run_dock.set_playing(False)
            for proc in (self.train_dock.proc, self.data_dock.proc, self.run_dock.eval_proc):
                if proc.is_running():
                    proc.kill()
                    proc.proc.waitForFinished(2000)
        self.viewport.shutdown()
        self.session.shutdown()
        self.gc.stop()
        super().closeEvent(event)

    # ---- errors / status -------------------------------------------------------------------------------------
    def report_error(self, title: str, message: str) -> None:
        """A clear, non-blocking dialog plus a status-bar line; the window keeps working."""
        message = as_sentence(message)
        self.errors.append(f"{title}: {message}")
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        self.last_dialog = show_error(self, title, message)

    def _on_notify(self, level: str, text: str) -> None:
        if level == "error":
            self.errors.append(text)
        self.statusBar().showMessage(text, 8000 if level != "info" else 4000)

    def set_device_label(self, device: str) -> None:
        self.lbl_device.setText(f"device: {device}")

    # ---- task / dataset / checkpoint -------------------------------------------------------------------------
    def set_task_by_name(self, name: str) -> None:
        try:
            task = get_task(name)
        except MageError as exc:
            self.report_error("Unknown task", str(exc))
            return
        self._drop_planner_unless(name)
        self.session.dataset = self.session.dataset if (self.session.dataset and self.session.dataset.task.name == name) else None
        self.session.set_task(task)

    def _drop_planner_unless(self, task_name: str) -> None:
        """Close a loaded checkpoint that was trained for another task than `task_name`, saying so."""
        planner = self.session.planner
        if planner is not None and getattr(planner, "task", None) is not None and planner.task.name != task_name:
            self.statusBar().showMessage(f"The loaded checkpoint is for {planner.task.name}; showing {task_name} "
                                         f"without it", 6000)
            self.session.close_planner()
            self.lbl_model.setText("model: none")
            self.setWindowTitle("MAGE Studio")
            if self.docks_ready:  # nothing may keep showing the closed checkpoint's plan
                self.run_dock.reset()
                self.plan_dock.show_plan(None)

    def open_dataset_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a Minari dataset folder")
        if path:
            self.open_dataset(path)

    def open_dataset(self, id_or_path: str) -> None:
        self.statusBar().showMessage(f"Loading dataset {id_or_path}…")

        def job():
            from mage_core.data.store import load_episodes

            task, episodes, meta = load_episodes(id_or_path)
            if not episodes:
                raise MageError(f"dataset {id_or_path} has no episodes")
            info = dict(meta) if isinstance(meta, dict) else {}
            return DatasetView(str(id_or_path), task, episodes, info, episode_rtg0(task, episodes))

        def done(ds: DatasetView):
            self._drop_planner_unless(ds.task.name)
            self.session.set_dataset(ds)
            self._add_recent("datasets", ds.id)

        self.session.worker.submit(job, done, lambda m: self.report_error("Cannot load dataset", m))

    def open_events_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a training events log", "", "JSON lines (*.jsonl *.json);;All files (*)")
        if path:
            self.open_events(path)

    def open_events(self, path: str) -> None:
        try:
            self.train_dock.load_events_file(path)
        except MageError as exc:
            self.report_error("Cannot open training log", str(exc))
            return
        self.train_dock.raise_()

    def open_checkpoint_dialog(self) -> None:
        start = str(Path(self.recent("checkpoints")[0]).parent) if self.recent("checkpoints") else "checkpoints"
        path, _ = QFileDialog.getOpenFileName(self, "Open a MAGE checkpoint", start, "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def open_checkpoint(self, path: str) -> None:
        self.statusBar().showMessage(f"Loading checkpoint {path}…")
        device = self.planner_device

        def job():
            if not Path(path).is_file():
                raise MageError(f"There is no checkpoint file at {path}.")
            try:
                import torch

                from mage_core.planner import Planner
            except ImportError as exc:
                raise MageError(f"this build has no planner engine ({exc})") from None
            torch.set_num_threads(max(1, PLANNER_THREADS))
            planner = Planner.from_checkpoint(path, device=device)
            _warm_up(planner)
            info = None
            try:
                from mage_core.checkpoint import checkpoint_info

                info = checkpoint_info(path)
            except Exception:
                info = None
            return planner, info

        def done(result):
            planner, info = result
            self.load_planner(planner, path, info)

        self.session.worker.submit(job, done, lambda m: self.report_error("Cannot open checkpoint", m))

    def load_planner(self, planner, path: str | None = None, info: dict | None = None) -> None:
        """Install a planner (from a checkpoint or any object with the Planner API)."""
        try:
            self.session.set_planner(planner, path)
        except MageError as exc:
            self.report_error("Cannot use checkpoint", str(exc))
            return
        if info:
            self.checkpoint_dock.show_info(info)
        self._load_dataset_for(planner)
        problems = self.session.compatibility()
        if problems:
            self.statusBar().showMessage("Checkpoint loaded with warnings: " + "; ".join(problems), 10000)
        if path:
            self._add_recent("checkpoints", str(path))

    def _load_dataset_for(self, planner) -> None:
        """A checkpoint for another task than the loaded dataset's: load the data it was trained on (its recorded id,
        else the task's default dataset) when it is local, so the Data and Condition panels describe its task."""
        task = getattr(planner, "task", None)
        ds = self.session.dataset
        if task is None or (ds is not None and ds.task.name == task.name):
            return
        rec = (getattr(planner, "ckpt_meta", None) or {}).get("dataset") or {}
        try:
            from mage_core.data.store import list_datasets

            local = {r["id"]: r for r in list_datasets()}
        except Exception:  # noqa: BLE001 - no store: nothing to load
            local = {}
        for cand in (rec.get("id"), getattr(task, "dataset_id", None)):
            if cand and cand in local and local[cand].get("task") in (None, task.name):
                self.open_dataset(cand)
                return
        self.statusBar().showMessage(f"No local dataset for {task.name}: generate one in the Data panel to see its "
                                     f"summary and replay episodes.", 10000)

    def _on_planner(self, planner) -> None:
        name = Path(self.session.planner_path).name if self.session.planner_path else "in-memory"
        self.setWindowTitle(f"MAGE Studio — {name}")
        self.lbl_model.setText(f"model: {name} · K={len(planner.scales)} · H={planner.horizon}")
        self.statusBar().showMessage(f"Checkpoint {name} loaded", 4000)

    # ---- condition / plan / overlay --------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        self.viewport.tool = tool
        acts = {"navigate": self.act_tool_nav, "start": self.act_tool_start, "goal": self.act_tool_goal}
        acts[tool].setChecked(True)
        btn = {"navigate": "btn_nav", "start": "btn_start", "goal": "btn_goal"}[tool]
        if hasattr(self, "condition_dock"):
            getattr(self.condition_dock, btn).setChecked(True)
        self.viewport.setCursor(Qt.CursorShape.CrossCursor if tool != "navigate" else Qt.CursorShape.OpenHandCursor)

    def _on_world_pick(self, tool: str, xy) -> None:
        self.view_mode = "condition"
        if tool == "start":
            self.session.set_start(xy)
        elif tool == "goal":
            self.session.set_goal(xy)

    def nudge_rtg(self, frac: float) -> None:
        lo, hi = self.session.rtg_range()
        self.session.set_rtg(float(np.clip(self.session.rtg + frac * (hi - lo), lo, hi)))

    def _on_task(self, task) -> None:
        self.view_mode = "condition"
        self.viewport.set_task(task)
        points = self.session.places_points()
        for a in (self.act_tool_start, self.act_tool_goal):
            a.setEnabled(points)
        if not points and self.viewport.tool != "navigate":
            self.set_tool("navigate")
        self._on_condition()

    def _on_condition(self) -> None:
        s = self.session
        if self.view_mode != "condition":
            return
        vp = self.viewport
        posed = s.task is not None and not s.task.suite.editable(s.task).points  # the suite poses it from a state
        robot_obs = s.state_template if posed else None
        moved = (not (_same(vp.agent_xy, s.start_xy) and _same(vp.goal_xy, s.goal_xy)) or vp.qpos is not None
                 or not _same(vp.obs, robot_obs))
        if not moved and s.planner is not None and s.auto_replan:
            return  # only the RTG changed: the re-plan will redraw; rendering now would only delay it
        vp.agent_xy = s.start_xy
        vp.qpos = None
        vp.obs = robot_obs  # robots: posed from the chosen start state
        vp.goal_xy = s.goal_xy
        self._refresh_overlay()

    def _on_plan(self, plan) -> None:
        if self.view_mode == "replay":
            self.view_mode = "condition"
            self._on_condition()
            return
        if self.view_mode == "condition":
            self.viewport.hud_text = self.condition_hud(plan)
        self._refresh_overlay()

    def condition_hud(self, plan) -> str:
        """The viewport header for a plan from the condition: task, RTG target and the condition actually used."""
        from mage_studio.docks.run import fmt_rtg

        s = self.session
        if plan is None or s.task is None:
            return ""
        cond = (f"RTG target {fmt_rtg(s.rtg)}" if abs(plan.condition_rtg - s.rtg) < 0.5
                else f"RTG target {fmt_rtg(s.rtg)} → condition {fmt_rtg(plan.condition_rtg)} (feasible from here)")
        return f"{s.task.name}   ·   {cond}   ·   plan {s.plan_ms:.0f} ms   ·   {len(plan.scales)} scales"

    def _plan_overlay(self, plan) -> Overlay:
        if plan is None:
            return Overlay()
        ov = plan_overlay(plan.states_KHD, getattr(plan, "scales", None), task=self.session.task)
        ov.ghost_scales = 1  # robots: ghosts for the finest visible scale (refine to scale k), key-point paths for all
        ov.visible = self.plan_dock.visible() or None
        return ov

    def _refresh_overlay(self) -> None:
        s = self.session
        if self.view_mode == "run" and self._run_overlay is not None:
            ov = self._run_overlay
            ov.visible = self.plan_dock.visible() or None
        elif self.view_mode == "replay":
            return
        else:
            ov = self._plan_overlay(s.plan)
            ov.start_xy = s.start_xy
            ov.goal_xy = s.goal_xy
        from PySide6.QtGui import QColor

        vis = ov.visible if ov.visible is not None else [True] * len(ov.plans_xy)
        scales = getattr(s.plan, "scales", None) or (getattr(s.planner, "scales", ()) if s.planner else ())
        self.viewport.legend = legend_rows(tuple(scales), vis, self.render_config.palette) if ov.plans_xy else []
        if ov.plans_xy:
            self.viewport.legend.append(("dots: one per token", QColor(150, 156, 170)))
        hit = getattr(self.plan_dock, "hovered_token", None)
        if self.view_mode == "condition" and hit is not None and hit[0] < len(ov.plans_xy):
            k, i, code, a, b = hit  # the hovered token's time span, drawn over its scale's plan
            ov.path_xy = np.asarray(ov.plans_xy[k])[a: b + 2]
            self.viewport.legend.append((f"scale {k + 1} token {i + 1} (code {code}): steps {a}–{b}",
                                         QColor(255, 255, 255)))
        elif ov.path_xy is not None:
            self.viewport.legend.append(("executed path", QColor(255, 255, 255)))
        compare = self.plan_dock.compare_xy() if self.view_mode == "condition" else None
        self.viewport.compare_xy = compare  # Plan dock: a second RTG target's finest plan, dashed grey on top
        if compare is not None:
            from mage_studio.docks.run import fmt_rtg

            self.viewport.legend.append((f"dashed grey: RTG {fmt_rtg(self.plan_dock.compare_rtg)} (finest)",
                                         QColor(225, 228, 235)))
        self.viewport.set_overlay(ov)

    def show_run_state(self, frame) -> None:
        """Show one closed-loop step (a RunFrame), or None: back to the condition view, its plan and header again."""
        if frame is None:
            self.view_mode = "condition"
            self._run_overlay = None
            s = self.session
            self.viewport.hud_text = self.condition_hud(s.plan)
            self.plan_dock.show_plan(s.plan)  # the token maps and plots follow the viewport back to the condition
            self._on_condition()
            self._refresh_overlay()
            return
        self.view_mode = "run"
        ov = self._plan_overlay(frame.plan)
        task = self.session.task
        if task is not None and task.suite.draws_floor_path(task):  # the agent's xy trail on the floor
            ov.path_xy = frame.path_xy
            ov.start_xy = frame.path_xy[0]
            ov.goal_xy = self.session.goal_xy
            self.viewport.agent_xy = frame.path_xy[-1]
        else:  # robots: posed from the observation, the first key point's path drawn against the plan
            ov.path_xyz = frame.path_xyz
            self.viewport.agent_xy = None
            self.viewport.obs = frame.obs
        self._run_overlay = ov
        self.viewport.hud_text = frame.status().replace(" · ", "   ·   ")
        if frame.plan is not None:
            self.plan_dock.show_plan(frame.plan)
        self._refresh_overlay()

    def show_episode_frame(self, ep, t: int) -> None:
        """Replay a dataset episode: the agent at step t, the path so far, the episode's goal."""
        task = self.session.task
        if task is None:
            return
        self.view_mode = "replay"
        obs = ep.obs_TD
        t = int(np.clip(t, 0, len(obs) - 1))
        if task.suite.draws_floor_path(task):
            path = task.suite.agent_point(task, obs[: t + 1])
            goal = task.suite.goal_point(task, obs[t])
            self.viewport.agent_xy = path[-1]
            self.viewport.goal_xy = goal
            ov = Overlay(path_xy=path if len(path) > 1 else None, start_xy=path[0], goal_xy=goal)
        else:  # robots: posed from the recorded observation (where the suite can), the key-point path so far
            self.viewport.agent_xy = None
            self.viewport.obs = obs[t]
            ov = Overlay()
            names = task.suite.key_point_names(task)
            model = getattr(self.viewport, "scene_model", None)
            if names and model is not None and task.suite.can_pose(task, model, obs.shape[1]) and t > 0:
                ov.path_xyz = task.suite.key_points(task, model, obs[: t + 1])[names[0]]
        self.viewport.hud_text = f"dataset episode · step {t}/{ep.length}"
        from PySide6.QtGui import QColor

        self.viewport.legend = [("dataset episode", QColor(255, 255, 255))]
        self.viewport.set_overlay(ov)

    def show_shortcuts(self) -> None:
        """A non-blocking list of every action with a shortcut."""
        from PySide6.QtWidgets import QMessageBox

        rows = sorted({(a.text().replace("&", ""), a.shortcut().toString()) for a in self.actions()
                       if not a.shortcut().isEmpty()}, key=lambda r: r[0])
        text = "\n".join(f"{k:<14} {name}" for name, k in rows)
        text += "\n\nMouse: left-drag orbits (Orbit tool) or places (Start/Goal tools); right-drag pans; wheel zooms;" \
                "\nCtrl+click places the start, Shift+click the goal; double-click returns to the top-down view."
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setStyleSheet("QLabel { font-family: monospace; }")
        box.open()
        self.last_dialog = box

    # ---- perf / export ---------------------------------------------------------------------------------------
    def _on_frame(self, ms: float) -> None:
        self._fps_frames += 1
        now = time.perf_counter()
        if now - self._fps_t0 >= 1.0:
            fps = self._fps_frames / (now - self._fps_t0)
            self._fps_frames, self._fps_t0 = 0, now
            s = self.session
            plan = f" · plan {s.plan_ms:.1f} ms" if s.plan is not None else ""
            self.lbl_perf.setText(f"render {ms:.0f} ms (≤{1000 / max(ms, 1e-3):.0f} fps){plan}")

    def export_image_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "mage-plan.png", "PNG (*.png)")
        if path:
            self.export_figure(path)

    def export_plan_dialog(self) -> None:
        if self.session.plan is None:
            self.report_error("Nothing to export", "There is no plan yet: open a checkpoint first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export plan", "mage-plan.json", "JSON (*.json)")
        if path:
            self.export_plan(path)

    def figure_caption(self) -> tuple[str, str]:
        """(title, caption) for an exported figure: what is shown and under which condition."""
        from mage_studio.docks.run import fmt_rtg

        s = self.session
        task = s.task.name if s.task is not None else "no task"
        ckpt = Path(s.planner_path).name if s.planner_path else ("in-memory planner" if s.planner else "no checkpoint")
        plan = self._run_overlay_plan() if self.view_mode == "run" else s.plan
        title = f"MAGE plan · {task}" if self.view_mode != "run" else f"MAGE closed loop · {task}"
        parts = [f"checkpoint {ckpt}", f"RTG target {fmt_rtg(s.rtg)}"]
        if plan is not None:
            parts.append(f"condition {fmt_rtg(plan.condition_rtg)}")
            vis = self.plan_dock.visible()
            shown = [str(k + 1) for k, v in enumerate(vis) if v]
            parts.append(f"scales shown {', '.join(shown) or 'none'} of {len(plan.scales)} "
                         f"(refined to scale {self.plan_dock.refine.value()})")
        if self.view_mode == "condition" and self.plan_dock.compare_plan is not None:
            parts.append(f"compared with RTG target {fmt_rtg(self.plan_dock.compare_rtg)} (dashed grey, finest scale)")
        loop = self.run_dock.loop if self.view_mode == "run" else None
        parts.append(f"seed {loop.seed if loop is not None else s.seed}")  # the run's own seed during a run
        if self.view_mode == "run" and self.run_dock.frame is not None:  # the step's own target and condition
            f = self.run_dock.frame
            parts = [parts[0]] + parts[3:] + [f.status()]
        return title, "  ·  ".join(parts)  # compose_figure wraps it to the figure's width

    def _run_overlay_plan(self):
        return self.run_dock.frame.plan if self.run_dock.frame is not None else None

    def export_figure(self, path: str, on_done=None) -> None:
        """Render the view at its full resolution, then save it with legend, title and caption (asynchronous)."""
        from mage_studio.export import compose_figure

        vp = self.viewport
        if vp.task is None:
            self.report_error("Cannot save the figure", "There is no scene to save yet.")
            return
        rid = vp.refresh(budget=10 ** 9)  # one frame at the view's full resolution (the usual one is capped)

        def shot(_ms=None):
            if vp.shown_id < rid:
                return
            vp.frame_painted.disconnect(shot)
            title, caption = self.figure_caption()
            fig = compose_figure(vp.grab().toImage(), title, caption)
            ok = fig.save(str(path))
            vp.refresh(settled=True)
            if ok:
                self.statusBar().showMessage(f"Saved {path} ({fig.width()}×{fig.height()})", 6000)
            else:
                self.report_error("Cannot save the figure", f"Could not write {path}.")
            if on_done is not None:
                on_done(str(path) if ok else None)

        vp.frame_painted.connect(shot)

    def export_plan(self, path: str) -> str | None:
        from mage_studio.export import write_plan_json

        s = self.session
        if s.plan is None:
            return None
        meta = {"task": s.task.name if s.task else None, "checkpoint": s.planner_path, "rtg_target": s.rtg,
                "start_xy": s.start_xy, "goal_xy": s.goal_xy, "seed": s.seed}
        try:
            write_plan_json(path, s.plan, meta)
        except OSError as exc:
            self.report_error("Cannot export the plan", f"Could not write {path}: {exc.strerror}.")
            return None
        self.statusBar().showMessage(f"Exported the plan to {path}", 6000)
        return str(path)


def import_scene_modules() -> None:
    """Import mujoco, gymnasium and gymnasium_robotics on the calling (GUI) thread, before any worker thread runs.

    The render thread builds the first scene while the GUI thread builds the docks; when it was the first to import
    gymnasium_robotics (hundreds of modules, its env registrations) the two threads raced in the import machinery
    and `mage-studio --reset-layout` (which built the docks at once) died with a segmentation fault. Imported here
    first, the render thread only finds them in sys.modules.
    """
    import gymnasium  # noqa: F401
    import mujoco  # noqa: F401

    try:
        from mage_core.suites.base import import_robotics
    except ImportError:  # an engine without suites
        from mage_core.tasks import import_robotics
    import_robotics()


def default_window_size(screen: QSize) -> tuple[int, int]:
    """First-launch window size: most of the screen's available area (1280x800 up to 4K), at least 960x640."""
    w = max(min(int(screen.width() * WINDOW_SCREEN_FRACTION), screen.width()), 960)
    h = max(min(int(screen.height() * WINDOW_SCREEN_FRACTION), screen.height()), 640)
    return w, h


def _warm_up(planner) -> None:
    """One throw-away plan so the first interactive plan is not paying for lazy initialisation."""
    import warnings

    task = getattr(planner, "task", None)
    if task is None or not task.suite.editable(task).points:
        return
    pts = task.suite.default_points(task)
    obs = task.suite.condition_obs(task, pts, planner.obs_dim)
    lo, hi = getattr(planner, "rtg_range", (0.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        planner.plan(obs, 0.5 * (lo + hi), seed=0)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def load_stylesheet() -> str:
    p = Path(__file__).with_name("style.qss")
    return p.read_text() if p.is_file() else ""


TASK_NAMES = tuple(sorted(TASKS))
