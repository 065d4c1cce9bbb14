"""The AntMaze suite: D4RL/Minari antmaze mazes walked by a shipped goal-reaching ant controller steered by waypoints."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.maze import LARGE_MAZE, MEDIUM_MAZE, U_MAZE, MazeGeometry
from mage_core.suites.base import HeadFrame, Task
from mage_core.suites.pointmaze import MazeSuite, geometry

# flattened layout: observation (27 = qpos[2:15], qvel[0:14]) + achieved_goal (ant xy) + desired_goal (goal xy)
PROPRIO = slice(0, 27)  # the ant's own observation (torso z, quaternion, 8 joint angles, 14 velocities)
QPOS_REST = slice(0, 13)  # qpos[2:15] inside the observation
QVEL = slice(13, 27)  # qvel inside the observation
POS = slice(27, 29)  # achieved_goal: the torso's xy
GOAL = slice(29, 31)  # desired_goal
OBS_DIM = 31  # AntMaze_*-v4 flattened with achieved_goal kept
CELL_SIZE = 4.0  # gymnasium-robotics AntMaze maze_size_scaling
REGOAL_STEPS_BY_SIZE = {"umaze": 20, "medium": 60, "large": 60}  # MAGE's condition cap outside the goal, per maze
GOAL_RADIUS = 0.45  # AntMaze's success radius (metres)
REST_QPOS_REST = np.array([0.75, 1, 0, 0, 0] + [0.0] * 8)  # qpos[2:15] of the ant standing at rest (Ant's qpos0)
SWITCH_RADIUS = 1.0  # metres: a waypoint this close is passed and the next cell centre becomes the target
FLIP_UP_Z = 0.0  # torso z-axis . world z below this: the ant is upside down (data generation resets it)
DATASET_VERSION = "v1"  # v1: continuing-task protocol (reward every step inside the goal radius, dwell at the goal)

SIZES = {"umaze": U_MAZE, "medium": MEDIUM_MAZE, "large": LARGE_MAZE}
# the Minari D4RL/antmaze evaluation maps: fixed reset cell 'r' and goal cell 'g' (rows, cols of the maps above)
EVAL_CELLS = {"umaze": ((3, 1), (1, 1)), "medium": ((1, 1), (6, 6)), "large": ((1, 1), (7, 9))}
EVAL_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}
# 'play': hand-picked goals (and starts), as D4RL's play datasets command the ant to picked locations
PLAY_CELLS = {"umaze": [(1, 1), (1, 3), (3, 3), (3, 1)],
              "medium": [(1, 1), (1, 6), (3, 3), (4, 1), (4, 6), (6, 1), (6, 6)],
              "large": [(1, 1), (1, 4), (1, 10), (3, 3), (3, 9), (5, 4), (5, 8), (7, 1), (7, 5), (7, 9)]}
VARIANTS = ("diverse", "play")


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

    def check(self) -> "AntMazeRecipe":
        """Itself, or a MageError naming the bad field."""
        if not (self.action_noise >= 0 and self.waypoint_jitter >= 0 and self.switch_radius > 0):
            raise MageError(f"AntMaze recipe: action_noise and waypoint_jitter must be >= 0 and switch_radius > 0; "
                            f"got {self}")
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


def _up_z(qpos_rest_13: np.ndarray) -> float:
    """z component of the torso's up axis from its (w, x, y, z) quaternion (qpos[3:7] = qpos_rest[1:5])."""
    q = np.asarray(qpos_rest_13[1:5], float)
    q = q / max(np.linalg.norm(q), 1e-9)
    return float(1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2))


def proprio_dim(task: Task) -> int:
    """Size of the 'observation' part: 27 for AntMaze v4 (and built-in tasks), 105 for v5 with contact forces."""
    return int(task.params.get("proprio_dim", 27))


def split_obs(obs_D: np.ndarray, p: int = 27) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(qpos (15,), qvel (14,), goal xy (2,)) of one flattened AntMaze observation whose 'observation' has p dims."""
    obs_D = np.asarray(obs_D, np.float64)
    return np.concatenate([obs_D[p:p + 2], obs_D[QPOS_REST]]), obs_D[QVEL], obs_D[p + 2:p + 4]


class WaypointFollower:
    """Value-iteration waypoints (cell centres towards the goal's cell) followed by the ant controller.

    The target is the centre of the next cell on a shortest path; it advances once the torso is within the switch
    radius of it (so the ant walks centre to centre and does not cut wall corners), and is recomputed whenever the ant
    leaves the path. In the goal's cell the goal itself is the target.
    """

    def __init__(self, geometry: MazeGeometry, controller, jitter: float = 0.0, action_noise: float = 0.0,
                 rng: np.random.Generator | None = None, switch_radius: float = SWITCH_RADIUS):
        self.g, self.controller = geometry, controller
        self.jitter, self.noise, self.switch_radius = jitter, action_noise, switch_radius
        self.rng = rng or np.random.default_rng(0)
        self.passed = 0  # intermediate waypoints passed (over the follower's life)
        self.abandoned = 0  # waypoints given up (the path was recomputed before reaching them)
        self.reset()

    def reset(self) -> None:
        """Forget the path (a new episode); the counters keep running."""
        self.goal_key = None  # the goal the current path leads to
        self.cell = None  # the cell whose centre is the current target
        self.target = None  # current target xy (jittered cell centre, or the goal)

    def _next_cell(self, cell, goal_cell):
        """The neighbour of `cell` one step closer to the goal cell."""
        dist = self.g.distance_map(goal_cell)
        r, c = cell
        opts = [(dist[r + dr, c + dc], (r + dr, c + dc)) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= r + dr < self.g.n_rows and 0 <= c + dc < self.g.n_cols]
        return min(opts, key=lambda t: t[0])[1]

    def _aim(self, cell, goal_cell, goal_xy) -> None:
        self.cell = cell
        if cell == goal_cell:
            self.target = np.asarray(goal_xy, float).copy()
        else:
            j = self.rng.uniform(-self.jitter, self.jitter, size=2) if self.jitter else 0.0
            self.target = self.g.cell_to_xy(cell) + j

    def waypoint(self, pos_xy, goal_xy) -> np.ndarray:
        """The current target xy for an ant at pos_xy heading for goal_xy (updates the path state)."""
        pos_xy = np.asarray(pos_xy, float)
        goal_cell = self.g.xy_to_cell(goal_xy)
        here = self.g.xy_to_cell(pos_xy)
        key = tuple(np.round(np.asarray(goal_xy, float), 4))
        inside = 0 <= here[0] < self.g.n_rows and 0 <= here[1] < self.g.n_cols and not self.g.walls_RC[here]
        if not inside or not np.isfinite(self.g.distance_map(goal_cell)[here]):
            return np.asarray(goal_xy, float)
        if key != self.goal_key or self.cell is None:
            self.goal_key = key
            self._aim(goal_cell if here == goal_cell else self._next_cell(here, goal_cell), goal_cell, goal_xy)
        dist = self.g.distance_map(goal_cell)
        if self.cell != goal_cell:
            if np.linalg.norm(pos_xy - self.target) < self.switch_radius:
                self.passed += 1
                self._aim(self._next_cell(self.cell, goal_cell), goal_cell, goal_xy)
            elif here != self.cell and (dist[here] <= dist[self.cell] or
                                        abs(here[0] - self.cell[0]) + abs(here[1] - self.cell[1]) > 1):
                # overshot the target cell or strayed off the path: aim from where the ant is
                self.abandoned += 1
                self._aim(goal_cell if here == goal_cell else self._next_cell(here, goal_cell), goal_cell, goal_xy)
        return self.target

    def __call__(self, qpos_15, qvel_14, goal_xy) -> np.ndarray:
        a = self.controller.act(qpos_15, qvel_14, self.waypoint(qpos_15[:2], goal_xy))
        if self.noise:
            a = a + self.rng.normal(0.0, self.noise, size=a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


class AntExpertPolicy:
    """The noise-free reference expert on flattened AntMaze observations: waypoints + the shipped controller."""

    def __init__(self, task: Task, controller, action_noise: float = 0.0, waypoint_jitter: float = 0.0, seed: int = 0):
        self.task, self.controller = task, controller
        self.noise, self.jitter, self.seed = action_noise, waypoint_jitter, seed
        self.followers: list[WaypointFollower] = []

    def reset(self, n_envs: int) -> None:
        g = geometry(self.task)
        self.followers = [WaypointFollower(g, self.controller, self.jitter, self.noise,
                                           np.random.default_rng(self.seed + i)) for i in range(n_envs)]

    def act(self, obs_ND, reward_N):
        out = []
        p = proprio_dim(self.task)
        for f, o in zip(self.followers, np.asarray(obs_ND)):
            qpos, qvel, goal = split_obs(o, p)
            out.append(f(qpos, qvel, goal))
        return np.stack(out)


class AntMazeSuite(MazeSuite):
    """AntMaze UMaze / Medium / Large (`AntMaze_*-v4`, 27-dim ant observation) with the D4RL/Minari antmaze protocol."""

    name = "antmaze"
    title = "AntMaze"
    has_generator = True
    has_tracker = True
    draws_ghosts = True
    controller_path: str | None = None  # the controller npz (None: assets/antmaze/ant_controller.npz)

    def __init__(self):
        self._controller = None
        self._controller_key = None

    def head_frames(self) -> dict:
        """"ant-heading": the action head sees the ant as its data's controller did (ant_heading_features)."""
        return {"ant-heading": HeadFrame(ant_heading_features, _ant_heading_dim, OBS_DIM)}

    def regoal_steps(self, task) -> int:
        """Per maze: 20 on umaze, 60 on medium and large, where 60 beat 0 / 20 / 120 on every training seed of medium
        (held-out seeds; docs/BENCHMARKS.md, "The acting-time regoal cap decides medium"; large: untested, as medium)."""
        return REGOAL_STEPS_BY_SIZE.get(task.params.get("size"), super().regoal_steps(task))

    def baseline_settings(self, task, algo: str) -> dict:
        """IQL with the settings its paper used on AntMaze (expectile 0.9, inverse temperature 10; the presets carry
        its locomotion ones, 0.7 and 3)."""
        return {"expectile": 0.9, "temperature": 10.0} if algo == "iql" else {}

    def episode_diagnostics(self, task, obs_TD, rewards_T) -> dict:
        """The maze measures, plus the step at which the ant first lay upside down (None: never). A flipped ant
        cannot get up again, so its episode ends where it fell; the maze measures alone call that a stall."""
        d = super().episode_diagnostics(task, obs_TD, rewards_T)
        up_T = np.array([_up_z(o) for o in np.asarray(obs_TD, float)[1:, :13]])  # qpos[2:15] leads the obs
        flipped = np.nonzero(up_T < FLIP_UP_Z)[0]
        d["flipped_at"] = int(flipped[0]) if len(flipped) else None
        return d

    def diagnostics_summary(self, task, rows: list[dict]) -> tuple[dict, str]:
        """The maze summary (a flipped ant is not counted as a stall), plus how many episodes flipped over."""
        fell = [dict(r, stall_cell=None) if r["flipped_at"] is not None else r for r in rows]
        summary, line = super().diagnostics_summary(task, fell)
        summary["flipped"] = sum(r["flipped_at"] is not None for r in rows)
        return summary, line + (f"; {summary['flipped']} flipped over" if summary["flipped"] else "")

    # ---- tasks ---------------------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [_task(size) for size in SIZES]

    def task(self, size: str) -> Task:
        """The built-in task of one maze size, or a MageError listing the known sizes."""
        if size not in SIZES:
            raise MageError(f"unknown AntMaze size {size!r}; known sizes: {', '.join(SIZES)}")
        return _task(size)

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
            base = _task(size).params
            t.params = {**base, "maze_map": kw.get("maze_map") or base["maze_map"], "proprio_dim": t.params["proprio_dim"]}
            t.params["maze_map"] = [[1 if v in (1, "1") else 0 for v in row] for row in t.params["maze_map"]]
        return t

    def obs_slices(self, task) -> dict:
        p = proprio_dim(task)
        return {"agent_proprio": slice(0, p), "agent_xy": slice(p, p + 2), "goal_xy": slice(p + 2, p + 4)}

    # ---- controller ----------------------------------------------------------------------------------------------
    def controller(self):
        """The shipped goal-reaching controller (loaded once; a clear MageError if the file is missing or damaged)."""
        from mage_core.suites.antmaze_controller import DEFAULT_FILE, AntController

        path = Path(self.controller_path) if self.controller_path else DEFAULT_FILE
        key = (str(path), path.stat().st_mtime if path.is_file() else None)
        if self._controller is None or self._controller_key != key:
            self._controller = AntController(path)
            self._controller_key = key
        return self._controller

    def expert_policy(self, task):
        return AntExpertPolicy(task, self.controller())

    # ---- data ----------------------------------------------------------------------------------------------------
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
                while end_kind is None:
                    qpos = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
                    a = follower(qpos, obs["observation"][13:27], obs["desired_goal"])
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
                    if _up_z(obs["observation"][:13]) < FLIP_UP_Z:
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
                f"resets only on a flip or after {task.data_max_episode_steps} steps without arriving. Goals reached "
                f"{s.get('goals_reached', '?')}, missed {s.get('goals_missed', '?')} (flips {s.get('flips', '?')}, "
                f"{s.get('flips_while_holding', '?')} of them while holding a goal); share of holding steps inside "
                f"the radius {inside}; waypoints passed {s.get('waypoints_passed', '?')}, abandoned "
                f"{s.get('waypoints_abandoned', '?')}. seed {cfg.seed}, {cfg.steps} steps. ref_min_score: random "
                f"policy, ref_max_score: noise-free expert, {cfg.ref_episodes} episodes of {task.eval_steps} steps "
                f"on the evaluation protocol (fixed start and goal cells, continuing task: the return counts the "
                f"steps spent within the goal radius).")

    # ---- acting --------------------------------------------------------------------------------------------------
    def track_action(self, task, obs_ND, target_ND) -> np.ndarray:
        """The controller walking each ant towards the torso xy of a planned observation."""
        ctl = self.controller()
        p = proprio_dim(task)
        out = []
        for o, t in zip(np.asarray(obs_ND), np.asarray(target_ND)):
            qpos, qvel, _ = split_obs(o, p)
            out.append(ctl.act(qpos, qvel, np.asarray(t[p:p + 2], float)))
        return np.stack(out).astype(np.float32)

    # ---- initial state -------------------------------------------------------------------------------------------
    def condition_obs(self, task, points, obs_dim, template=None) -> np.ndarray:
        """The ant at rest (or the template's posture) at the start point, with the goal."""
        s = np.asarray(points["start"], np.float32)[:2]
        g = np.asarray(points["goal"], np.float32)[:2]
        proprio = np.concatenate([REST_QPOS_REST, np.zeros(14)]).astype(np.float32)
        if template is not None and len(template) == OBS_DIM:
            proprio = np.asarray(template, np.float32)[PROPRIO].copy()
        flat = task.flatten_obs({"observation": proprio, "achieved_goal": s, "desired_goal": g})
        if obs_dim is not None and len(flat) != obs_dim:
            raise MageError(f"the condition has {len(flat)} observation dims but the planner expects {obs_dim}")
        return flat

    def sim_of(self, env):
        u = env.unwrapped
        return u.ant_env.model, u.ant_env.data

    def env_obs(self, task, env) -> np.ndarray:
        u = env.unwrapped
        return task.flatten_obs(u._get_obs(u.ant_env._get_obs()))

    # ---- scene ---------------------------------------------------------------------------------------------------
    def wall_top(self, task) -> float:
        return 0.5 * float(task.params.get("cell_size", CELL_SIZE))  # maze_height 0.5 x scaling: blocks 2 m tall

    def key_point_names(self, task) -> tuple:
        return ("torso",)

    def can_pose(self, task, model, obs_dim) -> bool:
        return obs_dim == proprio_dim(task) + 4 and (model is None or (model.nq == 15 and model.nv == 14))

    def pose(self, task, model, data, obs_D) -> None:
        """qpos[:2] from achieved_goal, qpos[2:15] from observation[:13], qvel from observation[13:27]."""
        import mujoco

        obs_D = np.asarray(obs_D, np.float64)
        p = proprio_dim(task)
        if obs_D.shape[-1] != p + 4:
            raise MageError(f"an AntMaze observation of {task.name} has {p + 4} dims; got {obs_D.shape[-1]}")
        qpos, qvel, _ = split_obs(obs_D, p)
        n = np.linalg.norm(qpos[3:7])
        qpos[3:7] = qpos[3:7] / n if n > 1e-9 else (1.0, 0.0, 0.0, 0.0)
        data.qpos[:15] = qpos
        data.qvel[:14] = qvel
        mujoco.mj_kinematics(model, data)

    def key_points(self, task, model, states_HD) -> dict:
        s = np.asarray(states_HD, float)
        p = proprio_dim(task)
        return {"torso": np.concatenate([s[:, p:p + 2], s[:, 0:1]], axis=1)}

    def summary(self, task) -> str:
        return "ant posed from the plan (ghosts), torso path drawn per scale"


def _task(size: str) -> Task:
    maze_map = SIZES[size]
    start, goal = EVAL_CELLS[size]
    name = f"antmaze-{size}"
    env_id = {"umaze": "AntMaze_UMaze-v4", "medium": "AntMaze_Medium-v4", "large": "AntMaze_Large-v4"}[size]
    return Task(name=name, env_id=env_id, suite_name="antmaze",
                # evaluation as Minari's D4RL/antmaze eval envs: the continuing task over the fixed 700 / 1000 steps
                # (reward every step inside the goal radius; success = the goal reached at least once)
                env_kwargs=dict(maze_map=maze_map, continuing_task=True, reset_target=False),
                eval_kwargs=dict(continuing_task=True, reset_target=False),
                dataset_id=f"mage/{name}/diverse-{DATASET_VERSION}",
                horizon=64, eval_steps=EVAL_STEPS[size], obs_keys=("observation", "achieved_goal", "desired_goal"),
                data_max_episode_steps=1000, rtg_mode="window",
                params=dict(maze_map=maze_map, eval_start_cell=start, eval_goal_cell=goal, cell_size=CELL_SIZE,
                            size=size, play_cells=PLAY_CELLS[size], diffuser_horizon=256))


def variant_task(size: str, variant: str) -> tuple[Task, str]:
    """(task, variant) for a maze size and data variant, or a MageError listing the known ones."""
    task = SUITE.task(size)
    return task, SUITE.resolve_variant(task, variant)


SUITE = AntMazeSuite()


# ---- the action head's heading frame (ModelConfig.inv_frame = "ant-heading") -------------------------------------
GAIT_STEPS = 4  # plan steps below this also give the head their joint angles and velocities (the next strides' gait);
#                 every lookahead step gives its torso xy


def ant_heading_features(s_BD, rows_BLD, steps: tuple):
    """The head's input in the torso's heading frame, as the data's controller sees the ant: proprioception without
    xy or heading (27, the controller's layout), the goal relative to the torso (2), and per lookahead step the planned
    torso xy relative to the torso (2) plus, for steps < GAIT_STEPS, the planned joint angles and velocities (16).
    s_BD: raw flattened observations (B, 31); rows_BLD: raw decoded (R, s) rows at `steps` (B, L, 32)."""
    import torch

    w, x, y, z = s_BD[:, 1:5].unbind(1)
    yaw_B = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    c_B, s_B = torch.cos(yaw_B), torch.sin(yaw_B)
    hw, hz = torch.cos(-yaw_B / 2), torch.sin(-yaw_B / 2)  # the half-turn quaternion (hw, 0, 0, hz) removing the heading
    q_B4 = torch.stack([hw * w - hz * z, hw * x - hz * y, hw * y + hz * x, hw * z + hz * w], 1)
    q_B4 = q_B4 * torch.where(q_B4[:, :1] < 0, -1.0, 1.0)

    def rot(v_X2, c, s):  # world -> heading frame
        return torch.stack([c * v_X2[..., 0] + s * v_X2[..., 1], -s * v_X2[..., 0] + c * v_X2[..., 1]], -1)

    xy_B2 = s_BD[:, POS]
    vel_B3 = torch.cat([rot(s_BD[:, 13:15], c_B, s_B), s_BD[:, 15:16]], 1)  # qvel[0:3]: world linear velocity
    goal_B2 = rot(s_BD[:, GOAL] - xy_B2, c_B, s_B)
    rel_BL2 = rot(rows_BLD[:, :, 1 + POS.start:1 + POS.stop] - xy_B2[:, None], c_B[:, None], s_B[:, None])
    gait = [i for i, t in enumerate(steps) if t < GAIT_STEPS]
    joints_BG = torch.cat([rows_BLD[:, gait, 6:14], rows_BLD[:, gait, 20:28]], -1).flatten(1)  # 1 + s index: R leads
    return torch.cat([s_BD[:, 0:1], q_B4, s_BD[:, 5:13], vel_B3, s_BD[:, 16:27], goal_B2, rel_BL2.flatten(1),
                      joints_BG], 1)


def _ant_heading_dim(steps: tuple) -> int:
    return 29 + 2 * len(steps) + 16 * sum(t < GAIT_STEPS for t in steps)
