"""The protocol facet of a suite: envs, the flattened observation's layout, the reference expert, acting and
diagnostics, and what the suite tells the model and the baselines about its tasks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base.envs import gym_make
from mage_core.suites.base.task import Task

# Outside the goal, MAGE conditions on being there within this many steps (window relabel; chosen on held-out episodes
# of pointmaze-large after leaving the goal and of antmaze-umaze before the first reach; 0 = the plain bookkeeping).
# The default of Suite.regoal_steps; suites may differ.
REGOAL_STEPS = 20


@dataclass(frozen=True)
class HeadFrame:
    """A suite's input transform for MAGE's plan-reading action head (ModelConfig.inv_frame): the raw condition state
    and the raw decoded rows at the lookahead steps -> features, e.g. the robot's proprioception and its planned
    positions in its own heading frame, so the head need not learn the rotation itself."""

    features: Callable  # (s_BD raw flattened obs, rows_BLD raw (R, s) plan rows at the lookahead steps, steps) -> f_BF
    dim: Callable  # lookahead steps (tuple) -> F
    obs_dim: int  # the flattened observation size the frame is written for


class ProtocolFacet:
    """Envs, observations and the evaluation protocol. The defaults describe a bare MuJoCo env evaluated as
    gymnasium makes it: no named observation parts, dense reward, no reference expert, no 'track' executor. A suite
    names its observation's parts in `obs_slices` (`agent_xy` and `goal_xy` make a goal-reaching task of a
    window-RTG one) and offers its noise-free expert in `expert_policy` (the reference scores of its datasets are
    measured from it).

    Naming: obs_D is one flattened observation (the layout Task.flatten_obs produces), obs_ND a batch of them.
    """

    has_tracker = False  # track_action() can follow a decoded plan with a controller

    # ---- envs and observations -----------------------------------------------------------------------------------
    def make_env(self, task: Task, mode: str = "eval", render_mode: str | None = None, **overrides):
        """A gymnasium env of the task: mode 'eval' the evaluation protocol (eval_kwargs, eval_steps), 'data' the
        data protocol (env_kwargs)."""
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

    def flatten_dataset_obs(self, task: Task, obs) -> np.ndarray:
        """A recorded episode's observations (an array, or a Dict of per-key arrays over its T steps) -> (T, D)
        float32 in the layout the task's envs give (Dict keys: task.obs_keys in order, or every key sorted if none
        match). A suite whose datasets store observations differently (nested Dicts) overrides it."""
        if isinstance(obs, dict):
            n = len(next(iter(obs.values())))
            keys = [k for k in task.obs_keys if k in obs] or sorted(obs)
            return np.concatenate([np.asarray(obs[k], np.float32).reshape(n, -1) for k in keys], axis=1)
        return np.asarray(obs, np.float32).reshape(len(obs), -1)

    def obs_slices(self, task: Task) -> dict[str, slice]:
        """Named parts of the flattened observation (e.g. 'agent_xy', 'goal_xy'); empty when nothing is known."""
        return {}

    def check_obs(self, task: Task, obs_D: np.ndarray, expected_dim: int | None = None) -> None:
        """Raise a MageError when an observation cannot belong to this task (wrong size, NaN)."""
        obs_D = np.asarray(obs_D)
        if expected_dim is not None and obs_D.shape[-1] != expected_dim:
            raise MageError(f"observation has {obs_D.shape[-1]} dims but {task.name} expects {expected_dim}")
        if not np.all(np.isfinite(obs_D)):
            raise MageError("observation contains NaN or inf values")

    def goal_reaching(self, task: Task) -> bool:
        """Whether the task is reaching a goal point in the plane (the mazes): sparse window RTG, and the observation
        names the agent's and the goal's xy (Diffuser inpaints that goal; `mage plan` reports the distance to it)."""
        sl = self.obs_slices(task)
        return task.rtg_mode == "window" and "agent_xy" in sl and "goal_xy" in sl

    def sparse_goal_reward(self, task: Task) -> bool:
        """Whether the reward pays only at the goal (the mazes): any positive reward means success, and episodes end
        only by timeout (continuing task); else a dense reward whose recorded terminations are true ends."""
        return task.rtg_mode == "window"

    def reports_success(self, task: Task) -> bool:
        """Whether the task has a goal whose reaching counts as success, so a success rate is reported; False where
        an episode ends only by failing or by the time limit (locomotion: a termination is a fall), shown as 'n/a'."""
        return True

    def regoal_steps(self, task: Task) -> int:
        """MAGE's default condition cap while the agent is outside the goal: plan to be at the goal within this many
        steps (mage_core.rtg.RTGTracker; 0 = off, as on tasks whose reward is not paid only at a goal).
        `--regoal-steps` overrides it."""
        return REGOAL_STEPS if self.sparse_goal_reward(task) else 0

    def goal_point(self, task: Task, obs_D: np.ndarray) -> np.ndarray | None:
        """The goal's xy in flattened observation(s) (..., D) of a goal-reaching task; None for other tasks."""
        return np.asarray(obs_D)[..., self.obs_slices(task)["goal_xy"]].copy() if self.goal_reaching(task) else None

    def agent_point(self, task: Task, obs_D: np.ndarray) -> np.ndarray | None:
        """The agent's xy in flattened observation(s) (..., D) of a task drawn as a floor path (the mazes); None for
        tasks drawn as robots."""
        sl = self.obs_slices(task).get("agent_xy")
        return None if sl is None else np.asarray(obs_D)[..., sl].copy()

    # ---- reference expert and acting -----------------------------------------------------------------------------
    def expert_policy(self, task: Task):
        """The noise-free reference expert on the evaluation protocol (an evaluate.Policy), or None."""
        return None

    def track_action(self, task: Task, obs_ND: np.ndarray, target_ND: np.ndarray) -> np.ndarray:
        """Actions that steer each env towards a planned observation (the 'track' executor; needs has_tracker)."""
        raise MageError(f"the 'track' executor is not available for {task.name}; use 'inverse'")

    # ---- diagnostics ---------------------------------------------------------------------------------------------
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

    # ---- what the model and the baselines are told ---------------------------------------------------------------
    def head_frames(self) -> dict:
        """Named HeadFrames this suite offers MAGE's action head (`mage train --inv-frame NAME`); none by default."""
        return {}

    def baseline_settings(self, task: Task, algo: str) -> dict:
        """Hyperparameters a baseline's authors set for this task family, applied over the baseline's preset when a
        run starts (e.g. IQL's expectile and temperature on AntMaze); none by default."""
        return {}
