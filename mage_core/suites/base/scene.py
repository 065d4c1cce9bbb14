"""The scene facet of a suite: what of the initial state a user edits, and how the studio and the renderer pose,
draw and frame the task's MuJoCo scene."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base.task import Task


_SCRATCH: dict = {}  # (id(model), slot) -> [model, MjData, lock]: the scratch data posing code borrows
_SCRATCH_LOCK = threading.Lock()
SCRATCH_MAX = 8  # scratch MjData kept (the oldest unused one dropped first)


@contextmanager
def scratch_data(model, slot: int = 0):
    """`with scratch_data(model) as data:` a freshly reset MjData of `model`, held by this thread for the block;
    `slot` tells apart two used at once. Allocating an MjData costs more than posing a plan's steps on a hand
    model, so posing code borrows this one."""
    import mujoco

    key = (id(model), slot)
    with _SCRATCH_LOCK:
        hit = _SCRATCH.get(key)
        if hit is None or hit[0] is not model:
            _SCRATCH.pop(key, None)
            for old in [k for k, v in _SCRATCH.items() if not v[2].locked()][:max(0, len(_SCRATCH) + 1 - SCRATCH_MAX)]:
                _SCRATCH.pop(old)
            hit = _SCRATCH[key] = [model, mujoco.MjData(model), threading.Lock()]
    with hit[2]:
        mujoco.mj_resetData(model, hit[1])
        yield hit[1]


@dataclass
class EditableState:
    """What of the initial state a user may edit in this suite (the studio builds its Condition controls from it)."""

    points: tuple = ()  # named 2-D points the user may place by clicking in the scene, e.g. ("start", "goal")
    from_dataset: bool = True  # a dataset state (episode, step) may be picked as the start
    from_reset: bool = True  # an evaluation reset with a seed may be picked as the start


class SceneFacet:
    """Initial state and scene. The defaults: the start is a dataset state or an evaluation reset (no points to
    place), the robot cannot be posed from an observation (plans are plotted only), the camera looks at the model's
    centre. A robot suite overrides `can_pose` and `pose` (and `key_point_names` / `key_points` for the paths drawn);
    a suite whose user places points overrides `editable`, `default_points`, `check_point`, `condition_obs`,
    `reset_env_to` and `place`.

    Naming: obs_D is one flattened observation, states_HD a planned trajectory of them.
    """

    draws_ghosts = True  # plans are shown as ghost robots posed along the plan (False: key-point paths only)

    # ---- initial state -------------------------------------------------------------------------------------------
    def editable(self, task: Task) -> EditableState:
        """What of the initial state the user may edit."""
        return EditableState()

    def default_points(self, task: Task) -> dict[str, np.ndarray]:
        """Default positions of the editable points (the evaluation protocol's start and goal for mazes)."""
        return {}

    def check_point(self, task: Task, which: str, xy) -> None:
        """Raise a MageError when a point (e.g. a start inside a wall) is not allowed."""

    def condition_obs(self, task: Task, points: dict, obs_dim: int, template: np.ndarray | None = None) -> np.ndarray:
        """The observation a plan is conditioned on, from the editable points and a state template."""
        if template is None:
            raise MageError(f"{task.name}: pick a start state (a dataset state or an evaluation reset)")
        obs = np.asarray(template, np.float32).copy()
        if obs.shape[-1] != obs_dim:
            raise MageError(f"start state has {obs.shape[-1]} dims but the checkpoint expects {obs_dim}")
        return obs

    def reset_env_to(self, task: Task, env, points: dict):
        """Reset an evaluation env (already reset) to the edited points; returns the flattened observation or None."""
        return None

    def reset_env_to_obs(self, task: Task, env, obs_D: np.ndarray):
        """Move an (already reset) evaluation env to the state an observation describes (a dataset state to Run
        from); returns the env's flattened observation there, or None when the suite cannot."""
        return None

    # ---- posing --------------------------------------------------------------------------------------------------
    def place(self, task: Task, model, data, xy, vel=None) -> None:
        """Move the agent to a point the user picked (suites whose editable() has points)."""
        raise MageError(f"{task.name}: the agent cannot be placed by a point; pick a start state")

    def can_pose(self, task: Task, model, obs_dim: int) -> bool:
        """Whether pose() can set the MuJoCo state from an observation of this size."""
        return False

    def pose(self, task: Task, model, data, obs_D: np.ndarray) -> None:
        """Set data.qpos (and the kinematics) from one flattened observation. Needs can_pose()."""
        raise MageError(f"{task.name}: observations do not map onto the MuJoCo state; plots only")

    def pose_path(self, task: Task, model, states_HD: np.ndarray, steps=None) -> list[np.ndarray]:
        """qpos for each planned step, or only for the step indices `steps` (a ghost's few: posing can be a fit, so
        steps nobody draws are never posed). Suites that integrate unobserved positions (a walker's x) override."""
        out = []
        with scratch_data(model) as data:
            for i in (range(len(states_HD)) if steps is None else steps):
                self.pose_in_scene(task, model, data, states_HD[int(i)])
                out.append(data.qpos.copy())
        return out

    def example_condition(self, task: Task, obs_dim: int | None) -> np.ndarray | None:
        """An observation to plan from when nobody chose one (a planner's warm-up): the condition of the suite's
        default points, or None where the suite has none (the caller then uses any state of the right size)."""
        if not self.editable(task).points:
            return None
        return self.condition_obs(task, self.default_points(task), obs_dim)

    def pose_in_scene(self, task: Task, model, data, obs_D: np.ndarray) -> None:
        """pose() for a planned state drawn in a scene already posed from the condition: suites whose pose() also
        fits per-episode scene constants into the model (a door frame's place) keep them as they are."""
        self.pose(task, model, data, obs_D)

    # ---- drawing -------------------------------------------------------------------------------------------------
    def style_scene(self, task: Task, model) -> None:
        """Recolour the loaded MuJoCo model for the viewport (walls, floor, agent)."""

    def hide_for_ghost(self, task: Task, model) -> set:
        """Geom ids not to draw for ghosts (static world: floor, walls, targets)."""
        return {i for i in range(model.ngeom) if model.geom_bodyid[i] == 0}

    def draws_floor_path(self, task: Task) -> bool:
        """Whether the agent's path is drawn as an xy trail on the floor (its obs_slices name 'agent_xy': the mazes)
        rather than as 3-D key-point paths (robots)."""
        return "agent_xy" in self.obs_slices(task)

    def key_point_names(self, task: Task) -> tuple:
        """Names of the key points drawn as paths (e.g. ('agent',), ('palm', 'object', 'target'))."""
        return ()

    def key_points(self, task: Task, model, states_HD: np.ndarray) -> dict[str, np.ndarray]:
        """Per key point, its (H, 3) world positions along a planned trajectory."""
        return {}

    def camera(self, task: Task, model, aspect: float):
        """The default camera pose for this task's scene (a render.CameraPose)."""
        from mage_core.render import CameraPose, _model_for_camera

        model = model if model is not None else _model_for_camera(task)  # no scene at hand: the model's stats only
        extent = float(getattr(model.stat, "extent", 2.0))
        center = tuple(float(v) for v in model.stat.center)
        return CameraPose(center, 1.6 * extent, 135.0, -25.0)

    def orbit_camera(self, task: Task, model=None):
        """The free orbit camera's starting pose (default: the suite's camera)."""
        return self.camera(task, model, 4 / 3)

    def summary(self, task: Task) -> str:
        """One line on what the studio can show for this task (e.g. 'plots only: observations do not map to qpos')."""
        return ""

    def sub_goals(self, task: Task, states_TD: np.ndarray) -> list[tuple[str, int | None]]:
        """The task's sub-goals along a trajectory of observations, in their order: (name, the first step at which it
        is done, or None). Empty for a task without sub-goals (the kitchen's sub-tasks are some)."""
        return []


def progress_line(goals: list[tuple[str, int | None]], what: str = "sub-tasks") -> str:
    """'sub-tasks 2/4: microwave ✓ step 12, kettle ✓ step 40, light switch –, slide cabinet –' (empty without
    goals)."""
    if not goals:
        return ""
    done = sum(step is not None for _, step in goals)
    parts = [f"{name} ✓ step {step}" if step is not None else f"{name} –" for name, step in goals]
    return f"{what} {done}/{len(goals)}: " + ", ".join(parts)
