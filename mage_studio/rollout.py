"""Qt-free closed-loop execution for the studio: condition observations from the suite's editable state, rollouts that
drive the very PlannerPolicy `mage eval` scores (same RTG bookkeeping, replanning and executor), and the step shown."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base import progress_line


def condition_obs(task, start_xy, goal_xy, obs_dim: int | None = None, template=None) -> np.ndarray:
    """The flattened observation to plan from: the suite builds it from the editable points (maze start at rest and
    goal) or takes the state template (a dataset state or an evaluation reset) for suites without points."""
    suite = task.suite
    if suite.editable(task).points:
        if start_xy is None or goal_xy is None:
            raise MageError(f"{task.name}: place a start and a goal")
        return suite.condition_obs(task, {"start": start_xy, "goal": goal_xy}, obs_dim, template)
    if template is None:
        raise MageError(f"{task.name}: pick an initial state (a dataset state or an evaluation reset)")
    flat = np.asarray(template, dtype=np.float32).reshape(-1)
    if obs_dim is not None and len(flat) != obs_dim:
        raise MageError(f"the condition has {len(flat)} observation dims but the planner expects {obs_dim}")
    return flat


@dataclass
class StepResult:
    """One closed-loop step: the plan used, the action, what the environment returned."""

    plan: object  # the Plan computed at this step (None when replanning was skipped)
    action_A: np.ndarray  # action executed
    obs: np.ndarray  # flattened observation after the step
    xy: np.ndarray | None  # agent position after the step (maze suites; None for robots)
    reward: float  # reward of this step
    done: bool  # episode over (terminated or truncated)
    success: bool  # the env reports success (maze: within the goal radius)


@dataclass
class ClosedLoop:
    """Runs a planner's closed-loop policy (planner.policy(...), the one `mage eval` scores) in the task's evaluation
    env from the chosen condition, keeping each replan's full per-scale Plan for display."""

    task: object  # mage_core Task
    planner: object  # Planner (anything with .policy(target, replan_every, seed, keep_plan=True))
    rtg_target: float  # user's target G for the episode
    replan_every: int = 1  # steps between replans
    max_steps: int | None = None  # episode length (None = the task's evaluation length)
    seed: int = 0  # env reset and sampling seed
    executor: str = "inverse"  # how a plan becomes an action (planner.EXECUTORS)
    prefix_tokens: tuple | None = None  # an adopted plan's coarse token maps: the first replans hold them (see
    # PlannerPolicy: for the plan's horizon, while the model still agrees with them)
    env: object = None  # the evaluation env (created on reset)
    policy: object = None  # the PlannerPolicy being executed
    t: int = 0  # steps taken
    reward_sum: float = 0.0  # return collected so far
    last_reward: float = 0.0  # reward of the last step (fed to the policy at the next one)
    path_xy: list = field(default_factory=list)  # agent positions, start included (maze suites)
    path_xyz: list = field(default_factory=list)  # first key point's positions, start included (robot suites)
    obs_history: list = field(default_factory=list)  # every observation, start included (the sub-goals' progress)
    obs: np.ndarray | None = None  # current flattened observation
    last_plan: object = None  # the most recent Plan
    success_steps: int = 0  # steps in which the env reported success

    def reset(self, start_xy=None, goal_xy=None, state=None) -> np.ndarray:
        """Reset the env (seed), then move it to the edited points (mazes) or, for robots, to the picked start state
        where the suite can set the simulator from an observation (else the run starts from the evaluation reset)."""
        if self.env is None:
            from mage_core.render import MODEL_LOCK

            with MODEL_LOCK:
                self.env = self.task.make_env(mode="eval")
        obs, _ = self.env.reset(seed=self.seed)
        suite = self.task.suite
        points = {k: v for k, v in (("start", start_xy), ("goal", goal_xy)) if v is not None}
        placed = suite.reset_env_to(self.task, self.env, points) if points else None
        if placed is None and state is not None and not points:
            placed = suite.reset_env_to_obs(self.task, self.env, np.asarray(state, np.float32))
        self.obs = placed if placed is not None else self.task.flatten_obs(obs)
        self.t, self.reward_sum, self.last_reward, self.success_steps = 0, 0.0, 0.0, 0
        self.path_xy, self.path_xyz, self.obs_history = [], [], []
        self._record()
        self.last_plan = None
        held = {"prefix_tokens": list(self.prefix_tokens)} if self.prefix_tokens else {}
        self.policy = self.planner.policy(self.rtg_target, replan_every=max(1, self.replan_every), seed=self.seed,
                                          executor=self.executor, keep_plan=True, **held)
        self.policy.reset(1)
        return self.obs

    def _record(self) -> None:
        suite = self.task.suite
        self.obs_history.append(np.asarray(self.obs, dtype=np.float32))
        if suite.draws_floor_path(self.task):
            self.path_xy.append(np.asarray(suite.agent_point(self.task, self.obs), dtype=float))
            return
        names = suite.key_point_names(self.task)
        model = self.env.unwrapped.model
        if names and suite.can_pose(self.task, model, len(self.obs)):
            self.path_xyz.append(suite.key_points(self.task, model, self.obs[None])[names[0]][0])

    @property
    def horizon(self) -> int:
        return int(self.max_steps or self.task.eval_steps)

    @property
    def done(self) -> bool:
        return self.t >= self.horizon

    def step(self) -> StepResult:
        if self.obs is None:
            self.reset()
        replans = self.t % max(1, self.replan_every) == 0
        action = np.asarray(self.policy.act(self.obs[None], np.array([self.last_reward]))[0], dtype=np.float32)
        plan = self.policy.last_plan if replans else None
        if plan is not None:
            self.last_plan = plan
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.obs = self.task.flatten_obs(obs)
        self.t += 1
        self.last_reward = float(reward)
        self.reward_sum += float(reward)
        self._record()
        suite = self.task.suite  # a task without success (locomotion) never shows one, whatever its reward
        success = bool(info.get("success", reward > 0)) if suite.reports_success(self.task) else False
        self.success_steps += int(success)
        done = bool(terminated or truncated) or self.done
        xy = self.path_xy[-1] if self.path_xy else None
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


def fmt_rtg(v: float) -> str:
    """An RTG value for display: whole numbers, never "-0"."""
    r = round(float(v))
    return f"{0 if r == 0 else r:d}"


@dataclass(frozen=True)
class RunFrame:
    """One closed-loop step as shown: taken on the worker right after the step, so every panel shows the same step."""

    t: int  # steps taken
    horizon: int  # episode length
    reward_sum: float  # return collected so far
    success: bool  # the agent is within the goal radius now
    done: bool  # the episode is over
    target: float  # the user's RTG target G for the episode
    condition: float | None  # the RTG the model was conditioned on at the last re-plan (after range and ceiling)
    path_xy: np.ndarray  # (t + 1, 2) executed positions, start included (maze suites; empty for robots)
    plan: object  # the last Plan (None before the first)
    path_xyz: np.ndarray | None = None  # (t + 1, 3) executed key-point path (robot suites)
    obs: np.ndarray | None = None  # the observation after the step (robots are posed from it)
    seed: int = 0  # the run's env reset and sampling seed
    progress: str = ""  # the task's sub-goals so far and the step each was done at (kitchen), else empty
    success_text: str = "at goal"  # what success is called in the status ("at goal" for goal reaching, else "success")

    def status(self) -> str:
        tag = f" · ✓ {self.success_text}" if self.success else ""
        cond = f" · condition now {fmt_rtg(self.condition)}" if self.condition is not None else ""
        held = int(getattr(self.plan, "held_scales", 0) or 0)
        hold = f" · holding scales 1–{held}" if held else ""
        progress = f" · {self.progress}" if self.progress else ""
        return (f"step {self.t}/{self.horizon} · return {self.reward_sum:.0f} · RTG target {fmt_rtg(self.target)}"
                f"{cond}{hold}{tag}{progress}")


def frame_of(loop: ClosedLoop, res: StepResult | None = None) -> RunFrame:
    """The frame of a ClosedLoop after a step (res: its StepResult; None before the first step)."""
    plan = loop.last_plan
    return RunFrame(t=int(loop.t), horizon=int(loop.horizon), reward_sum=float(loop.reward_sum),
                    success=bool(res is not None and res.success),
                    done=bool(loop.done or (res is not None and res.done)),
                    target=float(loop.rtg_target), condition=None if plan is None else float(plan.condition_rtg),
                    path_xy=np.array(loop.path_xy, dtype=float), plan=plan,
                    path_xyz=np.array(loop.path_xyz, dtype=float) if loop.path_xyz else None,
                    obs=None if loop.obs is None else np.array(loop.obs), seed=int(loop.seed),
                    success_text="at goal" if loop.task.suite.goal_reaching(loop.task) else "success",
                    progress=progress_line(loop.task.suite.sub_goals(loop.task, np.asarray(loop.obs_history))
                                           if loop.obs_history else []))
