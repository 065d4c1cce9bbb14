"""The studio's main window: the MuJoCo viewport in the centre, docks around it, menus, shortcuts, status bar, settings.

It lays the studio out and wires it: the StudioState (mage_studio.state) holds what every view shows, the
StudioController (controller) plans and loads, the OverlayComposer (overlays) draws the state in the viewport, the
Exporter (export) saves figures and plans, setup_menus (menus) builds the menus and toolbar; the docks get the state
and an Actions object, never this window.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QPoint, QSettings, QSize, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QTabWidget

from mage_core.errors import MageError
from mage_core.render import RenderConfig
from mage_core.tasks import TASKS, get_task
from mage_studio.actions import Actions
from mage_studio.controller import StudioController
from mage_studio.docks.base import configure_pyqtgraph
from mage_studio.export import Exporter
from mage_studio.menus import setup_menus
from mage_studio.overlays import OverlayComposer
from mage_studio.qt_util import MainThreadGC, as_sentence, show_error
from mage_studio.state import StudioState
from mage_studio.viewport import Viewport

RECENT_MAX = 8  # entries kept in the recent-files menus
DOCKS_FALLBACK_MS = 3000  # build the docks after this long even if no frame has been rendered yet
DOCK_MIN_WIDTH = 300  # minimum width of every dock (fits its controls at 1280x800)
DOCK_WIDTH_FRACTION = 0.23  # default width of each dock column as a fraction of the window width ...
DOCK_MAX_WIDTH = 480  # ... but never wider than this (4K: the viewport gets the rest)
WINDOW_SCREEN_FRACTION = 0.92  # first-launch window size as a fraction of the screen's available area
SETTINGS_VERSION = 2  # bump when the dock layout changes incompatibly (2: tabbed columns)
# The default layout: two tabbed dock columns around the viewport; the first dock of each column is raised.
LEFT_DOCKS = ("condition_dock", "data_dock", "checkpoint_dock")
RIGHT_DOCKS = ("plan_dock", "run_dock", "train_dock")
TOOL_CURSORS = {"navigate": Qt.CursorShape.OpenHandCursor, "start": Qt.CursorShape.CrossCursor,
                "goal": Qt.CursorShape.CrossCursor}  # the viewport's cursor for each scene tool


class MainWindow(QMainWindow):
    """MAGE Studio: dataset → checkpoint → condition → plan → run, and training in the background."""

    def __init__(self, settings: QSettings | None = None, render_config: RenderConfig | None = None,
                 initial_task: str = "pointmaze-umaze", planner_device: str = "cpu"):
        super().__init__()
        self.setWindowTitle("MAGE Studio")
        self.setObjectName("mageStudio")
        self.settings = settings or QSettings("MAGE", "MAGE Studio")
        self.render_config = render_config or RenderConfig()
        self.errors: list[str] = []  # every error shown (tests and the status bar read it)
        self.last_dialog = None
        self.docks_ready = False  # the docks are built on the first event-loop turn, after the window is up
        self.gc = MainThreadGC(self)  # Python's GC runs on this thread only (see MainThreadGC)
        self.state = StudioState()
        self.controller = StudioController(self.state, self.report_error, self.show_status, planner_device, self)
        import_scene_modules()  # before the render thread starts: it must never import them while we build widgets
        self.viewport = Viewport(self.render_config)
        self.setCentralWidget(self.viewport)
        if initial_task in TASKS:  # start building the scene on the render thread while the docks are made
            self.viewport.set_task(get_task(initial_task))
        self.overlays = OverlayComposer(self.state, self.viewport, self.render_config.palette)
        self.exporter = Exporter(self.state, self.viewport, self.report_error, self.show_status)
        self.dock_actions = Actions(
            show_task=self.controller.show_task, open_dataset=self.controller.open_dataset,
            open_dataset_dialog=self.open_dataset_dialog, open_checkpoint=self.controller.open_checkpoint,
            open_checkpoint_dialog=self.open_checkpoint_dialog, run_in_background=self.controller.run_in_background,
            show_episode_step=self.overlays.show_episode_step, grab_view=self._grab_view,
            report_error=self.report_error, show_status=self.show_status, show_device=self._show_device,
            when_view_shown=self._when_view_shown)
        self._initial_task = initial_task
        self._build_status_bar()
        self.statusBar().showMessage("Loading panels…")
        self.ignore_saved_layout = False  # --reset-layout: start from the default layout, not the saved one
        geo = self.settings.value("window/geometry")
        if not (isinstance(geo, (QByteArray, bytes)) and self.restoreGeometry(geo)):
            self.resize(*default_window_size(self.screen().availableGeometry().size()))
        self._instance_lock, slot = claim_instance_slot()
        if slot:  # a second (third, ...) studio opens down and to the right of the first, never exactly on top of it
            self.move(self.pos() + QPoint(INSTANCE_OFFSET_PX * slot, INSTANCE_OFFSET_PX * slot))
        self.ask_close = self._ask_close  # (jobs) -> whether to stop them and close (tests answer for the user)
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

        state, act = self.state, self.dock_actions
        self.data_dock = DataDock(state, act, self)
        self.checkpoint_dock = CheckpointDock(state, act, self)
        self.condition_dock = ConditionDock(state, act, self)
        self.plan_dock = PlanDock(state, act, self.render_config.palette, self)
        self.run_dock = RunDock(state, act, self)
        self.train_dock = TrainDock(state, act, self)
        self.docks = [getattr(self, n) for n in LEFT_DOCKS + RIGHT_DOCKS]
        for d in self.docks:
            d.setMinimumWidth(DOCK_MIN_WIDTH)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)

        setup_menus(self)
        self.apply_default_layout()
        self._wire()
        self.controller.dataset_pending = self.data_dock.proc.is_running  # "being generated", not "generate one"
        self.controller.show_task(self._initial_task)
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

    def _wire(self) -> None:
        """Subscribe the window and the viewport's composer to the state (after the docks, which subscribe as they
        are built: a dock sees each change before the view moves on)."""
        ev = self.state.events
        ev.task.connect(self._on_task)
        ev.planner.connect(self._on_planner)
        ev.dataset.connect(lambda ds: self._add_recent("datasets", ds.id))
        ev.notify.connect(self._on_notify)
        ev.tool.connect(self._on_tool)
        self.overlays.connect()
        vp = self.viewport
        vp.world_clicked.connect(self.overlays.pick)
        vp.world_dragged.connect(self.overlays.pick)
        vp.frame_painted.connect(self._on_frame)
        self._fps_frames = 0
        self._fps_t0 = time.perf_counter()
        self._on_tool(self.state.tool)

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
        are still being shown records them all as hidden."""
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
            self.recent_menu.addAction(f"Checkpoint: {path}", lambda p=path: self.controller.open_checkpoint(p))
        for ds in self.recent("datasets"):
            self.recent_menu.addAction(f"Dataset: {ds}", lambda d=ds: self.controller.open_dataset(d))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def after_show(self) -> None:
        """Slow things deferred until the window is on screen: dataset listing, torch, device detection."""
        self._finish_setup()
        self.data_dock.refresh()
        try:
            from mage_core.data.store import list_datasets

            self.train_dock.refresh_datasets([r["id"] for r in list_datasets()])
        except Exception:  # noqa: BLE001 - no dataset store yet: the Train dock's list stays empty
            pass
        self.train_dock.detect_devices()

    def running_jobs(self) -> list[str]:
        """What closing the window would stop: the background processes running now, in words."""
        if not self.docks_ready:
            return []
        named = ((self.train_dock.proc, "a training run"), (self.data_dock.proc, "a dataset generation"),
                 (self.run_dock.eval_proc, "an evaluation"))
        return [name for proc, name in named if proc.is_running()]

    def _ask_close(self, jobs: list[str]) -> bool:
        from PySide6.QtWidgets import QMessageBox

        what = " and ".join(jobs)
        answer = QMessageBox.question(
            self, "Stop and close?", f"{what[0].upper()}{what[1:]} {'is' if len(jobs) == 1 else 'are'} still running. "
            "Closing the studio stops it (a stopped training run resumes from its last checkpoint with Resume). "
            "Close anyway?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        jobs = self.running_jobs()
        if jobs and not self.ask_close(jobs):
            event.ignore()  # the user keeps the window (and the jobs) running
            return
        if self._instance_lock is not None:
            self._instance_lock.unlock()
        if self.docks_ready:
            self.save_settings()
            self.run_dock.set_playing(False)
            for proc in (self.train_dock.proc, self.data_dock.proc, self.run_dock.eval_proc):
                if proc.is_running():
                    proc.kill()
                    proc.proc.waitForFinished(2000)
        self.viewport.shutdown()
        self.controller.shutdown()
        self.gc.stop()
        super().closeEvent(event)

    # ---- errors / status -------------------------------------------------------------------------------------
    def report_error(self, title: str, message: str) -> None:
        """A clear, non-blocking dialog plus a status-bar line; the window keeps working."""
        message = as_sentence(message)
        self.errors.append(f"{title}: {message}")
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        self.last_dialog = show_error(self, title, message)

    def show_status(self, text: str, ms: int = 0) -> None:
        """A status-bar line for `ms` milliseconds (0: until the next one)."""
        self.statusBar().showMessage(text, ms)

    def _on_notify(self, level: str, text: str) -> None:
        if level == "error":
            self.errors.append(text)
        self.statusBar().showMessage(text, 8000 if level != "info" else 4000)

    def _show_device(self, device: str) -> None:
        self.lbl_device.setText(f"device: {device}")

    def _when_view_shown(self, callback) -> None:
        """callback() once the viewport has painted every state asked of it so far (on the next turn when it has)."""
        vp = self.viewport
        if vp.painted_id >= vp.request_id:
            QTimer.singleShot(0, callback)
        else:
            vp.when_shown(vp.request_id, callback)

    def _grab_view(self, callback) -> None:
        """callback(QImage) once the viewport shows every state asked of it so far."""
        vp = self.viewport
        vp.when_shown(vp.request_id, lambda: callback(vp.grab().toImage()))

    # ---- state -> window -------------------------------------------------------------------------------------
    def _on_task(self, _task) -> None:
        points = self.state.places_points()  # suites without placed points (robots) have no start/goal tools
        for a in (self.act_tool_start, self.act_tool_goal):
            a.setEnabled(points)
        if not points and self.state.tool != "navigate":
            self.state.tool = "navigate"

    def _on_tool(self, tool: str) -> None:
        self.viewport.tool = tool
        {"navigate": self.act_tool_nav, "start": self.act_tool_start, "goal": self.act_tool_goal}[tool].setChecked(True)
        self.viewport.setCursor(TOOL_CURSORS[tool])

    def _on_planner(self, planner) -> None:
        if planner is None:
            self.lbl_model.setText("model: none")
            self.setWindowTitle("MAGE Studio")
            return
        path = self.state.planner_path
        name = Path(path).name if path else "in-memory"
        self.setWindowTitle(f"MAGE Studio — {name}")
        self.lbl_model.setText(f"model: {name} · K={len(planner.scales)} · H={planner.horizon}")
        self.statusBar().showMessage(f"Checkpoint {name} loaded", 4000)
        if path:
            self._add_recent("checkpoints", str(path))

    def _on_frame(self, ms: float) -> None:
        self._fps_frames += 1
        now = time.perf_counter()
        if now - self._fps_t0 >= 1.0:
            fps = self._fps_frames / (now - self._fps_t0)
            self._fps_frames, self._fps_t0 = 0, now
            s = self.state
            plan = f" · plan {s.plan_ms:.1f} ms" if s.plan is not None else ""
            self.lbl_perf.setText(f"render {ms:.0f} ms (≤{1000 / max(ms, 1e-3):.0f} fps){plan}")

    # ---- dialogs ---------------------------------------------------------------------------------------------
    def open_dataset_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a Minari dataset folder")
        if path:
            self.controller.open_dataset(path)

    def open_checkpoint_dialog(self) -> None:
        start = str(Path(self.recent("checkpoints")[0]).parent) if self.recent("checkpoints") else "checkpoints"
        path, _ = QFileDialog.getOpenFileName(self, "Open a MAGE checkpoint", start,
                                              "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.controller.open_checkpoint(path)

    def open_events_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a training events log", "",
                                              "JSON lines (*.jsonl *.json);;All files (*)")
        if path:
            self.open_events(path)

    def open_events(self, path: str) -> None:
        """Plot a past training run from its events file in the Train dock."""
        try:
            self.train_dock.load_events_file(path)
        except MageError as exc:
            self.report_error("Cannot open training log", str(exc))
            return
        self.train_dock.raise_()

    def export_image_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "mage-plan.png", "PNG (*.png)")
        if path:
            self.exporter.export_figure(path)

    def export_plan_dialog(self) -> None:
        if self.state.plan is None:
            self.report_error("Nothing to export", "There is no plan yet: open a checkpoint first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export plan", "mage-plan.json", "JSON (*.json)")
        if path:
            self.exporter.export_plan(path)


def import_scene_modules() -> None:
    """Import mujoco, gymnasium and gymnasium_robotics on the calling (GUI) thread, before any worker thread runs.

    The render thread builds the first scene while the GUI thread builds the docks; a render thread that is the first
    to import gymnasium_robotics (hundreds of modules, its env registrations) races the GUI thread in the import
    machinery and can crash the process. Imported here first, the render thread only finds them in sys.modules.
    """
    import gymnasium  # noqa: F401
    import mujoco  # noqa: F401

    from mage_core.suites.base import import_robotics

    import_robotics()


INSTANCE_SLOTS = 8  # studios running at once that each get their own window offset
INSTANCE_OFFSET_PX = 40  # how far each further studio's window opens down and to the right


def claim_instance_slot() -> tuple:
    """(lock, slot): the lowest free slot among the studios running now (0: the first), held by a lock file in the
    temp folder until the window closes (a crashed studio's stale lock is taken over after a while); (None, 0) when
    none is free."""
    from PySide6.QtCore import QDir, QLockFile

    for slot in range(INSTANCE_SLOTS):
        lock = QLockFile(QDir(QDir.tempPath()).filePath(f"mage-studio-window-{slot}.lock"))
        if lock.tryLock(0):
            return lock, slot
    return None, 0


def default_window_size(screen: QSize) -> tuple[int, int]:
    """First-launch window size: most of the screen's available area (1280x800 up to 4K), at least 960x640."""
    w = max(min(int(screen.width() * WINDOW_SCREEN_FRACTION), screen.width()), 960)
    h = max(min(int(screen.height() * WINDOW_SCREEN_FRACTION), screen.height()), 640)
    return w, h


def load_stylesheet() -> str:
    p = Path(__file__).with_name("style.qss")
    return p.read_text() if p.is_file() else ""
