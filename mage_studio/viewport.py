"""The MuJoCo viewport: a render thread producing QImages from mage_core.render, and the widget that paints them.

Over 500 lines on purpose: what the widget paints over the image (x-ray plan lines, robots' key-point paths, the
alternatives, the compared plan, header and legend) maps through the same camera frame as its clicks and drags.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from functools import partial

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
    fast: bool = False  # the live look (TaskScene.render(fast=True)) for a frame of a changing scene
    still_size: tuple | None = None  # a fast request's size at the still budget: where only the plan's ghosts changed
    # since the last still frame (same camera, pose and markers), its full-quality frame at this size is drawn instead
    # (the scene's cached base layer plus the new ghosts, faster than the live look)
    keep_base: bool = False  # a still frame of the live view: a robot plan's frame is drawn in layers and its base
    # layer kept for the next plan (exports are drawn in one pass)


def _clip_size(size) -> tuple[int, int]:
    return int(np.clip(size[0], 16, MAX_RENDER[0])), int(np.clip(size[1], 16, MAX_RENDER[1]))


class RenderWorker(QObject):
    """Owns the TaskScene (and its GL context) on the render thread; renders the latest requested state only."""

    frame_ready = Signal(QImage, object, float, int, object, bool)  # image, CameraFrame, render ms, request id,
    # key-point paths, whether it is a fast (live-look) frame
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
        self._posed_obs = None  # the observation array the scene was last posed from (the viewport replaces, never
        # mutates, the arrays it hands over)
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
                self._posed_obs = None
                self.model = self._scene.model  # read-only use from the UI thread (kinematics on its own MjData)
            t0 = time.perf_counter()
            if st.agent_xy is not None and task.suite.editable(task).points:
                self._scene.set_agent(st.agent_xy)
            elif st.obs is not None and st.obs is not self._posed_obs:  # (a new plan under the same pose: skipped)
                self._scene.set_obs(st.obs)
                self._posed_obs = st.obs
            elif st.qpos is not None:
                self._scene.set_qpos(st.qpos)
            if st.goal_xy is not None:
                self._scene.set_goal(st.goal_xy)
            w, h = _clip_size(st.size)
            fast, layered = st.fast, False
            if st.fast and st.still_size is not None and self._scene.layer_cached(st.pose, st.overlay,
                                                                                  _clip_size(st.still_size)):
                (w, h), fast, layered = _clip_size(st.still_size), False, True
            elif st.keep_base:  # the scene layers a plan drawn only as ghosts, and draws any other in one pass
                layered = True
            rgb = np.ascontiguousarray(self._scene.render(st.pose, st.overlay, (w, h), fast=fast, layered=layered))  # kept alive
            # until converted (a copy): 32-bit pixels, which the widget scales to the screen twice as fast as 24-bit
            img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
            del rgb
            ms = (time.perf_counter() - t0) * 1000
            self.frame_ready.emit(img, self._scene.last_frame, ms, st.request_id, self._scene.last_paths_xyz, st.fast)
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
    frame_painted = Signal(float)  # render milliseconds of the frame the widget has just painted (emitted after it)

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
        self.legend: list[tuple] = []  # (label, colour or pen) rows drawn in the corner
        self.legend_rows_reserved = 0  # rows of legend room a top-down maze is fitted beside (reserve_legend)
        self.hud_text = ""  # one line drawn top-left (e.g. step / reward)
        self.compare_xy: np.ndarray | None = None  # (H, 2) a second plan's finest scale, drawn dashed grey on top
        self.alternative_paths: list = []  # per alternative plan, its finest (H, 2) xy or (H, 3) key-point path (faint)
        self.message = ""  # centred message (errors, "no task")
        self.image: QImage | None = None
        self.frame: CameraFrame | None = None
        self.paths_xyz: list = []  # per scale {key point: (H, 3)} of the plan in the image (robots; drawn here)
        self.key_point_names: tuple = ()  # the suite's key points, in the order their pen styles are given
        self.frames_painted = 0
        self.request_id = 0  # id of the latest state sent to the render thread
        self.shown_id = 0  # id of the state in the image on screen
        self.painted_id = 0  # id of the state in the image the last paint drew (the pixels on screen)
        self._frame_ms = 0.0  # render milliseconds of the frame received last
        self.frame_fast = False  # the frame on screen is a fast (live-look) one
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
    def settle_pending(self) -> bool:
        """A full-quality frame is still to be asked for (the scene changed less than SETTLE_MS ago)."""
        return self._settle.isActive()

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
        self.pose = self.top_down_pose()
        self.refresh()

    def view_orbit(self) -> None:
        self.camera_preset = "orbit"
        if self.task is None:
            return
        self._top_down = False
        self.pose = orbit_camera(self.task)
        self.refresh()

    def top_down_pose(self) -> CameraPose:
        """The task's top-down camera for this widget. A maze is fitted beside the legend's corner, never under it:
        into the widget less a strip on the right or less a strip along the top (whichever shows it larger), the
        strip as large as the legend of `legend_rows_reserved` rows."""
        W, H = max(self.width(), 1), max(self.height(), 1)
        pose = top_down_camera(self.task, aspect=W / H)
        if not self.legend_rows_reserved or not self.task.suite.draws_floor_path(self.task):
            return pose
        fm = self.fontMetrics()
        lw = fm.horizontalAdvance(LEGEND_WIDEST) + 44 + 2 * LEGEND_MARGIN
        lh = fm.height() * self.legend_rows_reserved + 14 + 2 * LEGEND_MARGIN
        best = None
        for rw, rh, right in ((W - lw, H, True), (W, H - lh, False)):
            if rw < MIN_FIT_PX or rh < MIN_FIT_PX:
                continue
            p = top_down_camera(self.task, aspect=rw / rh)
            dist = p.distance * H / rh  # the maze fills rh of the image's H rows
            if best is None or dist < best[0]:
                best = (dist, p, right)
        if best is None:
            return pose
        dist, p, right = best
        units_per_px = 2 * dist * np.tan(np.deg2rad(FOVY_DEG) / 2) / H  # at the floor, straight down
        x, y, z = p.lookat
        if right:  # the maze moves left by half the strip: the camera moves right
            x += 0.5 * lw * units_per_px
        else:  # the maze moves down by half the strip: the camera moves up (+y is up on screen)
            y += 0.5 * lh * units_per_px
        return CameraPose((x, y, z), dist, p.azimuth, p.elevation)

    def reserve_legend(self, rows: int) -> None:
        """Keep room for a legend of this many rows beside a top-down maze (0: none); refits the top-down view."""
        if rows != self.legend_rows_reserved:
            self.legend_rows_reserved = int(rows)
            if self._top_down and self.task is not None:
                self.pose = self.top_down_pose()
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
        """Ask the render thread for a new frame: a fast one now (the live look, fewer pixels), a full-quality one at
        the full resolution once things settle (or one of `budget` pixels, e.g. the view's full resolution for an
        export, always full quality). Returns the request id."""
        if self.task is None or self._closed:
            return self.request_id
        fast = not settled and budget is None
        size = self.render_size(budget or (FAST_PIXEL_BUDGET if fast else PIXEL_BUDGET))
        if fast:
            self._settle.start(SETTLE_MS)
        self.request_id += 1
        st = SceneState(self.pose, size, self.agent_xy, self.qpos, self.goal_xy, self.overlay, self.request_id,
                        obs=self.obs, fast=fast, still_size=self.render_size(PIXEL_BUDGET) if fast else None,
                        keep_base=settled and budget is None)
        self.worker.request(self.task, st)
        return self.request_id

    def when_shown(self, request_id: int, callback) -> None:
        """Call callback() once, when the frame of request `request_id` (or a later one) has been painted."""
        def check(_ms: float) -> None:
            if self.painted_id >= request_id:
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
    @Slot(QImage, object, float, int, object, bool)
    def _on_frame(self, img: QImage, frame: CameraFrame, ms: float, request_id: int, paths_xyz: list,
                  fast: bool = False) -> None:
        self.image, self.frame, self.paths_xyz, self.frame_fast = img, frame, paths_xyz, fast
        self.shown_id = request_id
        self.message = ""
        self._frame_ms = ms
        if self.isVisible() and fast:
            self.repaint()  # a live frame (a drag, a new plan) is painted now, not after the queued events
        elif self.isVisible():
            self.update()  # paintEvent reports the frame once its pixels are drawn
        else:  # nothing will paint a hidden widget: the frame counts as shown now
            self._painted()

    def _painted(self) -> None:
        """The frame received last is on screen: count it and tell the listeners (after the paint, never inside it:
        their work must not delay the window's flush)."""
        if self.painted_id >= self.shown_id:
            return
        self.painted_id = self.shown_id
        self.frames_painted += 1
        QTimer.singleShot(0, partial(self.frame_painted.emit, self._frame_ms))

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
        # the live look draws its lines without antialiasing (a re-plan's paint takes a third of the time); the frame
        # that follows once things settle, and every export, draws them smooth
        p.setRenderHint(QPainter.RenderHint.Antialiasing, not self.frame_fast)
        if self.image is not None:
            self._paint_plan_xray(p)
            self._paint_key_paths(p)
            self._paint_alternatives(p)
            self._paint_compare(p)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)  # boxes and legend: few and cheap, always smooth
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
        if self.image is not None:
            self._painted()

    def _paint_plan_xray(self, p: QPainter) -> None:
        """Each visible scale's plan again as a thin dashed line over everything: where a plan runs through a wall
        the scene hides it, and this line still shows it (an infeasible plan stays visible)."""
        ov, fr = self.overlay, self.frame
        if ov is None or fr is None or not ov.plans_xy:
            return
        K = len(ov.plans_xy)
        cols = scale_colors(K, self.worker.config.palette)
        vis = ov.visible if ov.visible is not None else [True] * K
        pens, arrays = [], []
        for k in range(K):
            xy = np.asarray(ov.plans_xy[k], dtype=float)
            if (k < len(vis) and not vis[k]) or xy.ndim != 2 or len(xy) < 2:
                continue
            c = QColor.fromRgbF(*[float(v) for v in cols[k]])
            c.setAlpha(170)
            pens.append(QPen(c, 1.4, Qt.PenStyle.DashLine))
            arrays.append(_at_xray_height(xy))
        for pen, poly in zip(pens, self._polylines(fr, arrays)):
            p.setPen(pen)
            p.drawPolyline(poly)

    def _paint_key_paths(self, p: QPainter) -> None:
        """Robots: each visible scale's key-point paths in its colour, one pen style per key point (KEY_POINT_STYLES,
        named in the legend), and the executed path in white, drawn over the image (no software-GL cost)."""
        ov, fr = self.overlay, self.frame
        if ov is None or fr is None or ov.paths_in_scene:
            return
        paths = self.paths_xyz or []
        cols = scale_colors(len(paths), self.worker.config.palette)
        vis = ov.visible if ov.visible is not None else [True] * len(paths)
        pens, arrays = [], []  # every polyline projected in one go: a re-plan's paint stays a few ms
        for k, named in enumerate(paths):
            if k < len(vis) and not vis[k]:
                continue
            c = QColor.fromRgbF(*[float(v) for v in cols[k]])
            c.setAlpha(235)
            for name, P in named.items():
                if len(P) >= 2:
                    pens.append(QPen(c, 2.4 if k == len(paths) - 1 else 1.6,
                                     key_point_style(self.key_point_names, name)))
                    arrays.append(np.asarray(P, dtype=float))
        run = ov.path_xyz is not None and len(ov.path_xyz) > 1
        if run:
            arrays.append(np.asarray(ov.path_xyz, dtype=float))
        polys = self._polylines(fr, arrays)
        for pen, poly in zip(pens, polys):
            p.setPen(pen)
            p.drawPolyline(poly)
        if run:
            pts = polys[-1]
            p.setPen(QPen(QColor(15, 18, 25, 200), 4.5))  # a dark halo keeps the white path readable
            p.drawPolyline(pts)
            p.setPen(QPen(QColor(255, 255, 255, 240), 2.6))
            p.drawPolyline(pts)

    def _polylines(self, fr: CameraFrame, arrays: list) -> list:
        """(N, 3) world points -> one list of widget QPointF per array, all projected in one call."""
        if not arrays:
            return []
        r = self._image_rect()
        uv = _project_all(fr, np.concatenate(arrays))
        uv = np.c_[r.x() + uv[:, 0] * (r.width() / fr.width), r.y() + uv[:, 1] * (r.height() / fr.height)]
        out, i = [], 0
        for a in arrays:
            out.append([QPointF(u, v) for u, v in uv[i:i + len(a)].tolist()])
            i += len(a)
        return out

    def _paint_alternatives(self, p: QPainter) -> None:
        """The Plan dock's alternatives: each one's finest plan as a faint line, numbered at its end (1 = the most
        likely)."""
        fr = self.frame
        if fr is None or not self.alternative_paths:
            return
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        for i, P in enumerate(self.alternative_paths):
            P = np.asarray(P, dtype=float)
            if P.ndim != 2 or len(P) < 2:
                continue
            poly = self._polylines(fr, [P if P.shape[1] == 3 else _at_xray_height(P)])[0]
            p.setPen(QPen(QColor(15, 18, 25, 110), 4.0))  # a soft halo separates it from the plan's own lines
            p.drawPolyline(poly)
            p.setPen(QPen(ALTERNATIVE_RGBA, 2.0))
            p.drawPolyline(poly)
            end = poly[-1]
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(15, 18, 25, 210))
            p.drawEllipse(end, 8.0, 8.0)
            p.setPen(QColor(240, 242, 248))
            p.drawText(QRectF(end.x() - 8, end.y() - 8, 16, 16), Qt.AlignmentFlag.AlignCenter, str(i + 1))
        p.setFont(self.font())

    def _paint_compare(self, p: QPainter) -> None:
        """The compared plan (Plan dock: Compare with RTG) as a light grey dashed line over the scene and the plans."""
        fr, xy = self.frame, self.compare_xy
        if fr is None or xy is None or len(xy) < 2:
            return
        poly = self._polylines(fr, [_at_xray_height(np.asarray(xy, dtype=float))])[0]
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
        w = max(fm.horizontalAdvance(row[0]) for row in rows) + 44
        h = fm.height() * len(rows) + 14
        x0, y0 = self.width() - w - LEGEND_MARGIN, LEGEND_MARGIN
        if hud_right > x0 - 8:  # a long HUD line reaches the legend's corner: put the legend under it
            y0 = self._hud_box.bottom() + 8
        self._legend_box = QRectF(x0, y0, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(15, 18, 25, 190))
        p.drawRoundedRect(QRectF(x0, y0, w, h), 6, 6)
        for i, (label, color) in enumerate(rows):
            y = y0 + 7 + i * fm.height()
            p.setPen(color if isinstance(color, QPen) else QPen(color, 3))
            p.drawLine(QPointF(x0 + 10, y + fm.height() / 2), QPointF(x0 + 28, y + fm.height() / 2))
            p.setPen(QColor(235, 238, 245))
            p.drawText(QPointF(x0 + 34, y + fm.ascent()), label)

    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def resizeEvent(self, event) -> None:
        if self._top_down and self.task is not None:
            self.pose = self.top_down_pose()
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
ALTERNATIVE_RGBA = QColor(235, 238, 245, 150)  # the faint lines of the Plan dock's alternatives
LEGEND_MARGIN = 12  # pixels between the legend and the widget's edge
LEGEND_WIDEST = "faint, numbered: 8 alternatives at scale 8"  # the widest usual legend row (room kept for it)
MIN_FIT_PX = 120  # a maze is never fitted into fewer pixels than this beside the legend
FOVY_DEG = 45.0  # MuJoCo's default vertical field of view (the free camera's)


def _at_xray_height(xy_N2: np.ndarray) -> np.ndarray:
    """Floor points (N, 2+) lifted to the see-through lines' height: (N, 3)."""
    return np.c_[xy_N2[:, :2], np.full(len(xy_N2), XRAY_Z)]


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


KEY_POINT_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
# pen style of a robot's key-point paths, in the order of the suite's key_point_names (palm, object, target, ...)


def key_point_style(names: tuple, name: str) -> Qt.PenStyle:
    """The pen style of one key point's path (its place in the suite's key_point_names; unknown names: solid)."""
    i = names.index(name) if name in names else 0
    return KEY_POINT_STYLES[i % len(KEY_POINT_STYLES)]


def key_point_legend(names: tuple) -> list[tuple]:
    """Legend rows naming the pen style of each key point's path (light grey: the colour is the scale's)."""
    return [(f"{name} path", QPen(QColor(205, 210, 220), 2, key_point_style(names, name))) for name in names]
