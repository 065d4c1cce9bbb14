"""Qt-free closed-loop execution for the studio: start/goal placement, condition observations, replanning rollouts."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mage_core.errors import MageError


def condition_obs(task, start_xy, goal_xy, obs_dim: int | None = None, template=None) -> np.ndarray:
    """The flattened observation for a chosen start (at rest) and goal; non-maze tasks use a dataset state template."""
    if task.is_maze:
        s = np.asarray(start_xy, dtype=np.float32)[:2]
        g = np.asarray(goal_xy, dtype=np.float32)[:2]
        obs = {"observation": np.concatenate([s, np.zeros(2, np.float32)]), "desired_goal": g, "achieved_goal": s}
        flat = task.flatten_obs(obs)
    elif template is not None:
        flat = np.asarray(template, dtype=np.float32).reshape(-1)
    else:
        raise MageError(f"task {task.name} is not a maze: pick an initial state from the dataset")
    if obs_dim is not None and len(flat) != obs_dim:
        raise MageError(f"the condition has {len(flat)} observation dims but the planner expects {obs_dim}")
    return flat


def window_rtg(target: float, reward_sum: float, t: int, rtg_mode: str = "window") -> float:
    """RTG to condition on at step t (ARCHITECTURE.md): target - reward received (+ steps elapsed for the window relabel).

    The planner then clamps it to the data's range and to the return ceiling of the current state.
    """
    return float(target - reward_sum + (t if rtg_mode == "window" else 0))


@dataclass
class StepResult:
    """One closed-loop step: the plan used, the action, what the environment returned."""

    plan: object  # the Plan computed at this step (None when replanning was skipped)
    action_A: np.ndarray  # action executed
    obs: np.ndarray  # flattened observation after the step
    xy: np.ndarray  # agent position after the step
    reward: float  # reward of this step
    done: bool  # episode over (terminated or truncated)
    success: bool  # the agent is within the goal radius


@dataclass
class ClosedLoop:
    """Runs a planner in the task's evaluation env from a chosen start/goal, replanning every `replan_every` steps."""

    task: object  # mage_core Task
    planner: object  # Planner (or anything with .plan(obs, rtg, seed=...) -> Plan)
    rtg_target: float  # user's target G for the episode
    replan_every: int = 1  # steps between replans (the policy repeats nothing: it replans at least every n steps)
    max_steps: int | None = None  # episode length (None = the task's evaluation length)
    seed: int = 0  # planner sampling seed base
    env: object = None  # the evaluation env (created on reset)
    t: int = 0  # steps taken
    reward_sum: float = 0.0  # return collected so far
    path_xy: list = field(default_factory=list)  # agent positions, start included
    obs: np.ndarray | None = None  # current flattened observation
    last_plan: object = None  # the most recent Plan
    success_steps: int = 0  # steps spent inside the goal radius
    _plan_t0: int = 0  # step at which last_plan was made

    def reset(self, start_xy=None, goal_xy=None, state=None) -> np.ndarray:
        if self.env is None:
            from mage_core.render import MODEL_LOCK

            with MODEL_LOCK:
                self.env = self.task.make_env(mode="eval")
        obs, _ = self.env.reset(seed=self.seed)
        u = self.env.unwrapped
        if self.task.is_maze:
            geo = self.task.geometry
            if start_xy is not None:
                geo.check_free(start_xy, "start")
            if goal_xy is not None:
                geo.check_free(goal_xy, "goal")
                u.goal = np.asarray(goal_xy, dtype=np.float64)[:2].copy()
                u.update_target_site_pos()
            if start_xy is not None:
                import mujoco

                u.data.qpos[:2] = np.asarray(start_xy, dtype=np.float64)[:2]
                u.data.qvel[:] = 0.0
                mujoco.mj_forward(u.model, u.data)
            xy = u.data.qpos[:2].copy()
            self.obs = condition_obs(self.task, xy, u.goal)
        else:
            self.obs = self.task.flatten_obs(obs)
            xy = np.asarray(self.obs[:2], dtype=float)
        self.t, self.reward_sum, self.success_steps = 0, 0.0, 0
        self.path_xy = [np.asarray(xy, dtype=float)]
        self.last_plan = None
        return self.obs

    @property
    def horizon(self) -> int:
        return int(self.max_steps or self.task.eval_steps)

    @property
    def done(self) -> bool:
        return self.t >= self.horizon

    def step(self) -> StepResult:
        if self.obs is None:
            self.reset()
        plan = None
        k = self.t % max(1, self.replan_every)
        if self.last_plan is None or k == 0:
            rtg = window_rtg(self.rtg_target, self.reward_sum, self.t, getattr(self.task, "rtg_mode", "window"))
            plan = self.planner.plan(self.obs, rtg, seed=self.seed + self.t)
            self.last_plan = plan
            self._plan_t0 = self.t
            action = np.asarray(plan.action_A, dtype=np.float32)
        elif self.task.is_maze:  # between replans: track the finest plan's positions with the maze PD controller
            from mage_core.maze import pd_action

            states = np.asarray(self.last_plan.states_KHD)[-1]
            target = states[min(self.t - self._plan_t0 + 1, len(states) - 1), :2]
            action = pd_action(self.obs[:2], self.obs[2:4], target).astype(np.float32)
        else:  # no position to track: hold the last planned action
            action = np.asarray(self.last_plan.action_A, dtype=np.float32)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.obs = self.task.flatten_obs(obs)
        self.t += 1
        self.reward_sum += float(reward)
        if self.task.is_maze:
            xy = self.env.unwrapped.data.qpos[:2].copy()
        else:
            xy = np.asarray(self.obs[:2], dtype=float)
        self.path_xy.append(xy)
        success = bool(info.get("success", reward > 0))
        self.success_steps += int(success)
        done = bool(terminated or truncated) or self.done
        return StepResult(plan, action, self.obs, xy, float(reward), done, success)

    def run(self, steps: int) -> float:
        """Run up to `steps` steps (or to the end of the episode); returns the return collected so far."""
        for _ in range(steps):
            if self.step().done:
                break
        return self.reward_sum

    def close(self):
        if self.env is not None:
            from mage_core.render import MODEL_LOCK

            with MODEL_LOCK:
                self.env.close()
            self.env = None
