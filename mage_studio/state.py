"""The studio's state as a Qt-free evented object: task, dataset, planner, condition, plan, view mode and overlay.

Over 500 lines on purpose: one documented property and event per piece of the studio's state, with the queries views
share (RTG range, compatibility, the condition's observation), so every view reads one object.

Views subscribe to `state.events.<name>.connect(callback)`; assigning a property emits its event with the new value
(every assignment, even of an equal value, so a view can redraw). The state is mutated on one thread only (the
studio's UI thread: work done on worker threads is delivered there before it touches the state), so callbacks run on
that thread and may update widgets directly.

Over 500 lines on purpose: one documented, validated property per thing a view shows or edits.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from mage_core.errors import MageError

VIEW_MODES = ("condition", "run", "replay")  # the view shows the condition's plan, a closed-loop step, an episode
TOOLS = ("navigate", "start", "goal")  # what a left-drag in the scene does: orbit the camera, place the start, the goal
PLANNER_API = ("plan", "obs_dim", "act_dim", "scales", "horizon")  # what a planner object must provide


class Event:
    """One kind of change: the callbacks connected to it are called, in connection order, with its values."""

    def __init__(self, name: str, doc: str = ""):
        self.name = name
        self.__doc__ = doc
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> Callable:
        """Call `callback(*values)` on every emission from now on; returns the callback (usable as a decorator)."""
        if not callable(callback):
            raise TypeError(f"the {self.name!r} event needs a callable, got {callback!r}")
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        """Stop calling `callback` (connected once per connect; a callback never connected is an error)."""
        try:
            self._callbacks.remove(callback)
        except ValueError:
            raise ValueError(f"{callback!r} is not connected to the {self.name!r} event") from None

    def emit(self, *values) -> None:
        """Call every callback; one that raises does not stop the others, and the first error is raised after all."""
        error = None
        for cb in tuple(self._callbacks):  # a callback may disconnect itself or others meanwhile
            try:
                cb(*values)
            except Exception as exc:  # noqa: BLE001 - re-raised below, once every view has had its turn
                error = error or exc
        if error is not None:
            raise error


EVENTS = {  # event name -> what its callbacks receive
    "task": "the new Task (a task of another name than the current one: the condition is reset, the plan dropped)",
    "dataset": "the DatasetView just loaded",
    "planner": "the planner just installed, or None when it was closed (the plan is dropped either way)",
    "condition": "the new Condition (start, goal, state template, RTG target or seed changed)",
    "plan": "the Plan just delivered for the condition (or None when it was cleared)",
    "plan_failed": "the one-line reason a plan could not be made",
    "notify": "(level, text): a message for the user; level is 'info', 'warning' or 'error'",
    "view_mode": "the new view mode, one of VIEW_MODES",
    "run_frame": "the closed-loop step now on screen (a RunFrame), or None when no run is shown",
    "overlay": "the new OverlaySettings",
    "tool": "the new scene tool, one of TOOLS",
}


class StudioEvents:
    """The state's events, one attribute per name in EVENTS."""

    def __init__(self):
        for name, doc in EVENTS.items():
            setattr(self, name, Event(name, doc))


@dataclass(frozen=True, eq=False)
class Condition:
    """What a plan is conditioned on: where it starts, where it goes, the return asked for, the sampling seed."""

    start_xy: np.ndarray | None = None  # (2,) agent start for suites whose points are placed in the scene
    goal_xy: np.ndarray | None = None  # (2,) goal for suites whose points are placed in the scene
    state_template: np.ndarray | None = None  # (D,) initial observation for suites without placed points (robots)
    rtg: float = 0.0  # RTG target: the return the plan is conditioned on
    seed: int = 0  # sampling seed of the plans (closed-loop runs use it too)
    held_tokens: tuple | None = None  # token maps of scales 1..k held fixed: plans (and runs) sample the finer ones only


@dataclass(frozen=True, eq=False)
class OverlaySettings:
    """What the view draws over the scene besides the plan itself (set by the Plan dock)."""

    visible: tuple = ()  # per scale, whether its plan is drawn (empty: every scale)
    refine: int = 1  # "refine to scale k": scales 1..k are shown
    hovered_token: tuple | None = None  # (scale k, token i, code, first step, last step) under the mouse, or None
    compare_rtg: float | None = None  # a second RTG target compared with the plan (None: no comparison)
    compare_plan: object = None  # the plan for compare_rtg from the same condition and seed (None until it is made)
    compare_checkpoint: str | None = None  # a second checkpoint planning the same condition (target and seed included)
    alternatives: tuple = ()  # plans whose coarse scales 1..alternatives_scale differ, drawn faintly (most likely first)
    alternatives_scale: int = 0  # the scale up to which the alternatives differ (0: none shown)


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


class StudioState:
    """What every view of the studio shows and edits.

    Properties (assigning one emits the event of the same name): task, rtg, seed, start_xy, goal_xy, state_template
    (these five emit `condition`), plan, view_mode, run_frame, overlay, tool. Loaded with methods, because they
    come with more than one value: dataset (set_dataset), planner with its file and card (set_planner, close_planner).
    Invalid values are refused with a MageError that says why; the state is unchanged then.
    """

    def __init__(self):
        self.events = StudioEvents()
        self._task = None
        self._dataset: DatasetView | None = None
        self._planner = None
        self._planner_path: str | None = None
        self._planner_info: dict | None = None
        self._condition = Condition()
        self._plan = None
        self._view_mode = "condition"
        self._run_frame = None
        self._overlay = OverlaySettings()
        self._tool = "start"
        self.plans_done = 0  # plans delivered so far
        self.replan_latency_ms = 0.0  # condition change -> plan delivered, for the last plan (set with it)

    # ---- task, dataset, planner --------------------------------------------------------------------------------
    @property
    def task(self):
        """The mage_core Task on screen (None before the first). A task of another name resets the condition to its
        evaluation start and goal and half its episode length as the target, drops the plan and a dataset of
        another task; the same task again changes nothing."""
        return self._task

    @task.setter
    def task(self, task) -> None:
        if task is None or not hasattr(task, "suite"):
            raise MageError(f"the studio shows a mage_core Task, got {task!r}")
        if self._task is not None and task.name == self._task.name:
            return
        self._task = task
        if self._dataset is not None and self._dataset.task.name != task.name:
            self._dataset = None
        self._plan = None
        pts = task.suite.default_points(task)  # the evaluation start and goal for suites with editable points
        self._condition = replace(self._condition, start_xy=pts.get("start"), goal_xy=pts.get("goal"),
                                  state_template=None, rtg=float(task.eval_steps) * 0.5, held_tokens=None)
        self._overlay = replace(self._overlay, alternatives=(), alternatives_scale=0)
        self.events.task.emit(task)
        self.events.condition.emit(self._condition)

    @property
    def dataset(self) -> DatasetView | None:
        """The loaded dataset (None: none, or it was for another task than the one on screen)."""
        return self._dataset

    def set_dataset(self, ds: DatasetView) -> None:
        """Show the dataset's task and load the dataset: robots start from its first state; without a planner the
        target becomes the data's default."""
        self.task = ds.task
        self._dataset = ds
        c = self._condition
        if not ds.task.suite.editable(ds.task).points and ds.episodes and c.state_template is None:
            c = replace(c, state_template=ds.episodes[0].obs_TD[0])
        self._condition = c
        if self._planner is None:
            self._condition = replace(self._condition, rtg=self.default_rtg())
        self.events.dataset.emit(ds)
        self.events.notify.emit("info", f"Loaded dataset {ds.id}: {len(ds.episodes)} episodes, {ds.steps} steps")
        self.events.condition.emit(self._condition)

    @property
    def planner(self):
        """The loaded planner (anything with the Planner API), or None."""
        return self._planner

    @property
    def planner_path(self) -> str | None:
        """The checkpoint file the planner came from (None: an in-memory planner, or none)."""
        return self._planner_path

    @property
    def planner_info(self) -> dict | None:
        """The checkpoint's card (checkpoint_info) when it was read, else None."""
        return self._planner_info

    def set_planner(self, planner, path: str | None = None, info: dict | None = None) -> None:
        """Install a planner: its task is shown, the target kept within its RTG range, the plan dropped."""
        for attr in PLANNER_API:
            if not hasattr(planner, attr):
                raise MageError(f"{path or 'checkpoint'} does not provide a planner (missing {attr!r})")
        self._planner, self._planner_path, self._planner_info = planner, path, info
        ptask = getattr(planner, "task", None)
        if ptask is not None and (self._task is None or ptask.name != self._task.name):
            self.task = ptask
        lo, hi = (tuple(planner.rtg_range) if getattr(planner, "rtg_range", None) is not None
                  else (self._dataset.rtg_range() if self._dataset else (0.0, 1.0)))
        rtg = float(np.clip(self.rtg if self._plan is not None else self.default_rtg(), lo, hi))
        self._plan = None
        self._condition = replace(self._condition, rtg=rtg, held_tokens=None)  # another model's tokens mean nothing
        self._overlay = replace(self._overlay, alternatives=(), alternatives_scale=0)
        self.events.planner.emit(planner)
        self.events.condition.emit(self._condition)

    def close_planner(self) -> None:
        """Forget the loaded checkpoint and its plan (e.g. when the scene switches to a task it was not trained for)."""
        self._planner = self._planner_path = self._planner_info = None
        self._plan = None
        self.events.planner.emit(None)

    def compatibility(self, planner=None, dataset: DatasetView | None = None) -> list[str]:
        """Human-readable problems between a planner and the current dataset/task (empty = compatible)."""
        planner = planner or self._planner
        dataset = dataset or self._dataset
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

    # ---- condition ---------------------------------------------------------------------------------------------
    @property
    def condition(self) -> Condition:
        """The whole condition (read-only: assign its parts)."""
        return self._condition

    def _set_condition(self, **changes) -> None:
        self._condition = replace(self._condition, **changes)
        self.events.condition.emit(self._condition)

    @property
    def rtg(self) -> float:
        """The RTG target (any finite number; the Condition dock keeps it within the data's range)."""
        return self._condition.rtg

    @rtg.setter
    def rtg(self, value) -> None:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise MageError(f"the RTG target must be a number, got {value!r}") from None
        if not np.isfinite(v):
            raise MageError(f"the RTG target must be a finite number, got {v}")
        self._set_condition(rtg=v)

    @property
    def seed(self) -> int:
        """The sampling seed of the plans (Plan dock: Seed / Resample); closed-loop runs use it too."""
        return self._condition.seed

    @seed.setter
    def seed(self, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise MageError(f"the seed must be a whole number of 0 or more, got {value!r}")
        self._set_condition(seed=int(value))

    @property
    def held_tokens(self) -> tuple | None:
        """The token maps of scales 1..k the plans hold (Plan dock: Hold scales 1..k, or an adopted alternative):
        re-plans and closed-loop runs sample only the finer scales. Moving the start or the goal, another start
        state, task or checkpoint releases them. Maps of the wrong number or shape for the planner are refused."""
        return self._condition.held_tokens

    @held_tokens.setter
    def held_tokens(self, maps) -> None:
        self._set_condition(held_tokens=self._held(maps))

    def _held(self, maps) -> tuple | None:
        if maps is None or len(maps) == 0:
            return None
        held = tuple(np.asarray(t, dtype=np.int64).reshape(-1) for t in maps)
        scales = tuple(getattr(self._planner, "scales", ()) or ())
        if len(held) > len(scales) or any(len(t) != scales[k] for k, t in enumerate(held)):
            raise MageError(f"held token maps of sizes {[len(t) for t in held]} do not fit the planner's scales "
                            f"{scales}")
        return held

    def adopt(self, maps, seed: int) -> None:
        """Hold these coarse token maps and plan with this seed, in one condition change (an adopted alternative:
        with the seed it was completed with, the plan is that alternative again)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise MageError(f"the seed must be a whole number of 0 or more, got {seed!r}")
        self._set_condition(held_tokens=self._held(maps), seed=int(seed))

    @property
    def held_scales(self) -> int:
        """How many coarse scales the plans hold (0: none)."""
        return len(self._condition.held_tokens or ())

    @property
    def start_xy(self) -> np.ndarray | None:
        """(2,) the agent's start, for suites whose points are placed in the scene; a start the suite refuses (e.g.
        inside a wall) is a MageError."""
        return self._condition.start_xy

    @start_xy.setter
    def start_xy(self, xy) -> None:
        self._place("start", xy)

    @property
    def goal_xy(self) -> np.ndarray | None:
        """(2,) the goal, for suites whose points are placed in the scene; refused like the start."""
        return self._condition.goal_xy

    @goal_xy.setter
    def goal_xy(self, xy) -> None:
        self._place("goal", xy)

    def _place(self, which: str, xy) -> None:
        if self._task is None:
            raise MageError(f"there is no task to place the {which} in")
        self._task.suite.check_point(self._task, which, xy)
        self._set_condition(**{f"{which}_xy": np.asarray(xy, dtype=float)[:2], "held_tokens": None})

    def set_start(self, xy) -> bool:
        """Move the start; a refused start is reported as a warning (notify). Returns whether it was accepted."""
        return self._try_place("start", xy)

    def set_goal(self, xy) -> bool:
        """Move the goal; a refused goal is reported as a warning (notify). Returns whether it was accepted."""
        return self._try_place("goal", xy)

    def _try_place(self, which: str, xy) -> bool:
        if self._task is None:
            return False
        try:
            self._place(which, xy)
        except MageError as exc:
            self.events.notify.emit("warning", str(exc))
            return False
        return True

    @property
    def state_template(self) -> np.ndarray | None:
        """(D,) the initial observation plans start from in suites without placed points (a dataset state or an
        evaluation reset); setting one there clears the start point."""
        return self._condition.state_template

    @state_template.setter
    def state_template(self, obs) -> None:
        template = np.asarray(obs, dtype=np.float32)
        if template.ndim != 1:
            raise MageError(f"a start state is one flat observation, got an array of shape {template.shape}")
        changes = {"state_template": template, "held_tokens": None}  # a held coarse plan belongs to its start
        if self._task is not None and not self._task.suite.editable(self._task).points:
            changes["start_xy"] = None
        self._set_condition(**changes)

    def reset_state(self, seed: int = 0) -> None:
        """Start from the evaluation env reset with this seed (suites without editable points: robots); an env that
        cannot be made is reported as a warning."""
        from mage_core.render import MODEL_LOCK

        if self._task is None:
            return
        try:
            with MODEL_LOCK:
                env = self._task.make_env(mode="eval")
                obs, _ = env.reset(seed=int(seed))
                env.close()
        except MageError as exc:
            self.events.notify.emit("warning", str(exc))
            return
        self.state_template = self._task.flatten_obs(obs)

    def condition_obs(self) -> np.ndarray:
        """(D,) the observation the next plan is conditioned on (robots without a start state: the evaluation
        reset with seed 0)."""
        from mage_studio.rollout import condition_obs

        c = self._condition
        if c.state_template is None and self._task is not None and not self._task.suite.editable(self._task).points:
            self.reset_state(0)
            c = self._condition
        return condition_obs(self._task, c.start_xy, c.goal_xy, getattr(self._planner, "obs_dim", None),
                             c.state_template)

    def default_rtg(self) -> float:
        """The dataset's default target when one is loaded, else 3/4 of the planner's RTG range."""
        if self._dataset is not None:
            return self._dataset.default_rtg()
        lo, hi = self.rtg_range()
        return lo + 0.75 * (hi - lo)

    def rtg_range(self) -> tuple[float, float]:
        """The RTG labels the planner saw in training (else the dataset's, else 0 to the episode length)."""
        if self._planner is not None and getattr(self._planner, "rtg_range", None) is not None:
            lo, hi = self._planner.rtg_range
            return float(lo), float(hi)
        if self._dataset is not None:
            return self._dataset.rtg_range()
        if self._task is not None:
            return 0.0, float(self._task.eval_steps)
        return 0.0, 1.0

    def places_points(self) -> bool:
        """Whether the current task's suite takes its start and goal as points placed in the scene."""
        return self._task is not None and bool(self._task.suite.editable(self._task).points)

    # ---- plan --------------------------------------------------------------------------------------------------
    @property
    def plan(self):
        """The latest Plan for the condition (None: none yet, or dropped with its task or planner)."""
        return self._plan

    @plan.setter
    def plan(self, plan) -> None:
        self._plan = plan
        if plan is not None:
            self.plans_done += 1
        self.events.plan.emit(plan)

    @property
    def plan_ms(self) -> float:
        """The planner's own time for the current plan (0 without one)."""
        return float((getattr(self._plan, "timings_ms", None) or {}).get("total", 0.0))

    # ---- view --------------------------------------------------------------------------------------------------
    @property
    def view_mode(self) -> str:
        """What the view shows: "condition" (the condition's plan), "run" (a closed-loop step) or "replay" (a
        dataset episode)."""
        return self._view_mode

    @view_mode.setter
    def view_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            raise MageError(f"the view mode is one of {', '.join(VIEW_MODES)}; got {mode!r}")
        self._view_mode = mode
        self.events.view_mode.emit(mode)

    @property
    def run_frame(self):
        """The closed-loop step on screen (a rollout.RunFrame), or None when no run is shown."""
        return self._run_frame

    @run_frame.setter
    def run_frame(self, frame) -> None:
        self._run_frame = frame
        self.events.run_frame.emit(frame)

    @property
    def overlay(self) -> OverlaySettings:
        """What the view draws besides the plan: visible scales, the hovered token, a compared plan."""
        return self._overlay

    @overlay.setter
    def overlay(self, settings: OverlaySettings) -> None:
        if not isinstance(settings, OverlaySettings):
            raise MageError(f"overlay settings are an OverlaySettings, got {settings!r}")
        self._overlay = settings
        self.events.overlay.emit(settings)

    def update_overlay(self, **changes) -> None:
        """Change some overlay settings (emits `overlay` once)."""
        self.overlay = replace(self._overlay, **changes)

    @property
    def tool(self) -> str:
        """What a left-drag in the scene does: "navigate" (orbit), "start" or "goal" (place that point)."""
        return self._tool

    @tool.setter
    def tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise MageError(f"the scene tool is one of {', '.join(TOOLS)}; got {tool!r}")
        self._tool = tool
        self.events.tool.emit(tool)
