"""AntMaze's data facet: its tasks and datasets, and the Minari AntMaze recipe that makes its 'diverse' and 'play'
data on the continuing task."""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.maze import MazeGeometry
from mage_core.suites.antmaze.expert import WaypointFollower
from mage_core.suites.antmaze.tasks import (DATASET_VERSION, FLIP_UP_Z, GOAL_RADIUS, SIZES, SWITCH_RADIUS, VARIANTS,
                                            make_task, up_z)
from mage_core.suites.base import DataFacet, Task
from mage_core.suites.pointmaze import geometry


@dataclasses.dataclass
class AntMazeRecipe:
    """AntMaze's data recipe: the suite's own defaults (pass another one as GenerateConfig.recipe to change them).

    PointMaze's knobs in GenerateConfig (action_noise, waypoint_jitter, dwell_steps) are the D4RL maze2d recipe; the
    ant has its own, after Minari's AntMaze scripts (N(0, 0.2) action noise on the SAC controller, continuing task).
    """

    action_noise: float = 0.2  # std of the Gaussian noise added to the controller's action (Minari AntMaze: 0.2)
    waypoint_jitter: float = 0.5  # metres: uniform +- jitter on every intermediate waypoint (a cell centre, 4 m cells)
    switch_radius: float = SWITCH_RADIUS  # metres: a waypoint this close is passed and the next one becomes the target
    dwell_steps: int = 100  # steps the ant keeps holding a reached goal (reward 1 every step inside the radius, as on
    #                         the continuing evaluation protocol) before the episode is cut and the next goal drawn
    pace_range: tuple = (0.3, 0.9)  # 'paced' only: each episode's actions are scaled by a factor drawn uniformly from
    # this range, a slower or faster gait on the same route (umaze evaluation route, noisy as here: first reward at
    # step ~360 at 0.6, ~510 at 0.4, often none within 700 steps at 0.3; the full-scale controller flips half the time)

    def check(self) -> "AntMazeRecipe":
        """Itself, or a MageError naming the bad field."""
        if not (self.action_noise >= 0 and self.waypoint_jitter >= 0 and self.switch_radius > 0):
            raise MageError(f"AntMaze recipe: action_noise and waypoint_jitter must be >= 0 and switch_radius > 0; "
                            f"got {self}")
        lo, hi = (tuple(self.pace_range) + (None, None))[:2]
        if len(tuple(self.pace_range)) != 2 or not (0 < lo <= hi <= 1):
            raise MageError(f"AntMaze recipe: pace_range must be (low, high) with 0 < low <= high <= 1; got "
                            f"{self.pace_range!r}")
        if int(self.dwell_steps) != self.dwell_steps or self.dwell_steps < 0:
            raise MageError(f"AntMaze recipe: dwell_steps must be a whole number >= 0; got {self.dwell_steps!r}")
        return self


def recipe_of(cfg) -> AntMazeRecipe:
    """The AntMaze recipe of a GenerateConfig: its `recipe` when given (checked), else the suite's defaults."""
    r = getattr(cfg, "recipe", None)
    if r is None:
        return AntMazeRecipe()
    if not isinstance(r, AntMazeRecipe):
        raise MageError(f"AntMaze data needs an AntMazeRecipe as GenerateConfig.recipe, not {type(r).__name__}")
    return r.check()


class AntMazeData(DataFacet):
    """AntMaze's tasks, datasets and data recipe (the suite's controller() walks the ant)."""

    has_generator = True

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [make_task(size) for size in SIZES]

    def task(self, size: str) -> Task:
        """The built-in task of one maze size, or a MageError listing the known sizes."""
        if size not in SIZES:
            raise MageError(f"unknown AntMaze size {size!r}; known sizes: {', '.join(SIZES)}")
        return make_task(size)

    def claims(self, env_id, spec, meta) -> bool:
        return env_id.startswith("AntMaze")

    def matches_builtin(self, task, meta, spec) -> bool:
        if meta.get("dataset_id") == task.dataset_id or str(meta.get("dataset_id", "")).startswith(f"mage/{task.name}/"):
            return True
        if spec.get("id") != task.env_id:
            return False
        m = (spec.get("kwargs") or {}).get("maze_map")
        return m is None and task.params["size"] == "umaze" or \
            (m is not None and MazeGeometry(m).walls_RC.tolist() == geometry(task).walls_RC.tolist())

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        t = super().task_for_spec(meta, spec, eval_spec)
        t.rtg_mode = "window"
        t.obs_keys = ("observation", "achieved_goal", "desired_goal")  # keep the ant's own xy
        kw = spec.get("kwargs") or {}
        v5_forces = spec.get("id", "").endswith("-v5") and kw.get("include_cfrc_ext_in_observation", True)
        t.params["proprio_dim"] = 105 if v5_forces else 27  # v5 appends 78 contact forces to the observation
        size = next((k for k in SIZES if f"_{k}".lower() in spec.get("id", "").lower()), None)
        if size is not None:  # a user's dataset of a known maze: the maze hooks (points, camera, walls) work too
            base = make_task(size).params
            t.params = {**base, "maze_map": kw.get("maze_map") or base["maze_map"], "proprio_dim": t.params["proprio_dim"]}
            t.params["maze_map"] = [[1 if v in (1, "1") else 0 for v in row] for row in t.params["maze_map"]]
        return t


    # ---- data recipe ---------------------------------------------------------------------------------------------
    def variants(self, task) -> tuple:
        return VARIANTS

    def dataset_id(self, task, variant: str) -> str:
        """mage/antmaze-<size>/<variant>-v1 (v1: the continuing-task protocol; v0 datasets ended at the goal)."""
        return f"mage/{task.name}/{variant}-{DATASET_VERSION}"

    def resolve_variant(self, task, variant: str | None) -> str:
        if not variant:
            return VARIANTS[0]
        if variant not in VARIANTS:
            raise MageError(f"{task.name} has no {variant!r} data; variants: {', '.join(VARIANTS)}")
        return variant

    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """The Minari AntMaze recipe on the continuing task: waypoints + controller with action noise and jitter.

        The env is the continuing task (reward 1 every step the torso is within the goal radius, never terminated), as
        in Minari's antmaze data and evaluation envs. Once the ant reaches its goal it keeps holding it for the
        recipe's dwell_steps (the reward accrues as it will on the evaluation protocol, so the window RTG relabel sees
        what holding the goal is worth); then the episode is cut (a truncation: the task goes on) and a new goal is
        drawn where the ant stands ('diverse': any other free cell, 'play': the hand-picked cells), starting the next
        episode. The ant is reset (a new start: any free cell for 'diverse', a picked cell for 'play') only when it
        flips over or an episode reaches data_max_episode_steps without arriving.
        """
        from minari.data_collector import EpisodeBuffer

        variant = self.resolve_variant(task, cfg.variant)
        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        rc = recipe_of(cfg)
        self.last_recipe = rc
        g = geometry(task)
        ctl = self.controller()
        rng = np.random.default_rng(cfg.seed)
        follower = WaypointFollower(g, ctl, rc.waypoint_jitter, rc.action_noise, rng, rc.switch_radius)
        play = [tuple(c) for c in task.params["play_cells"]]
        free = g.free_cells()
        env = task.make_env(mode="data", max_episode_steps=10**9)  # episodes are cut here, not by a TimeLimit
        u = env.unwrapped
        keys = ("observation", "achieved_goal", "desired_goal")
        buffers, done, ep_id, n_reset = [], 0, 0, 0
        stats = {"goals_reached": 0, "goals_missed": 0, "flips": 0, "flips_while_holding": 0, "hold_steps": 0,
                 "hold_steps_inside": 0}
        paces = []  # each episode's action scale

        def pick(cells, avoid=None):
            cells = [c for c in cells if c != avoid] or cells
            return cells[int(rng.integers(len(cells)))]

        def set_goal(cell):
            u.goal = u.add_xy_position_noise(u.maze.cell_rowcol_to_xy(np.array(cell)))
            u.update_target_site_pos()

        def reset():
            nonlocal n_reset
            if variant == "play":
                start = pick(play)
                opts = {"reset_cell": np.array(start), "goal_cell": np.array(pick(play, start))}
            else:
                opts = None  # the env draws a random free start and a random free goal away from it
            obs, _ = env.reset(seed=int(cfg.seed) * 1_000_003 + n_reset, options=opts)
            n_reset += 1
            follower.reset()
            return obs

        try:
            obs = reset()
            while done < cfg.steps:
                obs_l = {k: [obs[k]] for k in keys}
                acts, rews = [], []
                end_kind = None
                held = -1  # steps held since the goal was first reached (-1: not reached yet)
                pace = float(rng.uniform(*rc.pace_range)) if variant == "paced" else 1.0  # this episode's gait
                paces.append(pace)
                while end_kind is None:
                    qpos = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
                    a = follower(qpos, obs["observation"][13:27], obs["desired_goal"]) * np.float32(pace)
                    obs, r, term, trunc, info = env.step(a)
                    done += 1
                    for k in keys:
                        obs_l[k].append(obs[k])
                    acts.append(a), rews.append(float(r))
                    if held >= 0:
                        held += 1
                        stats["hold_steps"] += 1
                        stats["hold_steps_inside"] += bool(r > 0)
                    elif info.get("success"):
                        held = 0
                        stats["goals_reached"] += 1
                    if up_z(obs["observation"][:13]) < FLIP_UP_Z:
                        end_kind = "flip"
                    elif held >= rc.dwell_steps:
                        end_kind = "goal"
                    elif len(acts) >= task.data_max_episode_steps:
                        end_kind = "goal" if held >= 0 else "timeout"
                    elif done >= cfg.steps:
                        end_kind = "budget"
                    if progress is not None and done % 2000 == 0:
                        progress(done, cfg.steps)
                n = len(acts)
                truncs = [False] * (n - 1) + [True]  # a continuing task never terminates: every cut is a truncation
                buffers.append(EpisodeBuffer(
                    id=ep_id, observations={k: np.asarray(v, dtype=np.float64) for k, v in obs_l.items()},
                    actions=np.asarray(acts, dtype=np.float32), rewards=rews, terminations=[False] * n,
                    truncations=truncs))
                ep_id += 1
                if end_kind == "goal":
                    here = g.xy_to_cell(obs["achieved_goal"])
                    set_goal(pick(play if variant == "play" else free, here))
                    obs = dict(obs, desired_goal=u.goal.copy())
                    follower.goal_key = None
                elif end_kind in ("flip", "timeout"):
                    stats["goals_missed"] += held < 0
                    stats["flips"] += end_kind == "flip"
                    stats["flips_while_holding"] += end_kind == "flip" and held >= 0
                    obs = reset()
        finally:
            env.close()
        stats["episodes"] = ep_id
        stats["pace_mean"] = float(np.mean(paces)) if paces else 1.0
        stats["waypoints_passed"] = follower.passed + stats["goals_reached"]
        stats["waypoints_abandoned"] = follower.abandoned + stats["goals_missed"]
        self.last_stats = stats
        if progress is not None:
            progress(done, cfg.steps)
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        s = getattr(self, "last_stats", {})
        rc = getattr(self, "last_recipe", None) or recipe_of(cfg)
        ctl = self.controller()
        hold = s.get("hold_steps", 0)
        inside = f"{s['hold_steps_inside'] / hold:.2f}" if hold else "?"
        return ("value-iteration waypoints + SAC goal-reaching ant controller (Minari AntMaze recipe)",
                f"{task.name} ({cfg.variant}): waypoints at cell centres towards the goal from the maze's value "
                f"iteration, jitter +-{rc.waypoint_jitter} m, switch radius {rc.switch_radius} m, action noise "
                f"N(0,{rc.action_noise}), controller {ctl.path.name} ({ctl.info.get('steps', '?')} SAC steps); "
                f"continuing task (reward 1 every step within {GOAL_RADIUS} m of the goal, no termination): the ant "
                f"holds a reached goal {rc.dwell_steps} steps, then the episode is cut (truncation) and a new goal is "
                f"drawn where it stands ({'hand-picked cells' if cfg.variant == 'play' else 'any free cell'}); "
                + (f"paced: each episode's actions scaled by a factor drawn from U{tuple(rc.pace_range)} (mean "
                   f"{s.get('pace_mean', float('nan')):.2f}), a slower or faster gait on the same route; "
                   if cfg.variant == "paced" else "") +
                f"resets only on a flip or after {task.data_max_episode_steps} steps without arriving. Goals reached "
                f"{s.get('goals_reached', '?')}, missed {s.get('goals_missed', '?')} (flips {s.get('flips', '?')}, "
                f"{s.get('flips_while_holding', '?')} of them while holding a goal); share of holding steps inside "
                f"the radius {inside}; waypoints passed {s.get('waypoints_passed', '?')}, abandoned "
                f"{s.get('waypoints_abandoned', '?')}. seed {cfg.seed}, {cfg.steps} steps. ref_min_score: random "
                f"policy, ref_max_score: noise-free expert, {cfg.ref_episodes} episodes of {task.eval_steps} steps "
                f"on the evaluation protocol (fixed start and goal cells, continuing task: the return counts the "
                f"steps spent within the goal radius).")
