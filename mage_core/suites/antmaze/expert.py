"""AntMaze's expert: value-iteration waypoints through the maze, walked by the shipped goal-reaching ant controller."""
from __future__ import annotations

import numpy as np

from mage_core.maze import MazeGeometry
from mage_core.suites.antmaze.tasks import SWITCH_RADIUS, proprio_dim, split_obs
from mage_core.suites.base import Task
from mage_core.suites.pointmaze import geometry


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
