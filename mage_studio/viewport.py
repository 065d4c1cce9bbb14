"""The MuJoCo viewport: a render thread producing QImages from mage_core.render, and the widget that paints them."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSize, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from mage_core.render import CameraFrame, CameraPose, Overlay, RenderConfig, orbit_camera, scale_colors, top_down_camera

MAX_RENDER = (1920, 1200)  # cap on the rendered image size; larger widgets scale the image up
PIXEL_BUDGET = 800 * 600  # rendered pixels of a settled frame; bigger viewports render at this budget and scale up
FAST_PIXEL_BUDGET = 640 * 480  # pixels while the scene is changing (drag, re-plan, playback): faster under software GL
SETTLE_MS = 180  # after this long without changes the frame is re-rendered at the full budget


@dataclass
class SceneState:
    """Everything one frame depends on (immutable snapshot handed to the render thread)."""

    pose: CameraPose  # camera
    size: tuple  # (width, height) in pixels
    agent_xy: np.ndarray | None = None  # agent position (maze tasks)
    qpos: np.ndarray | None = None  # full qpos for non-maze tasks
    goal_xy: np.ndarray | None = None  # goal position
    overlay: Overlay | None = None  # plan / path / markers
    request_id: int = 0  # increasing id of the request (the widget knows which state a frame shows)
    obs: np.ndarray | None = None  # a flattened observation the suite poses the robot from (robot suites)


class RenderWorker(QObject):
    """Owns the TaskScene (and its GL context) on the render thread; renders the latest requested state only."""

    frame_ready = Signal(QImage, object, float, int)  # image, CameraFrame, render milliseconds, request id
    failed = Signal(str)  # a one-line message when rendering is impossible
    _kick = Signal()

    def __init__(self, config: RenderConfig):
        super().__init__()
        self.config = config
        self._lock = threading.Lock()
        self._latest: SceneState | None = None
        self._pending = False
        self._task = None
        self._scene = None
        self.model = None  # the scene's MuJoCo model once built
        self._kick.connect(self._render_latest, Qt.ConnectionType.QueuedConnection)

    def request(self, task, state: SceneState) -> None:
        """Thread-safe: remember the newest state and wake the render thread (requests coalesce)."""
        with self._lock:
            self._latest = (task, state)
            kick = not self._pending
            self._pending = True
        if kick:
            self._kick.emit()

    @Slot()
    def _render_latest(self) -> None:
        with self._lock:
            item, self._latest, self._pending = self._latest, None, False
        if item is None:
            return
        task, st = item
        try:
            from mage_core.render import TaskScene

            if self._scene is None or self._task is not task:
                if self._scene is not None:
                    self._scene.close()
                self._scene = None
                self._scene = TaskScene(task, self.config, max_size=MAX_RENDER)
                self._task = task
                self.model = self._scene.model  # read-only use from the UI thread (kinematics on its own MjData)
            t0 = time.perf_counter()
            if st.agent_xy is not None and task.suite.editable(task).points:
                self._scene.set_agent(st.agent_xy)
            elif st.obs is not None:
                self._scene.set_obs(st.obs)
            elif st.qpos is not None:
                self._scene.set_qpos(st.qpos)
            if st.goal_xy is not None:
                self._scene.set_goal(st.goal_xy)
            w = int(np.clip(st.size[0], 16, MAX_RENDER[0]))
            h = int(np.clip(st.size[1], 16, MAX_RENDER[1]))
            rgb = np.ascontiguousarray(self._scene.render(st.pose, st.overlay, (w, h)))  # kept alive until copied
            img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            del rgb
            ms = (time.perf_counter() - t0) * 1000
            self.frame_ready.emit(img, self._scene.last_frame, ms, st.request_id)
        except Exception as exc:  # shown in the viewport, never a dead window
            from mage_studio.qt_util import error_text

            self.failed.emit(error_text(exc))

    @Slot()
    def shutdown(self) -> None:
        if self._scene is not None:
            self._scene.close()
            self._scene = None


class Viewport(QWidget):
    """Paints the render thread's frames; left-drag orbits, right/middle-drag pans, wheel zooms; click tools pick xy."""

    world_clicked = Signal(str, object)  # tool ("start" | "goal"), world xy (np.ndarray (2,)) on press
    world_dragged = Signal(str, object)  # tool, world xy while dragging
    frame_painted = Signal(float)  # render milliseconds of the frame just shown

    def __init__(self, config: RenderConfig | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("viewport")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.task = None
        self.pose = CameraPose()
        self.agent_xy = None
        self.qpos = None
        self.obs = None  # observation the robot is posed from (robot suites)
        self.goal_xy = None
        self.overlay: Overlay | None = None
        self.tool = "navigate"  # "navigate" | "start" | "goal"
        self.legend: list[tuple[str, QColor]] = []  # (label, colour) rows drawn in the corner
        self.hud_text = ""  # one line drawn top-left (e.g. step / reward)
        self.compare_xy: np.ndarray | None = None  # (H, 2) a second plan's finest scale, drawn dashed grey on top
        self.message = ""  # centred message (errors, "no task")
        self.image: QImage | None = None
        self.frame: CameraFrame | None = None
        self.frames_painted = 0
        self.request_id = 0  # id of the latest state sent to the render thread
        self.shown_id = 0  # id of the state in the image on screen
        self._drag = None  # (button, start QPointF, pose at press, tool)
        self._thread = QThread(self)
        self._thread.setObjectName("mage-render")
        self.worker = RenderWorker(config or RenderConfig())
        self.worker.moveToThread(self._thread)
        self.worker.frame_ready.connect(self._on_frame)  # bound slot of a UI-thread QObject: queued to the UI thread
        self.worker.failed.connect(self._on_failed)
        self._thread.finished.connect(self.worker.deleteLater)
        self._thread.start()
        self._top_down = True
        self.camera_preset = "top"  # the preset a new task opens in: "top" (top-down) or "orbit"
        self._closed = False
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.timeout.connect(lambda: self.refresh(settled=True))

    @property
    def scene_model(self):
        """The MuJoCo model of the scene on screen (None until the render thread has built it)."""
        return self.worker.model if self.worker._task is self.task else None

    # ---- scene state ---------------------------------------------------------------------------------------
    def set_task(self, task) -> None:
        self.task = task
        self.overlay = None
        self.agent_xy = None
        self.goal_xy = None
        self.obs = None
        if self.camera_preset == "orbit":  # a new task opens in the camera preset last chosen (menu, V / T, --orbit)
            self.view_orbit()
        else:
            self.view_top_down()

    def view_top_down(self) -> None:
        self.camera_preset = "top"
        if self.task is None:
            return
        self._top_down = True
        self.pose = top_down_camera(self.task, aspect=max(self.width(), 1) / max(self.height(), 1))
        self.refresh()

    def view_orbit(self) -> None:
        self.camera_preset = "orbit"
        if self.task is None:
            return
        self._top_down = False
        self.pose = orbit_camera(self.task)
        self.refresh()

    def set_overlay(self, overlay: Overlay | None) -> None:
        self.overlay = overlay
        self.refresh()

    def render_size(self, budget: int = PIXEL_BUDGET) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        w, h = self.width() * dpr, self.height() * dpr
        scale = min(1.0, (budget / max(w * h, 1)) ** 0.5, MAX_RENDER[0] / max(w, 1), MAX_RENDER[1] / max(h, 1))
        return max(int(w * scale), 16), max(int(h * scale), 16)

    def refresh(self, settled: bool = False, budget: int | None = None) -> int:
        """Ask the render thread for a new frame: a fast one now, a full-resolution one once things settle (or one of
        `budget` pixels, e.g. the view's full resolution for an export). Returns the request id."""
        if self.task is None or self._closed:
            return self.request_id
        size = self.render_size(budget or (PIXEL_BUDGET if settled else FAST_PIXEL_BUDGET))
        if not settled and budget is None:
            if size != self.render_size(PIXEL_BUDGET):
                self._settle.start(SETTLE_MS)
        self.request_id += 1
        st = SceneState(self.pose, size, self.agent_xy, self.qpos, self.goal_xy, self.overlay, self.request_id,
                        obs=self.obs)
        self.worker.request(self.task, st)
        return self.request_id

    def when_shown(self, request_id: int, callback) -> None:
        """Call callback() once, when the frame of request `request_id` (or a later one) is on screen."""
        def check(_ms: float) -> None:
            if self.shown_id >= request_id:
                self.frame_painted.disconnect(check)
                callback()

        self.frame_painted.connect(check)

    def shutdown(self) -> None:
        self._closed = True
        self._settle.stop()
        if self._thread.isRunning():
            from PySide6.QtCore import QMetaObject

            QMetaObject.invokeMethod(self.worker, "shutdown", Qt.ConnectionType.BlockingQueuedConnection)
            self._thread.quit()
            self._thread.wait(3000)

    # ---- frames --------------------------------------------------------------------------------------------
    @Slot(QImage, object, float, int)
    def _on_frame(self, img: QImage, frame: CameraFrame, ms: float, request_id: int) -> None:
        self.image, self.frame = img, frame
        self.shown_id = request_id
        self.message = ""
        self.update()
        self.frames_painted += 1
        self.frame_painted.emit(ms)

    @Slot(str)
    def _on_failed(self, msg: str) -> None:
        self.message = f"Rendering failed: {msg}"
        self.update()

    def _image_rect(self) -> QRectF:
        return QRectF(0, 0, self.width(), self.height())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(22, 26, 34))
        if self.image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(self._image_rect(), self.image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.image is not None:
            self._paint_plan_xray(p)
            self._paint_compare(p)
        hud_right = 0.0
        if self.hud_text:
            hud_right = self._paint_box(p, QPointF(12, 12), wrap_hud(self.hud_text, p.fontMetrics(),
                                                                     self.width() - 48))
        if self.legend:
            self._paint_legend(p, hud_right)
        if self.message or self.image is None:
            p.setPen(QColor(230, 230, 235))
            f = QFont(self.font())
            f.setPointSizeF(f.pointSizeF() * 1.2)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message or "Loading scene…")
        p.end()

    def _paint_plan_xray(self, p: QPainter) -> None:
        """Each visible scale's plan again as a thin dashed line over everything: where a plan runs through a wall
        the scene hides it, and this line still shows it (an infeasible plan stays visible)."""
        ov, fr = self.overlay, self.frame
        if ov is None or fr is None or not ov.plans_xy:
            return
        K = len(ov.plans_xy)
        cols = scale_colors(K, self.worker.config.palette)
        vis = ov.visible if ov.visible is not None else [True] * K
        r = self._image_rect()
        sx, sy = r.width() / fr.width, r.height() / fr.height
        for k in range(K):
            xy = np.asarray(ov.plans_xy[k], dtype=float)
            if (k < len(vis) and not vis[k]) or xy.ndim != 2 or len(xy) < 2:
                continue
            pts = _project_all(fr, np.c_[xy[:, :2], np.full(len(xy), XRAY_Z)])
            c = QColor.fromRgbF(*[float(v) for v in cols[k]])
            c.setAlpha(170)
            pen = QPen(c, 1.4, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawPolyline([QPointF(r.x() + u * sx, r.y() + v * sy) for u, v in pts])

    def _paint_compare(self, p: QPainter) -> None:
        """The compared plan (Plan dock: Compare with RTG) as a light grey dashed line over the scene and the plans."""
        fr, xy = self.frame, self.compare_xy
        if fr is None or xy is None or len(xy) < 2:
            return
        r = self._image_rect()
        sx, sy = r.width() / fr.width, r.height() / fr.height
        xy = np.asarray(xy, dtype=float)
        pts = _project_all(fr, np.c_[xy[:, :2], np.full(len(xy), XRAY_Z)])
        poly = [QPointF(r.x() + u * sx, r.y() + v * sy) for u, v in pts]
        p.setPen(QPen(QColor(15, 18, 25, 200), 4.5))  # a dark halo keeps it readable over light floors
        p.drawPolyline(poly)
        p.setPen(QPen(QColor(225, 228, 235, 235), 2.4, Qt.PenStyle.DashLine))
        p.drawPolyline(poly)
        p.setBrush(QColor(225, 228, 235, 235))
        p.drawEllipse(poly[-1], 4.0, 4.0)  # where the compared plan ends

    def _paint_box(self, p: QPainter, at: QPointF, lines: list[str]) -> float:
        """A translucent text box at `at`; returns its right edge (where the legend must not start)."""
        fm = p.fontMetrics()
        w = max(fm.horizontalAdvance(s) for s in lines) + 20
        h = fm.height() * len(lines) + 12
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(15, 18, 25, 190))
        p.drawRoundedRect(QRectF(at.x(), at.y(), w, h), 6, 6)
        p.setPen(QColor(235, 238, 245))
        for i, s in enumerate(lines):
            p.drawText(QPointF(at.x() + 10, at.y() + 6 + fm.ascent() + i * fm.height()), s)
        self._hud_box = QRectF(at.x(), at.y(), w, h)
        return at.x() + w

    def _paint_legend(self, p: QPainter, hud_right: float = 0.0) -> None:
        fm = p.fontMetrics()
        rows = self.legend
        w = max(fm.horizontalAdvance(s) for s, _ in rows) + 44
        h = fm.height() * len(rows) + 14
        x0, y0 = self.width() - w - 12, 12
        if hud_right > x0 - 8:  # a long HUD line reaches the legend's corner: put the legend under it
            y0 = self._hud_box.bottom() + 8
        self._legend_box = QRectF(x0, y0, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(15, 18, 25, 190))
        p.drawRoundedRect(QRectF(x0, y0, w, h), 6, 6)
        for i, (label, color) in enumerate(rows):
            y = y0 + 7 + i * fm.height()
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(x0 + 10, y + fm.height() / 2), QPointF(x0 + 28, y + fm.height() / 2))
            p.setPen(QColor(235, 238, 245))
            p.drawText(QPointF(x0 + 34, y + fm.ascent()), label)

    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def resizeEvent(self, event) -> None:
        if self._top_down and self.task is not None:
            self.pose = top_down_camera(self.task, aspect=max(self.width(), 1) / max(self.height(), 1))
        self.refresh()
        super().resizeEvent(event)

    # ---- mouse ---------------------------------------------------------------------------------------------
    def widget_to_world(self, pos: QPointF) -> np.ndarray | None:
        """World xy on the floor under a widget position, through the last frame's camera."""
        if self.frame is None:
            return None
        r = self._image_rect()
        u = (pos.x() - r.x()) / r.width() * self.frame.width
        v = (pos.y() - r.y()) / r.height() * self.frame.height
        return self.frame.unproject(u, v, 0.0)

    def world_to_widget(self, xy) -> QPointF | None:
        if self.frame is None:
            return None
        u, v = self.frame.project([xy[0], xy[1], 0.0])
        r = self._image_rect()
        return QPointF(r.x() + u / self.frame.width * r.width(), r.y() + v / self.frame.height * r.height())

    def _tool_for(self, event) -> str:
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            return "start"
        if mods & Qt.KeyboardModifier.ShiftModifier:
            return "goal"
        return self.tool

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        tool = self._tool_for(event) if event.button() == Qt.MouseButton.LeftButton else "navigate"
        self._drag = (event.button(), pos, self.pose, tool)
        if tool in ("start", "goal"):
            xy = self.widget_to_world(pos)
            if xy is not None:
                self.world_clicked.emit(tool, xy)

    def mouseMoveEvent(self, event) -> None:
        if self._drag is None:
            return
        button, p0, pose0, tool = self._drag
        pos = event.position()
        if tool in ("start", "goal"):
            xy = self.widget_to_world(pos)
            if xy is not None:
                self.world_dragged.emit(tool, xy)
            return
        dx, dy = pos.x() - p0.x(), pos.y() - p0.y()
        if button == Qt.MouseButton.LeftButton:
            self._top_down = False
            self.pose = pose0.orbit(-dx * 0.4, -dy * 0.3)
        else:
            scale = 1.0 / max(self.height(), 1)
            self.pose = pose0.pan(-dx * scale, dy * scale)
        self.refresh()

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        self.pose = self.pose.zoom(0.9 ** steps)
        self._top_down = False
        self.refresh()

    def mouseDoubleClickEvent(self, event) -> None:
        if self._tool_for(event) == "navigate":
            self.view_top_down()


XRAY_Z = 0.06  # height (world units) at which the dashed see-through plan lines are projected (the overlay's)


def _project_all(fr: CameraFrame, P_N3: np.ndarray) -> np.ndarray:
    """CameraFrame.project for N points at once: (N, 2) pixels (u right, v down)."""
    right = np.cross(fr.forward, fr.up)
    rel = P_N3 - fr.pos
    depth = np.maximum(rel @ fr.forward, 1e-9)
    x = (rel @ right) * fr.frustum_near / depth
    y = (rel @ fr.up) * fr.frustum_near / depth
    half_w = 0.5 * fr.width / fr.height * (fr.frustum_top - fr.frustum_bottom)
    u = ((x - fr.frustum_center) / half_w + 1) * fr.width / 2
    v = (1 - (y - fr.frustum_bottom) / (fr.frustum_top - fr.frustum_bottom)) * fr.height
    return np.stack([u, v], axis=1)


def wrap_hud(text: str, fm, max_w: float) -> list[str]:
    """The header's "a   ·   b   ·   c" parts packed into lines no wider than max_w (never cut mid-word)."""
    parts = [x for x in text.split("   ·   ") if x]
    lines: list[str] = []
    for part in parts:
        if lines and fm.horizontalAdvance(lines[-1] + "   ·   " + part) <= max_w:
            lines[-1] += "   ·   " + part
        else:
            lines.append(part)
    return lines or [text]


def legend_rows(scales: tuple, visible: list[bool], palette: str = "mage") -> list[tuple[str, QColor]]:
    """Legend entries 'scale k (p_k tokens)' in the per-scale colours, visible scales only."""
    cols = scale_colors(len(scales), palette)
    rows = [(f"scale {k + 1}  ·  {p} token{'s' if p != 1 else ''}", QColor.fromRgbF(*cols[k]))
            for k, p in enumerate(scales) if k < len(visible) and visible[k]]
    return rows
