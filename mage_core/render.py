"""Qt-free MuJoCo rendering of a task's scene: offscreen renderer, camera presets, plan/path/marker overlays, PNG export.

One module on purpose (about 770 lines): the scene, its cameras, its overlays (the per-plan cache of a robot's ghost
poses, and the cached base layer a new plan's ghosts are drawn over) and the PNG export share one MuJoCo model lock,
one geom writer and one set of palettes, and the studio and the suites use them together.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace

import numpy as np

from mage_core.errors import MageError
from mage_core.gl import configure_gl

configure_gl()  # MuJoCo reads MUJOCO_GL once, at its first import: choose it first

# Named palettes for per-scale plan colours, listed coarse -> fine (interpolated to K scales).
PALETTES: dict[str, list[tuple[float, float, float]]] = {
    # violet, blue, cyan, green, yellow, orange, red, pink: every pair >= 50 apart in CIELAB (the old rainbow had
    # pairs 33 apart, and scales 4-6 read as one green-yellow); distinct from the slate walls and the white path
    "mage": [(0.60, 0.30, 0.95), (0.20, 0.55, 1.00), (0.00, 0.85, 0.95), (0.20, 0.80, 0.30),
             (1.00, 0.90, 0.20), (1.00, 0.55, 0.00), (1.00, 0.20, 0.30), (1.00, 0.62, 0.88)],
    "viridis": [(0.27, 0.00, 0.33), (0.28, 0.14, 0.46), (0.23, 0.32, 0.55), (0.17, 0.47, 0.56),
                (0.13, 0.57, 0.55), (0.20, 0.72, 0.47), (0.48, 0.82, 0.32), (0.99, 0.91, 0.14)],
}
PATH_RGBA = (1.0, 1.0, 1.0, 0.95)  # executed path colour
GHOST_ALPHA = 0.28  # opacity of the ghost robots posed along a plan
# a translucent geom blends twice where it is seen (its front and its back faces): the ghost layer of a layered frame,
# drawn opaque, blends once with this opacity to look the same
LAYER_GHOST_ALPHA = 1.0 - (1.0 - GHOST_ALPHA) ** 2
GHOSTS_PER_SCALE = 4  # ghost poses drawn per scale, evenly spaced along the plan (the onion skin)
START_RGBA = (0.20, 0.90, 0.45, 0.9)  # start marker colour
GOAL_RGBA = (1.0, 0.30, 0.30, 0.55)  # goal marker colour (translucent: the goal radius)
OVERLAY_Z = 0.05  # height of overlay geoms above the floor (world units)
SCALE_DZ = 0.012  # extra height per scale so finer plans draw on top of coarser ones
MAX_OVERLAY_GEOMS = 4000  # geoms reserved in the scene for overlays (beyond the model's own)
SEGMENTS_PER_TOKEN = 3  # a scale with p tokens is drawn with at most 3 p line segments (robots' key-point paths too)
MIN_SEGMENTS_PER_SCALE = 16  # ... but never fewer than this
MAX_BUFFER = (2560, 1600)  # largest offscreen image (width, height) one scene can render
# Building or tearing down MuJoCo models/envs from several threads at once (render thread, planner worker) is not
# safe with gymnasium-robotics' temp-XML mazes; everything here that does either holds this lock.
MODEL_LOCK = threading.RLock()


def scale_colors(k: int, palette: str = "mage") -> np.ndarray:
    """(k, 3) RGB colours in [0, 1] for k scales, coarse -> fine, from a named palette: k of its colours evenly
    spaced when it has enough (never blends, which look alike), interpolated only beyond its length."""
    if palette not in PALETTES:
        raise MageError(f"unknown palette {palette!r}; known: {', '.join(PALETTES)}")
    base = np.asarray(PALETTES[palette], dtype=np.float64)
    if k <= 0:
        return np.zeros((0, 3))
    if k == 1:
        return base[-1:].copy()
    if k <= len(base):
        return base[np.round(np.linspace(0, len(base) - 1, k)).astype(int)].copy()
    t = np.linspace(0, len(base) - 1, k)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(base) - 1)
    w = (t - lo)[:, None]
    return base[lo] * (1 - w) + base[hi] * w


@dataclass
class RenderConfig:
    """Quality knobs of the offscreen renderer (defaults suit software GL)."""

    offsamples: int = 0  # multisample anti-aliasing samples (0 = off, much faster under software GL)
    sphere_slices: int = 16  # sphere/cylinder tessellation (model.vis.quality.numslices)
    sphere_stacks: int = 8  # sphere tessellation (model.vis.quality.numstacks)
    shadows: bool = True  # draw shadows
    reflections: bool = False  # floor reflections (expensive, little value top-down)
    skybox: bool = False  # draw the skybox
    palette: str = "mage"  # per-scale colour palette name (see PALETTES)
    ghost_lod: bool = True  # ghost robots draw mesh parts as their bounding ellipsoids (fast under software GL)


@dataclass
class CameraPose:
    """A free orbit camera: look-at point, distance, azimuth and elevation in degrees."""

    lookat: tuple = (0.0, 0.0, 0.0)  # point the camera orbits (world xyz)
    distance: float = 8.0  # distance from the look-at point
    azimuth: float = 90.0  # degrees around +z
    elevation: float = -90.0  # degrees; -90 looks straight down

    def orbit(self, d_azimuth: float, d_elevation: float) -> "CameraPose":
        el = float(np.clip(self.elevation + d_elevation, -90.0, -5.0))
        return CameraPose(self.lookat, self.distance, (self.azimuth + d_azimuth) % 360.0, el)

    def zoom(self, factor: float) -> "CameraPose":
        return CameraPose(self.lookat, float(np.clip(self.distance * factor, 0.5, 200.0)), self.azimuth, self.elevation)

    def pan(self, dx: float, dy: float) -> "CameraPose":
        """Move the look-at point by (dx, dy) in screen units scaled by distance (right, up)."""
        az = np.deg2rad(self.azimuth)
        right = np.array([np.sin(az), -np.cos(az), 0.0])
        fwd = np.array([np.cos(az), np.sin(az), 0.0])
        move = (right * dx + fwd * dy) * self.distance
        return CameraPose(tuple(np.asarray(self.lookat) + move), self.distance, self.azimuth, self.elevation)


_MODEL_STATS: dict[str, tuple] = {}  # task name -> (center, extent) of its MuJoCo model, for cameras without a scene


def _model_for_camera(task):
    """A minimal stand-in for a task's model (its stat center and extent), created once per task."""
    if task.name not in _MODEL_STATS:
        with MODEL_LOCK:
            env = task.make_env(mode="eval")
            m = env.unwrapped.model
            _MODEL_STATS[task.name] = (tuple(float(v) for v in m.stat.center), float(m.stat.extent))
            env.close()
    center, extent = _MODEL_STATS[task.name]

    class _Stat:  # the two fields Suite.camera reads
        pass

    class _Model:
        stat = _Stat()

    _Model.stat.center, _Model.stat.extent = center, extent
    return _Model


def top_down_camera(task, aspect: float = 4 / 3, model=None) -> CameraPose:
    """The task's default camera (its suite's): straight down over the whole maze, or a three-quarter robot view."""
    return task.suite.camera(task, model, aspect)


def orbit_camera(task, model=None) -> CameraPose:
    """A three-quarter view of the task's scene, a pleasant default for the free orbit camera (its suite's)."""
    return task.suite.orbit_camera(task, model)


@dataclass
class CameraFrame:
    """The camera geometry of one rendered image, enough to map pixels to world points and back (no GL needed)."""

    pos: np.ndarray  # (3,) eye position
    forward: np.ndarray  # (3,) unit view direction
    up: np.ndarray  # (3,) unit up direction
    frustum_center: float  # horizontal frustum centre at the near plane
    frustum_bottom: float  # bottom of the frustum at the near plane
    frustum_top: float  # top of the frustum at the near plane
    frustum_near: float  # near plane distance
    width: int  # image width in pixels
    height: int  # image height in pixels

    def _halfwidth(self) -> float:
        return 0.5 * self.width / self.height * (self.frustum_top - self.frustum_bottom)

    def ray(self, u: float, v: float) -> tuple[np.ndarray, np.ndarray]:
        """World-space ray (origin, unit direction) through pixel (u, v) (u right, v down, in pixels)."""
        right = np.cross(self.forward, self.up)
        x = self.frustum_center + (2 * u / self.width - 1) * self._halfwidth()
        y = self.frustum_bottom + (1 - v / self.height) * (self.frustum_top - self.frustum_bottom)
        d = self.forward * self.frustum_near + right * x + self.up * y
        return self.pos.copy(), d / np.linalg.norm(d)

    def unproject(self, u: float, v: float, z: float = 0.0) -> np.ndarray | None:
        """World xy where the ray through pixel (u, v) meets the plane at height z, or None if it misses."""
        o, d = self.ray(u, v)
        if abs(d[2]) < 1e-9:
            return None
        t = (z - o[2]) / d[2]
        if t <= 0:
            return None
        return (o + t * d)[:2]

    def project(self, xyz) -> np.ndarray:
        """Pixel (u, v) of a world point (u right, v down)."""
        right = np.cross(self.forward, self.up)
        rel = np.asarray(xyz, dtype=float) - self.pos
        depth = rel @ self.forward
        x = (rel @ right) * self.frustum_near / depth
        y = (rel @ self.up) * self.frustum_near / depth
        u = ((x - self.frustum_center) / self._halfwidth() + 1) * self.width / 2
        v = (1 - (y - self.frustum_bottom) / (self.frustum_top - self.frustum_bottom)) * self.height
        return np.array([u, v])


@dataclass
class Overlay:
    """What to draw on top of the scene: per-scale plans, an executed path, start and goal markers."""

    plans_xy: list = field(default_factory=list)  # per scale k (coarse -> fine): (H, 2) planned xy positions
    plan_points: list = field(default_factory=list)  # per scale: indices of the steps that get a sphere (token centres)
    visible: list | None = None  # per-scale visibility flags (None = all)
    path_xy: np.ndarray | None = None  # (N, 2) executed path
    start_xy: np.ndarray | None = None  # start marker position
    goal_xy: np.ndarray | None = None  # goal marker position
    goal_radius: float = 0.45  # radius of the goal disc
    line_width: float = 0.025  # radius of plan connector capsules (world units)
    point_radius: float = 0.06  # radius of plan spheres (world units)
    line_kind: str = "line"  # plan connectors: "line" (GL lines, cheap under software GL) or "capsule" (3-D tubes)
    line_px: float = 3.0  # width of "line" connectors in pixels
    paths_xyz: list = field(default_factory=list)  # per scale: {key point name: (H, 3) world positions} (robots)
    ghosts: list = field(default_factory=list)  # per scale: list of qpos arrays to draw as translucent ghost robots
    path_xyz: np.ndarray | None = None  # (N, 3) executed key-point path (robots; mazes use path_xy)
    highlight: tuple | None = None  # (scale k, first step, last step) of the plan to emphasise (token hover)
    ghost_scales: int = 0  # ghosts for this many of the finest visible scales only (0 = every visible scale)
    plan_states: np.ndarray | None = None  # (K, H, D) robot plan whose paths and ghosts the scene expands (needs a model)
    task: object = None  # the task plan_states belong to
    paths_in_scene: bool = True  # robots' key-point paths and path_xyz drawn as lines in the scene (False: the caller
    # draws them over the image from TaskScene.last_paths_xyz, e.g. the studio's viewport; no GL cost per segment)

    @property
    def n_scales(self) -> int:
        return max(len(self.plans_xy), len(self.paths_xyz), len(self.ghosts))


def token_points(scales, K: int, H: int) -> list:
    """Per scale, the plan steps at its token centres (where the overlay draws a sphere)."""
    scales = tuple(scales) if scales is not None else tuple([H] * K)
    points = []
    for k in range(K):
        p = int(max(1, min(scales[k] if k < len(scales) else H, H)))
        points.append(np.unique(((np.arange(p) + 0.5) * H / p).astype(int).clip(0, H - 1)))
    return points


def plan_overlay(states_KHD, scales=None, xy_dims=(0, 1), task=None, model=None,
                 ghosts_per_scale: int = GHOSTS_PER_SCALE, **kw) -> Overlay:
    """Overlay for a (K, H, D) plan. Without a task (or for a suite that names the agent's xy): the xy dims per scale
    with a sphere at each scale's token centres. With a task whose suite draws robots (and the scene's model):
    each scale's key-point paths in 3-D and ghost poses at evenly spaced planned steps."""
    s = np.asarray(states_KHD, dtype=np.float64)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3:
        raise MageError(f"plan states must have shape (K, H, D); got {s.shape}")
    K, H, D = s.shape
    points = token_points(scales, K, H)
    suite = task.suite if task is not None else None
    floor = suite is None or suite.draws_floor_path(task)  # plans drawn as xy trails on the floor, else posed robots
    plans_xy = []
    if floor:  # the agent's xy: the suite says where it sits in a state, else xy_dims
        if suite is None and D <= max(xy_dims):
            raise MageError(f"plan states must have shape (K, H, D) with D > {max(xy_dims)}; got {s.shape}")
        xy_KH2 = s[..., list(xy_dims)] if suite is None else suite.agent_point(task, s)
        if xy_KH2 is None or xy_KH2.shape[-1] != 2:
            raise MageError(f"plan states of shape {s.shape} hold no agent xy for {task.name}")
        plans_xy = list(xy_KH2)
    ov = Overlay(plans_xy=plans_xy, plan_points=points, **kw)
    if suite is not None and model is None and (not floor or suite.draws_ghosts):
        ov.plan_states, ov.task = s, task  # robots: TaskScene.render poses paths and ghosts with its own model
    if suite is not None and model is not None and suite.can_pose(task, model, D):
        if not floor:
            ov.paths_xyz = [suite.key_points(task, model, s[k]) for k in range(K)]
        if suite.draws_ghosts and ghosts_per_scale > 0:
            steps = np.unique(np.linspace(0, H - 1, ghosts_per_scale).round().astype(int))
            ov.ghosts = []
            for k in range(K):  # pose the whole plan (suites integrate unobserved positions along it), keep a few
                ov.ghosts.append(suite.pose_path(task, model, s[k], steps=steps))
    return ov


_IDENTITY_9 = np.eye(3).reshape(-1)  # orientation of spheres/discs (never modified)
_ZEROS_3 = np.zeros(3)  # placeholder size/pos for connectors (set by mjv_connector)


def _mat_identity() -> np.ndarray:
    return _IDENTITY_9


class _GeomWriter:
    """Appends geoms to an MjvScene without exceeding its capacity."""

    def __init__(self, scene):
        import mujoco

        self.mj = mujoco
        self.scene = scene
        self.dropped = 0
        self._LINE = int(mujoco.mjtGeom.mjGEOM_LINE)
        self._CAPSULE = int(mujoco.mjtGeom.mjGEOM_CAPSULE)

    def _next(self):
        if self.scene.ngeom >= self.scene.maxgeom:
            self.dropped += 1
            return None
        g = self.scene.geoms[self.scene.ngeom]
        self.scene.ngeom += 1
        return g

    def sphere(self, xyz, radius, rgba):
        g = self._next()
        if g is not None:
            self.mj.mjv_initGeom(g, int(self.mj.mjtGeom.mjGEOM_SPHERE), np.array([radius, 0, 0], dtype=np.float64),
                                 np.asarray(xyz, dtype=np.float64), _mat_identity(), np.asarray(rgba, dtype=np.float32))

    def disc(self, xyz, radius, height, rgba):
        g = self._next()
        if g is not None:
            self.mj.mjv_initGeom(g, int(self.mj.mjtGeom.mjGEOM_CYLINDER), np.array([radius, height, 0], dtype=np.float64),
                                 np.asarray(xyz, dtype=np.float64), _mat_identity(), np.asarray(rgba, dtype=np.float32))

    def capsule(self, a, b, radius, rgba, kind: str = "capsule"):
        """A connector from a to b: a capsule of this radius (world units) or a line of this width (pixels)."""
        g = self._next()
        if g is not None:
            t = self._LINE if kind == "line" else self._CAPSULE
            self.mj.mjv_initGeom(g, t, _ZEROS_3, _ZEROS_3, _IDENTITY_9, rgba)
            self.mj.mjv_connector(g, t, radius, a, b)

    def polyline(self, xy_N2, z, radius, rgba, max_segments=400, kind: str = "capsule"):
        xy = np.asarray(xy_N2, dtype=np.float64)
        if len(xy) < 2:
            return
        if len(xy) - 1 > max_segments:  # keep long paths within the geom budget
            xy = xy[np.linspace(0, len(xy) - 1, max_segments + 1).astype(int)]
        pts = np.ascontiguousarray(np.concatenate([xy, np.full((len(xy), 1), z)], axis=1))
        keep = np.r_[True, np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6]  # drop repeated points
        pts = pts[keep]
        rgba = np.asarray(rgba, dtype=np.float32)
        for i in range(len(pts) - 1):
            self.capsule(pts[i], pts[i + 1], radius, rgba, kind)


def _overlay_key(ov: Overlay | None):
    """A hashable summary of everything add_overlay draws from an overlay (equal keys draw the same geoms)."""
    if ov is None:
        return None

    def arr(a):
        return None if a is None else (np.asarray(a).shape, np.asarray(a, dtype=np.float64).tobytes())

    paths = tuple(tuple((n, arr(v)) for n, v in sorted(d.items())) for d in ov.paths_xyz)
    return (tuple(arr(x) for x in ov.plans_xy), tuple(arr(x) for x in ov.plan_points),
            None if ov.visible is None or not (ov.plans_xy or ov.paths_xyz) else tuple(bool(v) for v in ov.visible),
            arr(ov.path_xy), arr(ov.start_xy),
            arr(ov.goal_xy), ov.goal_radius, ov.line_width, ov.point_radius, ov.line_kind, ov.line_px, paths,
            arr(ov.path_xyz), ov.highlight)


def add_overlay(scene, overlay: Overlay, palette: str = "mage") -> int:
    """Append the overlay's geoms to an updated MjvScene; returns how many geoms did not fit."""
    w = _GeomWriter(scene)
    K = overlay.n_scales
    colors = scale_colors(K, palette)
    vis = overlay.visible if overlay.visible is not None else [True] * K
    if overlay.goal_xy is not None:
        g = np.asarray(overlay.goal_xy, dtype=float)
        w.disc((g[0], g[1], 0.01), overlay.goal_radius, 0.01, GOAL_RGBA)
    if overlay.start_xy is not None:
        s = np.asarray(overlay.start_xy, dtype=float)
        w.disc((s[0], s[1], 0.01), 0.16, 0.012, START_RGBA)
    if overlay.path_xy is not None and len(overlay.path_xy) > 1:
        if overlay.line_kind == "line":
            w.polyline(overlay.path_xy, OVERLAY_Z, overlay.line_px + 1.5, PATH_RGBA, kind="line")
        else:
            w.polyline(overlay.path_xy, OVERLAY_Z, overlay.line_width * 1.3, PATH_RGBA)
    if overlay.path_xyz is not None and len(overlay.path_xyz) > 1:
        _polyline3(w, overlay.path_xyz, overlay, PATH_RGBA, 1.5)
    for k in range(len(overlay.paths_xyz)):
        if k < len(vis) and not vis[k]:
            continue
        for pts in overlay.paths_xyz[k].values():  # robots: thin key-point paths, no token dots (they hide the robot)
            _polyline3(w, pts, overlay, (*colors[k], 0.95), extra_px=-1.0)
    for k in range(len(overlay.plans_xy)):
        if k < len(vis) and not vis[k]:
            continue
        z = OVERLAY_Z + SCALE_DZ * (k + 1)
        rgba = (*colors[k], 0.95)
        xy = np.asarray(overlay.plans_xy[k], dtype=float)
        n_tok = len(overlay.plan_points[k]) if k < len(overlay.plan_points) else len(xy)
        seg = max(MIN_SEGMENTS_PER_SCALE, SEGMENTS_PER_TOKEN * n_tok)  # coarse scales are smooth: fewer segments
        if overlay.line_kind == "line":
            w.polyline(xy, z, overlay.line_px, rgba, max_segments=seg, kind="line")
        else:
            w.polyline(xy, z, overlay.line_width, rgba, max_segments=seg)
        idx = overlay.plan_points[k] if k < len(overlay.plan_points) else range(len(xy))
        for i in idx:
            w.sphere((xy[i, 0], xy[i, 1], z), overlay.point_radius, rgba)
    return w.dropped


def _polyline3(w: _GeomWriter, pts_N3, overlay: Overlay, rgba, extra_px: float = 0.0, max_segments: int = 200):
    """A 3-D polyline (key-point paths of robots) as GL lines or capsules."""
    pts = np.asarray(pts_N3, dtype=np.float64)
    if len(pts) - 1 > max_segments:
        pts = pts[np.linspace(0, len(pts) - 1, max_segments + 1).astype(int)]
    rgba = np.asarray(rgba, dtype=np.float32)
    kind = overlay.line_kind
    width = overlay.line_px + extra_px if kind == "line" else overlay.line_width * 0.5
    for i in range(len(pts) - 1):
        if np.linalg.norm(pts[i + 1] - pts[i]) > 1e-6:
            w.capsule(np.ascontiguousarray(pts[i]), np.ascontiguousarray(pts[i + 1]), width, rgba, kind)


def _ghost_scales(overlay: Overlay, K: int) -> list[int]:
    """The scales whose ghosts are drawn: the visible ones, or only the finest `ghost_scales` of them."""
    vis = overlay.visible if overlay.visible is not None else [True] * K
    shown = [k for k in range(K) if not (k < len(vis) and not vis[k])]
    return shown[-overlay.ghost_scales:] if overlay.ghost_scales > 0 else shown


@dataclass
class _PlanCache:
    """What a scene computed for one robot plan: key-point paths for every scale, ghost poses for the scales shown."""

    key: tuple  # (id, shape) of the plan's states array (kept alive below, so the id stays unique)
    plan_states: np.ndarray  # the array the key names
    states: np.ndarray  # (K, H, D) float64 copy the suite poses from
    paths: list  # per scale: {key point: (H, 3)} (empty where the suite draws a floor path)
    ghostly: bool  # the suite draws ghosts and can pose this plan
    ghosts: dict = field(default_factory=dict)  # scale k -> qpos of its ghost poses, filled as scales are shown


class TaskScene:
    """A task's MuJoCo scene with its own MjData and offscreen GL context: set the agent/goal, render with overlays.

    Create it and call render() from one thread only (the GL context belongs to the thread that first renders).
    """

    def __init__(self, task, config: RenderConfig | None = None, max_size: tuple = MAX_BUFFER):
        import mujoco

        self.mj = mujoco
        self.task = task
        self.config = config or RenderConfig()
        with MODEL_LOCK:
            self.env = task.make_env(mode="eval")
            self.env.reset(seed=0)
        if not hasattr(self.env.unwrapped, "model") or not hasattr(self.env.unwrapped, "data"):
            self.env.close()
            raise MageError(f"{task.env_id} is not a MuJoCo environment, so its scene cannot be drawn "
                            f"(plans can still be made and plotted)")
        self.model = self.env.unwrapped.model
        self.data = mujoco.MjData(self.model)
        self.data.qpos[:] = self.env.unwrapped.data.qpos
        mujoco.mj_forward(self.model, self.data)
        q = self.model.vis.quality
        q.offsamples = self.config.offsamples
        q.numslices = self.config.sphere_slices
        q.numstacks = self.config.sphere_stacks
        self.model.vis.global_.offwidth = max(int(self.model.vis.global_.offwidth), int(max_size[0]))
        self.model.vis.global_.offheight = max(int(self.model.vis.global_.offheight), int(max_size[1]))
        self._style_model()
        self.max_size = (int(self.model.vis.global_.offwidth), int(self.model.vis.global_.offheight))
        self.option = mujoco.MjvOption()
        self.scene = mujoco.MjvScene(self.model, maxgeom=int(self.model.ngeom) + MAX_OVERLAY_GEOMS)
        self.camera = mujoco.MjvCamera()
        self.camera.type = int(mujoco.mjtCamera.mjCAMERA_FREE)
        self._gl = None
        self._ctx = None
        self._target_site = getattr(self.env.unwrapped, "target_site_id", None)
        self.dropped_geoms = 0  # overlay geoms that did not fit into the last frame
        self.last_frame: CameraFrame | None = None
        self._ghost_data = mujoco.MjData(self.model)  # posed from planned observations for ghost robots
        self._perturb = mujoco.MjvPerturb()  # no perturbation (mjv_addGeoms wants one)
        self._ghost_hidden = self.task.suite.hide_for_ghost(self.task, self.model)  # geoms ghosts leave out
        self._plan_cache: _PlanCache | None = None  # paths and ghost poses of the last robot plan drawn
        self.last_paths_xyz: list = []  # per scale {key point: (H, 3)} of the last frame's plan (for paths_in_scene=False)
        self._base_layer: tuple | None = None  # (key, rgb, depth, CameraFrame) of a layered frame without its ghosts
        self.layer_hits = 0  # layered frames drawn on the cached base layer since it was rendered

    def default_camera(self, aspect: float = 4 / 3) -> CameraPose:
        return top_down_camera(self.task, aspect, model=self.model)

    # ---- look -----------------------------------------------------------------------------------------------
    def _style_model(self):
        """The suite's palette (e.g. slate walls, dark floor, hidden stock goal site) under a soft headlight."""
        m = self.model
        self.task.suite.style_scene(self.task, m)
        lit = int(m.nlight) > 0  # scenes with their own lights (AntMaze, robots) wash out under a full headlight
        m.vis.headlight.ambient[:] = (0.12, 0.12, 0.13) if lit else (0.35, 0.35, 0.38)
        m.vis.headlight.diffuse[:] = (0.30, 0.30, 0.30) if lit else (0.65, 0.65, 0.65)

    # ---- state ----------------------------------------------------------------------------------------------
    def set_agent(self, xy, vel=None):
        """Place the agent at a point of the scene (suites with editable points: the maze agent's xy)."""
        self.task.suite.place(self.task, self.model, self.data, np.asarray(xy, dtype=np.float64)[:2],
                              None if vel is None else np.asarray(vel, dtype=np.float64))
        self.mj.mj_forward(self.model, self.data)

    def set_obs(self, obs_D) -> bool:
        """Pose the scene from a flattened observation (the suite's pose hook); False when it cannot be posed."""
        obs_D = np.asarray(obs_D, dtype=np.float64)
        if not self.task.suite.can_pose(self.task, self.model, len(obs_D)):
            return False
        self.task.suite.pose(self.task, self.model, self.data, obs_D)
        self.mj.mj_forward(self.model, self.data)
        return True

    def set_qpos(self, qpos):
        n = min(len(qpos), self.model.nq)
        self.data.qpos[:n] = np.asarray(qpos, dtype=np.float64)[:n]
        self.mj.mj_forward(self.model, self.data)

    def set_goal(self, xy):
        if self._target_site is not None and xy is not None:
            self.model.site_pos[self._target_site, :2] = np.asarray(xy, dtype=np.float64)[:2]

    # ---- rendering ------------------------------------------------------------------------------------------
    def _ensure_context(self):
        if self._ctx is not None:
            return
        with MODEL_LOCK:
            self._create_context()

    def _create_context(self):
        from mujoco import gl_context

        w, h = self.max_size
        try:
            self._gl = gl_context.GLContext(w, h)
            self._gl.make_current()
            self._ctx = self.mj.MjrContext(self.model, int(self.mj.mjtFontScale.mjFONTSCALE_100))
        except Exception as exc:  # no GL at all
            raise MageError(f"cannot create an OpenGL context for rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): {exc}") from exc
        self.mj.mjr_setBuffer(int(self.mj.mjtFramebuffer.mjFB_OFFSCREEN), self._ctx)

    def render(self, pose: CameraPose, overlay: Overlay | None = None, size: tuple = (640, 480),
               out: np.ndarray | None = None, fast: bool = False, layered: bool = False) -> np.ndarray:
        """Render an RGB image (height, width, 3) uint8 from the camera pose, overlay drawn on top.

        fast: the live look for frames that follow the mouse or a playing run under software GL — no shadows,
        reflections, skybox or textures (each costs a software-GL frame more than the whole scene's geometry); the
        geometry, the plan and its ghosts are the same as in a full frame.
        layered: draw a plan shown only as ghosts (a floor path changes the base with every plan: one pass then) as a
        layer over a cached image of everything else (with its depth), so a
        new plan under the same camera, robot pose and markers renders only the ghosts (a fraction of a software-GL
        frame). The first layered frame of a view renders both layers; ghosts occlude each other opaquely there
        (in a single-pass frame they blend), which is the only difference."""
        mj = self.mj
        w, h = int(size[0]), int(size[1])
        if not (0 < w <= self.max_size[0] and 0 < h <= self.max_size[1]):
            raise MageError(f"image size {w}x{h} is outside 1x1..{self.max_size[0]}x{self.max_size[1]}")
        self._ensure_context()
        self._gl.make_current()
        ghosts = overlay is not None and (overlay.ghosts or overlay.plan_states is not None)
        self.dropped_geoms = 0
        overlay, drawn = self._prepare(overlay)
        if layered and overlay is not None and any(len(g) for g in overlay.ghosts) and not overlay.plans_xy:
            return np.flipud(self._render_layers(pose, overlay, drawn, w, h, fast))
        self._update_scene(pose, fast, shadows=not ghosts)
        if overlay is not None and overlay.ghosts:
            self.dropped_geoms += self._add_ghosts(overlay)
        if drawn is not None:
            self.dropped_geoms += add_overlay(self.scene, drawn, self.config.palette)
        buf = out if out is not None and out.shape == (h, w, 3) and out.dtype == np.uint8 else np.empty((h, w, 3), np.uint8)
        self._draw(w, h, buf)
        return np.flipud(buf)

    def _prepare(self, overlay: Overlay | None) -> tuple:
        """The overlay with its robot plan expanded (paths, ghost poses; cached per plan) and the part of it drawn as
        scene geoms; remembers the key-point paths for the caller."""
        if overlay is not None and overlay.plan_states is not None:
            overlay = self._expand(overlay)
        self.last_paths_xyz = list(overlay.paths_xyz) if overlay is not None else []
        if overlay is None:
            return None, None
        return overlay, overlay if overlay.paths_in_scene else replace(overlay, paths_xyz=[], path_xyz=None)

    def _layer_key(self, pose: CameraPose, drawn: Overlay | None, w: int, h: int, fast: bool) -> tuple:
        """Everything the base layer (the frame without its ghosts) depends on."""
        return (tuple(np.round(np.asarray(pose.lookat, float), 9)), pose.distance, pose.azimuth, pose.elevation, w,
                h, fast, self.data.qpos.tobytes(), self.data.mocap_pos.tobytes(),
                None if self._target_site is None else self.model.site_pos[self._target_site].tobytes(),
                _overlay_key(drawn))

    def layer_cached(self, pose: CameraPose, overlay: Overlay | None, size: tuple, fast: bool = False) -> bool:
        """Whether render(..., layered=True) of this view would reuse the cached base layer and draw only the
        plan's ghosts (the scene's pose must already be set)."""
        if self._base_layer is None or overlay is None:
            return False
        overlay, drawn = self._prepare(overlay)
        if not any(len(g) for g in overlay.ghosts):
            return False
        return self._base_layer[0] == self._layer_key(pose, drawn, int(size[0]), int(size[1]), fast)

    def _update_scene(self, pose: CameraPose, fast: bool, shadows: bool) -> None:
        """The camera, the look's flags and the model's geoms in the MjvScene (before overlays are appended)."""
        mj, cam = self.mj, self.camera
        cam.lookat[:] = pose.lookat
        cam.distance = pose.distance
        cam.azimuth = pose.azimuth
        cam.elevation = pose.elevation
        self.option.flags[int(mj.mjtVisFlag.mjVIS_TEXTURE)] = int(not fast)
        mj.mjv_updateScene(self.model, self.data, self.option, None, cam, int(mj.mjtCatBit.mjCAT_ALL), self.scene)
        flags = self.scene.flags
        # shadows of translucent ghosts are noise, and cost most of a software-GL frame in mesh-heavy scenes
        flags[int(mj.mjtRndFlag.mjRND_SHADOW)] = int(self.config.shadows and shadows and not fast)
        flags[int(mj.mjtRndFlag.mjRND_REFLECTION)] = int(self.config.reflections and not fast)
        flags[int(mj.mjtRndFlag.mjRND_SKYBOX)] = int(self.config.skybox and not fast)

    def _draw(self, w: int, h: int, rgb: np.ndarray, depth: np.ndarray | None = None) -> None:
        """Render the MjvScene and read it back (bottom-up rows); remembers the camera frame of the image."""
        mj = self.mj
        rect = mj.MjrRect(0, 0, w, h)
        mj.mjr_render(rect, self.scene, self._ctx)
        mj.mjr_readPixels(rgb, depth, rect, self._ctx)
        c0, c1 = self.scene.camera[0], self.scene.camera[1]
        self.last_frame = CameraFrame(
            pos=(np.asarray(c0.pos) + np.asarray(c1.pos)) / 2, forward=np.asarray(c0.forward, dtype=float).copy(),
            up=np.asarray(c0.up, dtype=float).copy(), frustum_center=float(c0.frustum_center),
            frustum_bottom=float(c0.frustum_bottom), frustum_top=float(c0.frustum_top),
            frustum_near=float(c0.frustum_near), width=w, height=h)

    def _render_layers(self, pose: CameraPose, overlay: Overlay, drawn: Overlay | None, w: int, h: int,
                       fast: bool) -> np.ndarray:
        """The frame as two layers: everything but the ghosts (cached with its depth while the camera, the robot's
        pose, the goal and the other overlays stay the same), and the ghosts alone, drawn opaque with depth, blended
        over it at GHOST_ALPHA where they are in front. Bottom-up rows, as read back."""
        key = self._layer_key(pose, drawn, w, h, fast)
        base = self._base_layer
        if base is None or base[0] != key:
            self._update_scene(pose, fast, shadows=False)
            if drawn is not None:
                self.dropped_geoms += add_overlay(self.scene, drawn, self.config.palette)
            rgb, depth = np.empty((h, w, 3), np.uint8), np.empty((h, w), np.float32)
            self._draw(w, h, rgb, depth)
            base = self._base_layer = (key, rgb, depth, self.last_frame)
            self.layer_hits = 0
        else:
            self.layer_hits += 1
        self._update_scene(pose, True, shadows=False)  # the ghosts alone: no skybox, reflection or texture to draw
        self.scene.ngeom = 0
        self.dropped_geoms += self._add_ghosts(overlay, alpha=1.0)
        g_rgb, g_depth = np.empty((h, w, 3), np.uint8), np.empty((h, w), np.float32)
        self._draw(w, h, g_rgb, g_depth)
        self.last_frame = base[3]
        _, rgb, depth, _ = base
        # pixels where a ghost is drawn (its depth below the cleared 1.0) in front of the scene (ties: the ghost)
        idx = np.flatnonzero(g_depth < np.minimum(depth + 1e-6, 1.0))
        out = rgb.copy()
        a = int(round(LAYER_GHOST_ALPHA * 256))  # blended in 8-bit fixed point: a third of float's time
        under, over = rgb.reshape(-1, 3)[idx].astype(np.uint16), g_rgb.reshape(-1, 3)[idx].astype(np.uint16)
        out.reshape(-1, 3)[idx] = ((under * (256 - a) + over * a + 128) >> 8).astype(np.uint8)
        return out

    def _expand(self, overlay: Overlay) -> Overlay:
        """An overlay whose robot plan is turned into key-point paths (every scale) and ghost poses (only the scales
        whose ghosts are shown). Both are cached per plan: a frame that only moves the camera poses nothing."""
        key = (id(overlay.plan_states), overlay.plan_states.shape)
        cache = self._plan_cache
        if cache is None or cache.key != key:
            s = np.asarray(overlay.plan_states, dtype=np.float64)
            suite, task, model = self.task.suite, self.task, self.model
            posable = suite.can_pose(task, model, s.shape[-1])
            floor = suite.draws_floor_path(task)
            paths = []
            if posable and not floor:  # each scale's paths at the resolution its tokens have (a coarse scale is smooth)
                for k in range(len(s)):
                    n_tok = len(overlay.plan_points[k]) if k < len(overlay.plan_points) else s.shape[1]
                    n = min(s.shape[1], max(MIN_SEGMENTS_PER_SCALE, SEGMENTS_PER_TOKEN * n_tok) + 1)
                    steps = np.unique(np.linspace(0, s.shape[1] - 1, n).round().astype(int))
                    paths.append(suite.key_points(task, model, s[k][steps]))
            cache = self._plan_cache = _PlanCache(key, overlay.plan_states, s, paths,
                                                  posable and suite.draws_ghosts)
        K = len(cache.states)
        ghosts = [[] for _ in range(K)]
        if cache.ghostly:
            H = cache.states.shape[1]
            steps = np.unique(np.linspace(0, H - 1, GHOSTS_PER_SCALE).round().astype(int))
            for k in _ghost_scales(overlay, K):
                if k not in cache.ghosts:  # only the drawn steps (suites that integrate along the plan pose all)
                    cache.ghosts[k] = self.task.suite.pose_path(self.task, self.model, cache.states[k], steps=steps)
                ghosts[k] = cache.ghosts[k]
        return replace(overlay, plan_states=None, paths_xyz=cache.paths or overlay.paths_xyz, ghosts=ghosts)

    def _add_ghosts(self, overlay: Overlay, alpha: float = GHOST_ALPHA) -> int:
        """Append translucent copies of the robot posed at each shown scale's ghost qpos, in that scale's colour
        (opaque with alpha=1: the ghost layer of a layered frame, blended afterwards)."""
        mj = self.mj
        K = overlay.n_scales
        colors = scale_colors(K, self.config.palette)
        dropped, scene, d = 0, self.scene, self._ghost_data
        cat = int(mj.mjtCatBit.mjCAT_DYNAMIC)
        geom_type = int(mj.mjtObj.mjOBJ_GEOM)
        mesh, ellipsoid, none = int(mj.mjtGeom.mjGEOM_MESH), int(mj.mjtGeom.mjGEOM_ELLIPSOID), int(mj.mjtGeom.mjGEOM_NONE)
        aabb = self.model.geom_aabb  # (ngeom, 6): centre and half-sizes of each geom in its own frame
        shown = _ghost_scales(overlay, K)
        for k, poses in enumerate(overlay.ghosts):
            if k not in shown:
                continue
            rgba = np.array([*colors[k], alpha], dtype=np.float32)
            for q in poses:
                if scene.ngeom >= scene.maxgeom - 1:
                    dropped += 1
                    continue
                n0 = scene.ngeom
                d.qpos[:] = q
                mj.mj_kinematics(self.model, d)
                mj.mjv_addGeoms(self.model, d, self.option, self._perturb, cat, scene)
                for i in range(n0, scene.ngeom):
                    g = scene.geoms[i]
                    is_geom = int(g.objtype) == geom_type
                    g.segid = -1
                    if is_geom and int(g.objid) in self._ghost_hidden:  # not drawn at all (a draw call saved)
                        g.type, g.rgba[:] = none, (0, 0, 0, 0)
                        continue
                    g.rgba[:] = rgba
                    if is_geom and int(g.type) == mesh and self.config.ghost_lod:  # a mesh becomes its bounding ellipsoid
                        c, half = aabb[int(g.objid), :3], aabb[int(g.objid), 3:]
                        g.pos[:] = np.asarray(g.pos) + np.asarray(g.mat).reshape(3, 3) @ c
                        g.type = ellipsoid
                        g.size[:] = np.maximum(half, 1e-3)
                        g.dataid = -1
        return dropped

    def close(self):
        with MODEL_LOCK:
            if self._ctx is not None:
                try:
                    self._gl.make_current()
                    self._ctx.free()
                except Exception:
                    pass
                self._ctx = None
            if self._gl is not None:
                try:
                    self._gl.free()
                except Exception:
                    pass
                self._gl = None
            self.env.close()


def write_png(path, rgb_HW3: np.ndarray) -> None:
    """Write an RGB uint8 image as a PNG file (Pillow)."""
    from PIL import Image

    img = np.ascontiguousarray(rgb_HW3, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise MageError(f"expected an (H, W, 3) image; got {img.shape}")
    try:
        Image.fromarray(img, "RGB").save(path, format="PNG")
    except OSError as exc:
        raise MageError(f"cannot write {path}: {exc.strerror or exc}") from None


def render_plan(task, plan_or_states_KHD=None, path=None, start=None, goal=None, size=(800, 600),
                scales=None, xy_dims=(0, 1), pose: CameraPose | None = None, config: RenderConfig | None = None,
                visible=None, start_obs=None, ghost_scales: int = 1) -> np.ndarray:
    """Render a plan (a Plan or (K, H, D) states) with the executed path and start/goal markers to an RGB array.

    Maze suites: plans and path are xy, start/goal markers are drawn. Robot suites: the scene is posed at start_obs
    (default: the plan's first state), each scale is drawn as key-point paths and ghosts; path is (N, 3) key points.
    """
    states, sc = None, scales
    if plan_or_states_KHD is not None:
        states = getattr(plan_or_states_KHD, "states_KHD", plan_or_states_KHD)
        sc = scales if scales is not None else getattr(plan_or_states_KHD, "scales", None)
    scene = TaskScene(task, config)
    try:
        overlay = plan_overlay(states, sc, xy_dims, task=task) if states is not None else Overlay()  # the scene poses
        overlay.visible = visible
        overlay.ghost_scales = ghost_scales  # robots: the onion skin of the finest (visible) scale; paths for all
        if path is not None:
            p = np.asarray(path, dtype=float)
            if overlay.plans_xy or task.suite.draws_floor_path(task):
                overlay.path_xy = p[:, list(xy_dims)] if p.shape[-1] > 2 else p
            else:
                overlay.path_xyz = p
        overlay.start_xy = None if start is None else np.asarray(start, dtype=float)[:2]
        overlay.goal_xy = None if goal is None else np.asarray(goal, dtype=float)[:2]
        if start is not None and task.suite.editable(task).points:
            scene.set_agent(overlay.start_xy)
        elif start_obs is not None or states is not None:
            scene.set_obs(start_obs if start_obs is not None else np.asarray(states)[-1, 0])
        if goal is not None:
            scene.set_goal(overlay.goal_xy)
        pose = pose or scene.default_camera(size[0] / size[1])
        return scene.render(pose, overlay, size)
    finally:
        scene.close()


def render_plan_png(task, plan_or_states_KHD, path, start, goal, out_png, size=(800, 600), **kw) -> str:
    """Render a plan over the task's scene (top-down for mazes, ghosts for robots) and save it as a PNG."""
    rgb = render_plan(task, plan_or_states_KHD, path, start, goal, size=size, **kw)
    write_png(out_png, rgb)
    return str(out_png)
