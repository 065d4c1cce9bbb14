"""The suite interface: everything task-specific about one task family (envs, observation layout, protocol, data,
executor, editable initial state, scene hooks), behind one class the engine and the studio ask instead of testing
what kind of task they hold."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from mage_core.errors import MageError


@dataclass
class Task:
    """One task of a suite: which env it uses, its default dataset, horizon and evaluation protocol."""

    name: str  # registry key, e.g. "pointmaze-umaze"
    env_id: str  # gymnasium id, e.g. "PointMaze_UMaze-v3"
    suite_name: str = "generic"  # the Suite that owns this task (mage_core.suites.SUITES key)
    env_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make when generating data
    eval_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make for the evaluation protocol
    dataset_id: str = ""  # default local Minari dataset id
    horizon: int = 64  # default segment horizon H (steps)
    downsample: int = 0  # default temporal downsampling r of MAGE's autoencoder for this task (0 = the preset's)
    eval_steps: int = 300  # evaluation episode length
    obs_keys: tuple = ("observation", "desired_goal")  # Dict-observation keys concatenated by flatten_obs, in order
    data_max_episode_steps: int = 1000  # cap on one generated episode before it is truncated
    rtg_mode: str = "window"  # "window": sparse goal-reaching relabel (see segments.relabel_rtg); "dense": plain RTG
    params: dict = field(default_factory=dict)  # suite-specific facts (maze map, evaluation cells, ...); only the suite reads them

    @property
    def suite(self) -> "Suite":
        from mage_core.suites import get_suite

        return get_suite(self.suite_name)

    def flatten_obs(self, obs: Any) -> np.ndarray:
        """One observation (Box array or Dict) -> flat float32 vector (goal included for goal-conditioned tasks)."""
        return flatten_obs(obs, self.obs_keys)

    def make_env(self, mode: str = "eval", render_mode: str | None = None, **overrides):
        """A gymnasium env for this task; mode 'eval' applies the suite's evaluation protocol, 'data' its data protocol."""
        return self.suite.make_env(self, mode, render_mode, **overrides)


def flatten_obs(obs: Any, keys: tuple = ("observation", "desired_goal")) -> np.ndarray:
    """Flatten a Box observation or a Dict one (the named keys in order, or every key sorted if none match)."""
    if isinstance(obs, dict):
        use = [k for k in keys if k in obs] or sorted(obs)
        return np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in use])
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def import_robotics():
    """Import gymnasium_robotics (registers its envs) without its import-time Adroit reward notice on stderr."""
    try:
        from farama_notifications import notifications

        notifications.pop("gymnasium_robotics", None)  # an Adroit v1 notice unrelated to the tasks used here
    except ImportError:
        pass
    import gymnasium_robotics

    return gymnasium_robotics


# Outside the goal, MAGE conditions on being there within this many steps (window relabel; chosen on held-out episodes:
# pointmaze-large after leaving the goal, docs/BENCHMARKS.md "Tenth session on issue 14", and antmaze-umaze before the
# first reach, "Fourteenth session"; 0 = the plain bookkeeping). The default of Suite.regoal_steps; suites may differ.
REGOAL_STEPS = 20
ROBOTICS_PREFIXES = ("PointMaze", "AntMaze", "Adroit", "FrankaKitchen", "Fetch", "HandManipulate", "HandReach")


def gym_make(env_id: str, task_name: str, **kwargs):
    """gym.make with gymnasium-robotics registered when needed and a MageError naming the task on failure."""
    import gymnasium as gym

    if env_id.startswith(ROBOTICS_PREFIXES):
        gym.register_envs(import_robotics())
    import warnings

    try:
        with warnings.catch_warnings():  # a suite picks its env version on purpose (AntMaze v4: Minari's datasets)
            warnings.filterwarnings("ignore", message=r".*is out of date.*")
            env = gym.make(env_id, **kwargs)
    except Exception as exc:  # unknown env id, missing package, bad kwargs
        raise MageError(f"cannot create environment {env_id!r} for task {task_name}: {exc}") from exc
    _remove_maze_xml(env)
    return env


def _remove_maze_xml(env) -> None:
    """gymnasium-robotics writes each maze's MuJoCo XML to a new temp file and never deletes it; once the model is
    loaded the file is not needed, so remove it rather than leave thousands behind in /tmp."""
    import os
    import tempfile

    path = getattr(env.unwrapped, "tmp_xml_file_path", None)
    if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(tempfile.gettempdir()):
        try:
            os.remove(path)
        except OSError:
            pass


@dataclass(frozen=True)
class HeadFrame:
    """A suite's input transform for MAGE's plan-reading action head (ModelConfig.inv_frame): the raw condition state
    and the raw decoded rows at the lookahead steps -> features, e.g. the robot's proprioception and its planned
    positions in its own heading frame, so the head need not learn the rotation itself."""

    features: Callable  # (s_BD raw flattened obs, rows_BLD raw (R, s) plan rows at the lookahead steps, steps) -> f_BF
    dim: Callable  # lookahead steps (tuple) -> F
    obs_dim: int  # the flattened observation size the frame is written for


@dataclass
class EditableState:
    """What of the initial state a user may edit in this suite (the studio builds its Condition controls from it)."""

    points: tuple = ()  # named 2-D points the user may place by clicking in the scene, e.g. ("start", "goal")
    dims: tuple = ()  # (name, slice) observation dims the user may type in, e.g. (("door angle", slice(28, 29)),)
    from_dataset: bool = True  # a dataset state (episode, step) may be picked as the start
    from_reset: bool = True  # an evaluation reset with a seed may be picked as the start


class Suite:
    """One task family. Subclasses override what their family supports; the defaults describe a bare MuJoCo env.

    Naming: obs_D is one flattened observation (the layout the suite's flatten_obs produces), obs_ND a batch of them,
    states_HD a planned trajectory of observations.
    """

    name = "base"  # registry key
    title = "Base"  # human-readable family name
    has_generator = False  # collect_buffers() can make a dataset for its tasks
    has_tracker = False  # track_action() can follow a decoded plan with a controller
    draws_ghosts = True  # plans are shown as ghost robots posed along the plan (False: key-point paths only)

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        """The built-in tasks of this suite (may be empty: tasks then come from datasets)."""
        return []

    def claims(self, env_id: str, spec: dict, meta: dict) -> bool:
        """Whether a dataset recorded with this env spec belongs to this suite."""
        return False

    def task_for_spec(self, meta: dict, spec: dict, eval_spec: dict) -> Task:
        """A Task for a dataset of an env this suite claims that matches none of its built-in tasks."""
        steps = int(eval_spec.get("max_episode_steps") or spec.get("max_episode_steps") or 1000)
        # Dict observations keep the agent's own position (achieved_goal) as well as the goal
        return Task(name=str(meta.get("dataset_id")), env_id=spec["id"], suite_name=self.name,
                    obs_keys=("observation", "achieved_goal", "desired_goal"),
                    env_kwargs=dict(spec.get("kwargs") or {}), eval_kwargs=dict(eval_spec.get("kwargs") or {}),
                    dataset_id=str(meta.get("dataset_id")), horizon=32, eval_steps=steps, rtg_mode="dense")

    def matches_builtin(self, task: Task, meta: dict, spec: dict) -> bool:
        """Whether a dataset (metadata, env spec) was recorded for this built-in task."""
        return meta.get("dataset_id") == task.dataset_id

    # ---- envs and observations -----------------------------------------------------------------------------------
    def make_env(self, task: Task, mode: str = "eval", render_mode: str | None = None, **overrides):
        if not task.env_id:
            raise MageError(f"{task.name}: the dataset records no environment, so it cannot be evaluated, planned "
                            f"in a scene or drawn (it can still be trained on)")
        kwargs = dict(task.eval_kwargs if mode == "eval" else task.env_kwargs)
        if mode == "eval":
            kwargs.setdefault("max_episode_steps", task.eval_steps)
        kwargs.update(overrides)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        return gym_make(task.env_id, task.name, **kwargs)

    def obs_slices(self, task: Task) -> dict[str, slice]:
        """Named parts of the flattened observation (e.g. 'agent_xy', 'goal_xy'); empty when nothing is known."""
        return {}

    def goal_reaching(self, task: Task) -> bool:
        """Whether the task is reaching a goal point in the plane (the mazes): sparse window RTG, and the observation
        names the agent's and the goal's xy (Diffuser inpaints that goal; `mage plan` reports the distance to it)."""
        sl = self.obs_slices(task)
        return task.rtg_mode == "window" and "agent_xy" in sl and "goal_xy" in sl

    def regoal_steps(self, task: Task) -> int:
        """MAGE's default condition cap while the agent is outside the goal: plan to be at the goal within this many
        steps (mage_core.rtg.RTGTracker; 0 = off, as on tasks whose reward is not paid only at a goal).
        `--regoal-steps` overrides it."""
        return REGOAL_STEPS if self.sparse_goal_reward(task) else 0

    def sparse_goal_reward(self, task: Task) -> bool:
        """Whether the reward pays only at the goal (the mazes): any positive reward means success, and episodes end
        only by timeout (continuing task); else a dense reward whose recorded terminations are true ends."""
        return task.rtg_mode == "window"

    def goal_point(self, task: Task, obs_D: np.ndarray) -> np.ndarray | None:
        """The goal's xy in flattened observation(s) (..., D) of a goal-reaching task; None for other tasks."""
        return np.asarray(obs_D)[..., self.obs_slices(task)["goal_xy"]].copy() if self.goal_reaching(task) else None

    def agent_point(self, task: Task, obs_D: np.ndarray) -> np.ndarray | None:
        """The agent's xy in flattened observation(s) (..., D) of a task drawn as a floor path (the mazes); None for
        tasks drawn as robots."""
        sl = self.obs_slices(task).get("agent_xy")
        return None if sl is None else np.asarray(obs_D)[..., sl].copy()

    def check_obs(self, task: Task, obs_D: np.ndarray, expected_dim: int | None = None) -> None:
        """Raise a MageError when an observation cannot belong to this task (wrong size, NaN)."""
        obs_D = np.asarray(obs_D)
        if expected_dim is not None and obs_D.shape[-1] != expected_dim:
            raise MageError(f"observation has {obs_D.shape[-1]} dims but {task.name} expects {expected_dim}")
        if not np.all(np.isfinite(obs_D)):
            raise MageError("observation contains NaN or inf values")

    # ---- protocol ------------------------------------------------------------------------------------------------
    def expert_policy(self, task: Task):
        """The noise-free reference expert on the evaluation protocol (an evaluate.Policy), or None."""
        return None

    def reference_scores(self, task: Task, episodes: int = 20, seed: int = 10_000) -> tuple[float, float] | None:
        """(random, expert) mean returns measured on the evaluation protocol, or None without an expert."""
        from mage_core.evaluate import RandomPolicy, evaluate

        expert = self.expert_policy(task)
        if expert is None:
            return None
        env = task.make_env(mode="eval")
        act_dim = int(np.prod(env.action_space.shape))
        env.close()
        lo = evaluate(task, RandomPolicy(act_dim=act_dim, seed=seed), episodes=episodes, seeds=(seed,)).mean
        hi = evaluate(task, expert, episodes=episodes, seeds=(seed,)).mean
        return float(lo), float(hi)

    def builtin_reference_scores(self, task: Task) -> tuple[float, float] | None:
        """The suite's own reference scores for a dataset that carries none (a user's data of these envs)."""
        return None

    # ---- data ----------------------------------------------------------------------------------------------------
    def variants(self, task: Task) -> tuple:
        """Data variants the generator can make for a task, the default first (e.g. ('expert', 'human', 'cloned'))."""
        return ("expert",)

    def default_data_steps(self, task: Task, variant: str) -> int:
        """Steps `mage data make` records when --steps is not given."""
        return 1_000_000

    def dataset_id(self, task: Task, variant: str) -> str:
        """The local Minari id of a generated dataset of this task and variant."""
        return task.dataset_id if variant == self.variants(task)[0] else f"mage/{task.name}/{variant}-v0"

    def collect_buffers(self, task: Task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Roll out the suite's data policy for cfg.variant (a data.generate.GenerateConfig); Minari EpisodeBuffers."""
        raise MageError(f"no built-in data generator for {task.name} (suite {self.name}); bring a Minari dataset")

    def data_description(self, task: Task, cfg) -> tuple[str, str]:
        """(algorithm_name, description) recorded in a generated dataset's metadata."""
        return "unknown", task.name

    # ---- acting --------------------------------------------------------------------------------------------------
    def track_action(self, task: Task, obs_ND: np.ndarray, target_ND: np.ndarray) -> np.ndarray:
        """Actions that steer each env towards a planned observation (the 'track' executor)."""
        raise MageError(f"the 'track' executor is not available for {task.name}; use 'inverse'")

    def has_obstacles(self, task: Task) -> bool:
        """Whether wall_depth can say how deep a planned observation runs into an obstacle."""
        return False

    def wall_depth(self, task: Task, states_ND: np.ndarray) -> np.ndarray | None:
        """How deep each (planned) observation puts the agent inside an obstacle, in the task's cells (0 = free), for
        `mage diagnose --plans`; None where the suite knows no obstacles."""
        return None

    def episode_diagnostics(self, task: Task, obs_TD: np.ndarray, rewards_T: np.ndarray) -> dict:
        """How one evaluation episode went, beyond its return (`mage diagnose`); suites add task-specific measures."""
        r = np.asarray(rewards_T, dtype=float)
        return {"return": float(r.sum())}

    def diagnostics_summary(self, task: Task, rows: list[dict]) -> tuple[dict, str]:
        """What `mage diagnose` says over a run's episode_diagnostics rows: summary fields and one line (none here)."""
        return {}, ""

    # ---- initial state -------------------------------------------------------------------------------------------
    def editable(self, task: Task) -> EditableState:
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

    # ---- scene ---------------------------------------------------------------------------------------------------
    def style_scene(self, task: Task, model) -> None:
        """Recolour the loaded MuJoCo model for the viewport (walls, floor, agent)."""

    def hide_for_ghost(self, task: Task, model) -> set:
        """Geom ids not to draw for ghosts (static world: floor, walls, targets)."""
        return {i for i in range(model.ngeom) if model.geom_bodyid[i] == 0}

    def place(self, task: Task, model, data, xy, vel=None) -> None:
        """Move the agent to a point the user picked (suites whose editable() has points)."""
        raise MageError(f"{task.name}: the agent cannot be placed by a point; pick a start state")

    def can_pose(self, task: Task, model, obs_dim: int) -> bool:
        """Whether pose() can set the MuJoCo state from an observation of this size."""
        return False

    def pose(self, task: Task, model, data, obs_D: np.ndarray) -> None:
        """Set data.qpos (and the kinematics) from one flattened observation. Needs can_pose()."""
        raise MageError(f"{task.name}: observations do not map onto the MuJoCo state; plots only")

    def pose_path(self, task: Task, model, states_HD: np.ndarray) -> list[np.ndarray]:
        """qpos for each planned step (suites that integrate unobserved positions, e.g. a walker's x, override)."""
        import mujoco

        data = mujoco.MjData(model)
        out = []
        for s in states_HD:
            self.pose(task, model, data, s)
            out.append(data.qpos.copy())
        return out

    def head_frames(self) -> dict:
        """Named HeadFrames this suite offers MAGE's action head (`mage train --inv-frame NAME`); none by default."""
        return {}

    def baseline_settings(self, task: Task, algo: str) -> dict:
        """Hyperparameters a baseline's authors set for this task family, applied over the baseline's preset when a
        run starts (e.g. IQL's expectile and temperature on AntMaze); none by default."""
        return {}

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
