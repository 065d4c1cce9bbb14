"""The studio's Qt-side model: current task, dataset, planner, condition and plan, with debounced off-thread replanning."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from mage_core.errors import MageError
from mage_studio.qt_util import UiInvoker, Worker

REPLAN_DEBOUNCE_MS = 4  # condition changes closer together than this produce one re-plan (a busy planner coalesces too)


@dataclass
class DatasetView:
    """A loaded dataset as the studio sees it."""

    id: str  # dataset id or path
    task: object  # mage_core Task
    episodes: list  # list[Episode]
    info: dict = field(default_factory=dict)  # dataset_info() dict
    rtg0_N: np.ndarray | None = None  # window-relabelled RTG at each episode's first step (the condition's scale)

    @property
    def steps(self) -> int:
        return int(sum(ep.length for ep in self.episodes))

    @property
    def obs_dim(self) -> int:
        return int(self.episodes[0].obs_TD.shape[1]) if self.episodes else 0

    @property
    def act_dim(self) -> int:
        return int(self.episodes[0].actions_TA.shape[1]) if self.episodes else 0

    def default_rtg(self) -> float:
        """A target the data supports: the 75th percentile of the episodes' initial RTG (else 3/4 of the range)."""
        if self.rtg0_N is not None and len(self.rtg0_N):
            return float(np.percentile(self.rtg0_N, 75))
        lo, hi = self.rtg_range()
        return lo + 0.75 * (hi - lo)

    def rtg_range(self) -> tuple[float, float]:
        if self.rtg0_N is None or not len(self.rtg0_N):
            return 0.0, float(getattr(self.task, "eval_steps", 1))
        return float(self.rtg0_N.min()), float(self.rtg0_N.max())


def episode_rtg0(task, episodes) -> np.ndarray:
    """RTG label of each episode's first step, relabelled as training does (window RTG where the suite says the
    reward pays only at the goal, else dense)."""
    from mage_core.data.segments import dense_rtg, episode_rtg

    if task.suite.sparse_goal_reward(task):
        return np.array([episode_rtg(ep, task.eval_steps)[0] for ep in episodes], dtype=np.float32)
    return np.array([dense_rtg(ep.rewards_T)[0] for ep in episodes], dtype=np.float32)


class Session(QObject):
    """Holds what the docks share and re-plans (debounced, on a worker thread) whenever the condition changes."""

    task_changed = Signal(object)
    dataset_changed = Signal(object)
    planner_changed = Signal(object)
    condition_changed = Signal()
    plan_ready = Signal(object)  # Plan
    plan_failed = Signal(str)
    notify = Signal(str, str)  # level ("info" | "warning" | "error"), one-line text

    def __init__(self, parent=None):
        super().__init__(parent)
        self.invoker = UiInvoker(self)
        self.worker = Worker(self.invoker, threads=1, name="mage-plan")
        self.task = None
        self.dataset: DatasetView | None = None
        self.planner = None
        self.planner_path: str | None = None
        self.start_xy: np.ndarray | None = None
        self.goal_xy: np.ndarray | None = None
        self.state_template: np.ndarray | None = None  # initial state for non-maze tasks
        self.rtg: float = 0.0
        self.seed: int = 0  # sampling seed of the plans (Plan dock: Seed / Resample); closed-loop runs use it too
        self.plan = None
        self.plan_ms = 0.0  # planner's own time for the last plan
        self.replan_latency_ms = 0.0  # condition change -> plan delivered on the UI thread
        self.plans_done = 0
        self.auto_replan = True
        self._busy = False
        self._dirty = False
        self._closed = False
        self._requested_at = 0.0
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(REPLAN_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._start_plan)

    # ---- task / data / planner -------------------------------------------------------------------------------
    def set_task(self, task) -> None:
        if self.task is not None and task is not None and task.name == self.task.name:
            return
        self.task = task
        self.plan = None
        pts = task.suite.default_points(task)  # the evaluation start and goal for suites with editable points
        self.start_xy, self.goal_xy = pts.get("start"), pts.get("goal")
        self.state_template = None
        self.rtg = float(task.eval_steps) * 0.5
        self.task_changed.emit(task)
        self.condition_changed.emit()

    def set_dataset(self, ds: DatasetView) -> None:
        self.set_task(ds.task)
        self.dataset = ds
        if not ds.task.suite.editable(ds.task).points and ds.episodes and self.state_template is None:
            self.state_template = ds.episodes[0].obs_TD[0]
        if self.planner is None:
            self.rtg = self.default_rtg()
        else:
            self.request_replan()  # robots: the dataset brought the first start state
        self.dataset_changed.emit(ds)
        self.notify.emit("info", f"Loaded dataset {ds.id}: {len(ds.episodes)} episodes, {ds.steps} steps")
        self.condition_changed.emit()

    def compatibility(self, planner=None, dataset: DatasetView | None = None) -> list[str]:
        """Human-readable problems between a planner and the current dataset/task (empty = compatible)."""
        planner = planner or self.planner
        dataset = dataset or self.dataset
        problems = []
        if planner is None:
            return problems
        ptask = getattr(planner, "task", None)
        if dataset is not None:
            if ptask is not None and getattr(ptask, "name", None) != dataset.task.name:
                problems.append(f"checkpoint task {ptask.name} differs from the dataset's task {dataset.task.name}")
            if int(planner.obs_dim) != dataset.obs_dim:
                problems.append(f"checkpoint expects {planner.obs_dim} observation dims, dataset has {dataset.obs_dim}")
            if int(planner.act_dim) != dataset.act_dim:
                problems.append(f"checkpoint acts in {planner.act_dim} dims, dataset has {dataset.act_dim}")
        return problems

    def set_planner(self, planner, path: str | None = None) -> None:
        for attr in ("plan", "obs_dim", "act_dim", "scales", "horizon"):
            if not hasattr(planner, attr):
                raise MageError(f"{path or 'checkpoint'} does not provide a planner (missing {attr!r})")
        self.planner, self.planner_path = planner, path
        ptask = getattr(planner, "task", None)
        if ptask is not None and (self.task is None or ptask.name != self.task.name):
            self.dataset = None if self.dataset is not None and self.dataset.task.name != ptask.name else self.dataset
            self.set_task(ptask)
        lo, hi = (tuple(planner.rtg_range) if getattr(planner, "rtg_range", None) is not None
                  else (self.dataset.rtg_range() if self.dataset else (0.0, 1.0)))
        self.rtg = float(np.clip(self.rtg if self.plan is not None else self.default_rtg(), lo, hi))
        self.plan = None
        self.planner_changed.emit(planner)
        self.condition_changed.emit()
        self.request_replan()

    def close_planner(self) -> None:
        """Forget the loaded checkpoint and its plan (e.g. when the scene switches to a task it was not trained for)."""
        self.planner, self.planner_path, self.plan = None, None, None

    def default_rtg(self) -> float:
        """The dataset's default target when one is loaded, else 3/4 of the planner's RTG range."""
        if self.dataset is not None:
            return self.dataset.default_rtg()
        lo, hi = self.rtg_range()
        return lo + 0.75 * (hi - lo)

    def places_points(self) -> bool:
        """Whether the current task's suite takes its start and goal as points placed in the scene."""
        return self.task is not None and bool(self.task.suite.editable(self.task).points)

    def rtg_range(self) -> tuple[float, float]:
        if self.planner is not None and getattr(self.planner, "rtg_range", None) is not None:
            lo, hi = self.planner.rtg_range
            return float(lo), float(hi)
        if self.dataset is not None:
            return self.dataset.rtg_range()
        if self.task is not None:
            return 0.0, float(self.task.eval_steps)
        return 0.0, 1.0

    # ---- condition -----------------------------------------------------------------------------------------
    def set_start(self, xy) -> bool:
        """Move the start; a start inside a wall is refused with a clear message. Returns whether it was accepted."""
        return self._set_point("start", xy)

    def set_goal(self, xy) -> bool:
        """Move the goal; refused (with a message) inside a wall. Returns whether it was accepted."""
        return self._set_point("goal", xy)

    def _set_point(self, which: str, xy) -> bool:
        if self.task is None:
            return False
        try:
            self.task.suite.check_point(self.task, which, xy)
        except MageError as exc:
            self.notify.emit("warning", str(exc))
            return False
        setattr(self, f"{which}_xy", np.asarray(xy, dtype=float)[:2])
        self.condition_changed.emit()
        self.request_replan()
        return True

    def set_rtg(self, value: float) -> None:
        self.rtg = float(value)
        self.condition_changed.emit()
        self.request_replan()

    def set_seed(self, seed: int) -> None:
        """Resample: plan the same condition with another sampling seed."""
        self.seed = int(seed)
        self.condition_changed.emit()
        self.request_replan()

    def set_state_template(self, obs) -> None:
        self.state_template = np.asarray(obs, dtype=np.float32)
        if self.task is not None and not self.task.suite.editable(self.task).points:
            self.start_xy = None
        self.condition_changed.emit()
        self.request_replan()

    def reset_state(self, seed: int = 0) -> None:
        """Start from the evaluation env reset with this seed (suites without editable points: robots)."""
        from mage_core.render import MODEL_LOCK

        if self.task is None:
            return
        try:
            with MODEL_LOCK:
                env = self.task.make_env(mode="eval")
                obs, _ = env.reset(seed=int(seed))
                env.close()
        except MageError as exc:
            self.notify.emit("warning", str(exc))
            return
        self.set_state_template(self.task.flatten_obs(obs))

    def condition_obs(self) -> np.ndarray:
        from mage_studio.rollout import condition_obs

        if self.state_template is None and self.task is not None and not self.task.suite.editable(self.task).points:
            self.reset_state(0)  # no start picked yet: the evaluation reset

        return condition_obs(self.task, self.start_xy, self.goal_xy,
                             getattr(self.planner, "obs_dim", None), self.state_template)

    # ---- planning ------------------------------------------------------------------------------------------
    def request_replan(self) -> None:
        if self.planner is None or not self.auto_replan:
            return
        if not self._debounce.isActive():
            self._requested_at = time.perf_counter()
        self._debounce.start()

    def replan_now(self) -> None:
        self._requested_at = time.perf_counter()
        self._start_plan()

    def _start_plan(self) -> None:
        if self.planner is None:
            return
        if self._busy:
            self._dirty = True
            return
        try:
            obs = self.condition_obs()
        except MageError as exc:
            self.plan_failed.emit(str(exc))
            return
        planner, rtg, seed = self.planner, self.rtg, self.seed
        self._busy = True
        self.worker.submit(lambda: planner.plan(obs, rtg, seed=seed), self._plan_done, self._plan_error)

    def _plan_done(self, plan) -> None:
        self._busy = False
        if self._closed:
            return
        self.plan = plan
        self.plans_done += 1
        self.plan_ms = float(getattr(plan, "timings_ms", {}).get("total", 0.0))
        self.replan_latency_ms = (time.perf_counter() - self._requested_at) * 1000
        self.plan_ready.emit(plan)
        if self._dirty:
            self._dirty = False
            self._requested_at = time.perf_counter()
            self._start_plan()

    def _plan_error(self, msg: str) -> None:
        self._busy = False
        self._dirty = False
        self.plan_failed.emit(msg)
        self.notify.emit("error", f"Planning failed: {msg}")

    def shutdown(self) -> None:
        self._closed = True
        self._debounce.stop()
        self.worker.shutdown()
