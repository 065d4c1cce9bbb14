"""The PointMaze suite: D4RL/pointmaze mazes, waypoint PD expert data, fixed-goal sparse evaluation, top-down scene."""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.maze import LARGE_MAZE, MEDIUM_MAZE, U_MAZE, MazeGeometry, WaypointExpert, pd_action
from mage_core.suites.base import EditableState, Suite, Task

POS, VEL, GOAL = slice(0, 2), slice(2, 4), slice(4, 6)  # flattened layout [x, y, vx, vy, goal_x, goal_y]
OBS_DIM = 6  # PointMaze's flattened observation size
WALL_RGBA = (0.55, 0.60, 0.70, 1.0)  # maze wall colour
FLOOR_RGBA = (0.13, 0.16, 0.22, 1.0)  # floor colour
AGENT_RGBA = (0.98, 0.82, 0.25, 1.0)  # the point agent
WALL_TOP = 1.0  # PointMaze blocks are 1 unit tall: top-down cameras fit their tops, not the floor


_GEOMETRIES: dict[str, MazeGeometry] = {}  # one per (map, scaling): each keeps its value-iteration distance maps


def geometry(task: Task) -> MazeGeometry:
    """The maze of a maze task (PointMaze or AntMaze): map and cell/world conversions in the task's scaling."""
    key = repr((task.params["maze_map"], float(task.params.get("cell_size", 1.0))))
    if key not in _GEOMETRIES:
        _GEOMETRIES[key] = MazeGeometry(task.params["maze_map"], cell_size=float(task.params.get("cell_size", 1.0)))
    return _GEOMETRIES[key]


def eval_map(task: Task) -> list:
    """The maze map with the fixed evaluation start 'r' and goal 'g' marked."""
    m = copy.deepcopy(task.params["maze_map"])
    r, c = task.params["eval_start_cell"]
    m[r][c] = "r"
    r, c = task.params["eval_goal_cell"]
    m[r][c] = "g"
    return m


class MazeSuite(Suite):
    """What PointMaze and AntMaze share: a maze map, a fixed-goal evaluation, start/goal points the user places."""

    draws_ghosts = False

    def make_env(self, task, mode="eval", render_mode=None, **overrides):
        if mode == "eval":
            overrides.setdefault("maze_map", eval_map(task))
        return super().make_env(task, mode, render_mode, **overrides)

    def matches_builtin(self, task, meta, spec) -> bool:
        if meta.get("dataset_id") == task.dataset_id:
            return True
        return spec.get("id") == task.env_id and (spec.get("kwargs") or {}).get("maze_map") == task.params["maze_map"]

    def editable(self, task) -> EditableState:
        return EditableState(points=("start", "goal"), from_dataset=True, from_reset=False)

    def default_points(self, task) -> dict:
        g = geometry(task)
        return {"start": g.cell_to_xy(task.params["eval_start_cell"]), "goal": g.cell_to_xy(task.params["eval_goal_cell"])}

    def check_point(self, task, which, xy) -> None:
        geometry(task).check_free(xy, which)

    def sim_of(self, env):
        """(model, data) of the simulated agent inside a maze env."""
        return env.unwrapped.model, env.unwrapped.data

    def env_obs(self, task, env) -> np.ndarray:
        """The flattened observation of the env as it is now (after reset_env_to moved it)."""
        raise NotImplementedError

    def reset_env_to(self, task, env, points):
        """Check the start and goal against the walls, move the env's goal there and its agent to the start, at rest."""
        import mujoco

        u = env.unwrapped
        start, goal = points.get("start"), points.get("goal")
        for which, xy in (("start", start), ("goal", goal)):
            if xy is not None:
                self.check_point(task, which, xy)
        if goal is not None:
            u.goal = np.asarray(goal, dtype=np.float64)[:2].copy()
            u.update_target_site_pos()
        if start is not None:
            model, data = self.sim_of(env)
            self.place(task, model, data, start)
            mujoco.mj_forward(model, data)
        return self.env_obs(task, env)

    def has_obstacles(self, task) -> bool:
        return True

    def wall_depth(self, task, states_ND):
        """Depth of the agent's xy inside the maze walls, in cells (a plan that crosses a wall goes deeper than its
        reconstruction error, ~0.1 cell)."""
        g = geometry(task)
        xy = np.asarray(states_ND, dtype=np.float64)[..., self.obs_slices(task)["agent_xy"]]
        return g.wall_depth(xy) / g.cell_size

    def points_of(self, task, obs_D) -> dict:
        """The editable points an observation holds (its agent and goal xy)."""
        sl = self.obs_slices(task)
        return {"start": np.asarray(obs_D[sl["agent_xy"]], float), "goal": np.asarray(obs_D[sl["goal_xy"]], float)}

    def key_point_names(self, task) -> tuple:
        return ("agent",)

    def episode_diagnostics(self, task, obs_TD, rewards_T) -> dict:
        """Sparse goal reaching: when the goal was first reached, how much of the rest was spent inside the goal
        radius, where an episode that never got there stalled (its cell and the cells left on the route), and where it
        ended against its goal's cell centre (the goal point is the centre plus the protocol's noise: an agent that
        parks at the centre misses a small radius)."""
        d = super().episode_diagnostics(task, obs_TD, rewards_T)
        sl = self.obs_slices(task)
        g = geometry(task)
        r = np.asarray(rewards_T, dtype=float)
        xy_T2, goal = np.asarray(obs_TD[1:, sl["agent_xy"]], float), np.asarray(obs_TD[0, sl["goal_xy"]], float)
        hit = np.nonzero(r > 0)[0]
        first = int(hit[0]) if len(hit) else None
        after = r[first:] > 0 if first is not None else np.zeros(0, bool)
        tail = xy_T2[-max(1, len(xy_T2) // 4):]
        cells = [g.xy_to_cell(p) for p in tail]
        stall = max(set(cells), key=cells.count)
        centre = g.cell_to_xy(g.xy_to_cell(goal))
        d.update(first_reach=first, share_inside_after_reach=float(after.mean()) if len(after) else 0.0,
                 leaves_after_reach=int(np.sum(np.diff(after.astype(int)) < 0)) if len(after) > 1 else 0,
                 final_distance=float(np.linalg.norm(xy_T2[-1] - goal)),
                 goal_off_centre=float(np.linalg.norm(goal - centre)),
                 final_to_centre=float(np.linalg.norm(xy_T2[-1] - centre)),
                 stall_cell=None if first is not None else list(stall),
                 cells_left=None if first is not None else float(g.cell_distance(xy_T2[-1], goal)))
        return d

    def diagnostics_summary(self, task, rows: list[dict]) -> tuple[dict, str]:
        """How many episodes reached the goal, how soon, how well they held it, and where the others stalled."""
        reached = [r for r in rows if r["first_reach"] is not None]
        stalled = sorted({tuple(r["stall_cell"]) for r in rows if r["stall_cell"] is not None})
        summary = dict(reach_rate=len(reached) / len(rows),
                       median_first_reach=float(np.median([r["first_reach"] for r in reached])) if reached else None,
                       mean_share_inside_after_reach=float(np.mean([r["share_inside_after_reach"] for r in reached]))
                       if reached else None, stall_cells=stalled)
        line = (f"reached the goal in {len(reached)}/{len(rows)} episodes"
                + (f"; median first reach at step {summary['median_first_reach']:.0f}; inside the goal radius "
                   f"{100 * summary['mean_share_inside_after_reach']:.0f}% of the steps after that" if reached else "")
                + (f"; stalled in cells {stalled}" if stalled else ""))
        return summary, line

    def place(self, task, model, data, xy, vel=None) -> None:
        """The maze agent's root xy is qpos[:2] (the point mass, the ant's torso)."""
        data.qpos[:2] = np.asarray(xy, np.float64)[:2]
        data.qvel[:] = 0.0
        if vel is not None:
            data.qvel[:2] = np.asarray(vel, np.float64)[:2]

    def camera(self, task, model, aspect: float, fovy_deg: float = 45.0, margin: float = 1.04):
        """A camera looking straight down that fits the whole maze (walls included) in an image of this aspect."""
        from mage_core.render import CameraPose

        xmin, xmax, ymin, ymax = geometry(task).extent()
        half_h = max((ymax - ymin) / 2, (xmax - xmin) / 2 / max(aspect, 1e-3)) * margin
        dist = half_h / np.tan(np.deg2rad(fovy_deg) / 2) + 2 * self.wall_top(task)
        return CameraPose(((xmin + xmax) / 2, (ymin + ymax) / 2, 0.0), float(dist), 90.0, -90.0)

    def orbit_camera(self, task, model=None):
        """A three-quarter view over the maze."""
        from mage_core.render import CameraPose

        pose = self.camera(task, model, 4 / 3)
        return CameraPose(pose.lookat, pose.distance * 1.3, 90.0, -55.0)  # fits the maze in a square-ish viewport too

    def wall_top(self, task) -> float:
        return WALL_TOP * float(task.params.get("cell_size", 1.0)) / 2

    def style_scene(self, task, model) -> None:
        import mujoco

        for i in range(model.ngeom):
            name = mujoco.mj_id2name(model, int(mujoco.mjtObj.mjOBJ_GEOM), i) or ""
            if name.startswith("block_"):
                model.geom_matid[i] = -1  # (AntMaze's blocks carry a material that would override the colour)
                model.geom_rgba[i] = WALL_RGBA
            elif name in ("ground", "floor"):  # a flat floor reads better under plan overlays than the stock checker
                model.geom_matid[i] = -1
                model.geom_rgba[i] = FLOOR_RGBA
        for i in range(model.nsite):  # our own goal disc replaces the stock red target sphere
            model.site_rgba[i, 3] = 0.0
        if model.nlight:  # AntMaze's own light washes the slate walls out to white from above
            model.light_diffuse[:] *= 0.45
            model.light_specular[:] = 0.05
            model.light_ambient[:] = 0.1


class PointMazeSuite(MazeSuite):
    """PointMaze UMaze / Medium / Large (`PointMaze_*-v3`) with the Minari D4RL/pointmaze protocol."""

    name = "pointmaze"
    title = "PointMaze"
    has_generator = True
    has_tracker = True

    def tasks(self) -> list[Task]:
        # Diffuser's maze2d planning horizons (128 / 256 / 384) are the baseline's, kept with the task they belong to
        return [_task("pointmaze-umaze", "PointMaze_UMaze-v3", U_MAZE, 300, (3, 1), (1, 1), diffuser_horizon=128),
                _task("pointmaze-medium", "PointMaze_Medium-v3", MEDIUM_MAZE, 600, (1, 1), (6, 6), diffuser_horizon=256),
                _task("pointmaze-large", "PointMaze_Large-v3", LARGE_MAZE, 800, (1, 1), (7, 10), diffuser_horizon=384)]

    def claims(self, env_id, spec, meta) -> bool:
        return env_id.startswith("PointMaze")

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        t = super().task_for_spec(meta, spec, eval_spec)
        t.rtg_mode = "window"
        t.obs_keys = ("observation", "desired_goal")  # the observation already starts with the agent's xy
        return t

    def obs_slices(self, task) -> dict:
        return {"agent_xy": POS, "agent_vel": VEL, "goal_xy": GOAL}

    def expert_policy(self, task):
        return MazeExpertPolicy(task)

    # ---- data ----------------------------------------------------------------------------------------------------
    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Roll out the noisy waypoint expert; one Minari EpisodeBuffer per goal reached (or per truncation)."""
        from minari.data_collector import EpisodeBuffer

        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
        rng = np.random.default_rng(cfg.seed)
        expert = WaypointExpert(geometry(task), cfg.waypoint_jitter, cfg.action_noise, rng)
        buffers, done, ep_id = [], 0, 0
        keys = ("observation", "achieved_goal", "desired_goal")
        try:
            while done < cfg.steps:
                obs, _ = env.reset(seed=int(cfg.seed) * 1_000_003 + ep_id)
                obs_l = {k: [obs[k]] for k in keys}
                acts, rews, terms, truncs = [], [], [], []
                dwell = -1  # steps left holding the goal once reached (-1: not reached yet)
                while True:
                    o = obs["observation"]
                    a = expert(o[:2], o[2:4], obs["desired_goal"])
                    obs, r, term, trunc, info = env.step(a)
                    done += 1
                    budget_out = done >= cfg.steps
                    if term and dwell < 0:
                        dwell = cfg.dwell_steps
                    elif dwell > 0:
                        dwell -= 1
                    end = dwell == 0 or trunc or budget_out
                    for k in keys:
                        obs_l[k].append(obs[k])
                    acts.append(a), rews.append(float(r))
                    terms.append(bool(end and dwell == 0 and term))
                    truncs.append(bool(end and not terms[-1]))
                    if progress is not None and done % 2000 == 0:
                        progress(done, cfg.steps)
                    if end:
                        break
                buffers.append(EpisodeBuffer(
                    id=ep_id, observations={k: np.asarray(v, dtype=np.float64) for k, v in obs_l.items()},
                    actions=np.asarray(acts, dtype=np.float32), rewards=rews, terminations=terms, truncations=truncs))
                ep_id += 1
        finally:
            env.close()
        if progress is not None:
            progress(done, cfg.steps)
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        return ("waypoint-pd-expert (D4RL/pointmaze protocol)",
                f"{task.name}: value-iteration waypoints + PD controller, action noise N(0,{cfg.action_noise}), "
                f"waypoint jitter +-{cfg.waypoint_jitter}, episodes cut {cfg.dwell_steps} steps after the goal "
                f"is reached (the expert holds it meanwhile), seed {cfg.seed}, {cfg.steps} steps. "
                f"ref_min_score: random policy, ref_max_score: noise-free expert, {cfg.ref_episodes} episodes "
                f"of {task.eval_steps} steps on the fixed-goal evaluation protocol.")

    # ---- acting --------------------------------------------------------------------------------------------------
    def track_action(self, task, obs_ND, target_ND) -> np.ndarray:
        """The dataset's PD controller steering each env to the planned position of a target observation."""
        return np.stack([pd_action(o[POS], o[VEL], t[POS]) for o, t in zip(obs_ND, target_ND)]).astype(np.float32)

    # ---- initial state -------------------------------------------------------------------------------------------
    def condition_obs(self, task, points, obs_dim, template=None) -> np.ndarray:
        """[start xy, zero velocity, goal xy] for a start at rest and a goal."""
        s = np.asarray(points["start"], np.float32)[:2]
        g = np.asarray(points["goal"], np.float32)[:2]
        flat = task.flatten_obs({"observation": np.concatenate([s, np.zeros(2, np.float32)]), "desired_goal": g,
                                 "achieved_goal": s})
        if obs_dim is not None and len(flat) != obs_dim:
            raise MageError(f"the condition has {len(flat)} observation dims but the planner expects {obs_dim}")
        return flat

    def env_obs(self, task, env) -> np.ndarray:
        """The flattened observation of the env as it is now (after reset_env_to moved it)."""
        u = env.unwrapped
        return self.condition_obs(task, {"start": u.data.qpos[:2].copy(), "goal": u.goal}, None)

    # ---- scene ---------------------------------------------------------------------------------------------------
    def style_scene(self, task, model) -> None:
        import mujoco

        super().style_scene(task, model)
        for i in range(model.ngeom):
            if (mujoco.mj_id2name(model, int(mujoco.mjtObj.mjOBJ_GEOM), i) or "") == "particle_geom":
                model.geom_rgba[i] = AGENT_RGBA

    def can_pose(self, task, model, obs_dim) -> bool:
        return obs_dim >= 2

    def pose(self, task, model, data, obs_D) -> None:
        import mujoco

        data.qpos[:2] = np.asarray(obs_D[POS], np.float64)
        data.qvel[:2] = np.asarray(obs_D[VEL], np.float64) if len(obs_D) >= 4 else 0.0
        mujoco.mj_kinematics(model, data)

    def key_points(self, task, model, states_HD) -> dict:
        s = np.asarray(states_HD, float)
        return {"agent": np.concatenate([s[:, POS], np.zeros((len(s), 1))], axis=1)}


class MazeExpertPolicy:
    """The scripted maze expert on flattened observations [x, y, vx, vy, goal_x, goal_y] (noise-free by default)."""

    def __init__(self, task: Task, action_noise: float = 0.0, waypoint_jitter: float = 0.0, seed: int = 0):
        self.task, self.noise, self.jitter, self.seed = task, action_noise, waypoint_jitter, seed
        self.experts: list[WaypointExpert] = []

    def reset(self, n_envs: int) -> None:
        g = geometry(self.task)
        self.experts = [WaypointExpert(g, self.jitter, self.noise, np.random.default_rng(self.seed + i)) for i in range(n_envs)]

    def act(self, obs_ND, reward_N):
        return np.stack([ex(o[POS], o[VEL], o[GOAL]) for ex, o in zip(self.experts, obs_ND)])


def _task(name: str, env_id: str, maze_map: list, eval_steps: int, start: tuple, goal: tuple, horizon: int = 64,
          diffuser_horizon: int = 128) -> Task:
    return Task(name=name, env_id=env_id, suite_name="pointmaze",
                env_kwargs=dict(maze_map=maze_map, continuing_task=False, reset_target=False),
                eval_kwargs=dict(continuing_task=True, reset_target=False), dataset_id=f"mage/{name}/expert-v0",
                horizon=horizon, eval_steps=eval_steps, rtg_mode="window",
                params=dict(maze_map=maze_map, eval_start_cell=start, eval_goal_cell=goal, cell_size=1.0,
                            diffuser_horizon=diffuser_horizon))
