"""Maze geometry shared by the maze suites: maps, cell/xy conversion, wall tests, value-iteration waypoints, PD expert."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WALL = 1
CELL_SIZE = 1.0  # maze_size_scaling of PointMaze (AntMaze uses 4)
GOAL_RADIUS = 0.45  # distance at which PointMaze pays its sparse reward
BALL_RADIUS = 0.1  # radius of the point agent's sphere geom
KP, KD = 10.0, -1.0  # D4RL/pointmaze PD controller gains: a = clip(KP (wp - pos) + KD vel)


U_MAZE = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
MEDIUM_MAZE = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 1, 1],
               [1, 0, 0, 1, 0, 0, 0, 1], [1, 0, 1, 0, 0, 1, 0, 1], [1, 0, 0, 0, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1, 1]]
LARGE_MAZE = [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1], [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1], [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1], [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]


def _is_wall(v) -> bool:
    return v == WALL or v == "1"


@dataclass
class MazeGeometry:
    """A maze map (rows of 0/1 or 'g'/'r' markers) with conversions between cells and world xy."""

    maze_map: list  # rows of cells, 1 = wall; strings 'g'/'r'/'c' mark goal/reset cells as gymnasium-robotics does
    cell_size: float = CELL_SIZE  # world units per cell (gymnasium-robotics' maze_size_scaling)

    def __post_init__(self):
        self.walls_RC = np.array([[1 if _is_wall(v) else 0 for v in row] for row in self.maze_map], dtype=np.int8)
        self.n_rows, self.n_cols = self.walls_RC.shape
        self.x_center = self.n_cols / 2 * self.cell_size
        self.y_center = self.n_rows / 2 * self.cell_size
        self._dist_cache: dict[tuple[int, int], np.ndarray] = {}

    # ---- conversions -------------------------------------------------------------------------
    def cell_to_xy(self, rc) -> np.ndarray:
        r, c = int(rc[0]), int(rc[1])
        return np.array([(c + 0.5) * self.cell_size - self.x_center, self.y_center - (r + 0.5) * self.cell_size])

    def xy_to_cell(self, xy) -> tuple[int, int]:
        r = int(np.floor((self.y_center - xy[1]) / self.cell_size))
        c = int(np.floor((xy[0] + self.x_center) / self.cell_size))
        return r, c

    def extent(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of the whole map, walls included."""
        return -self.x_center, self.x_center, -self.y_center, self.y_center

    def free_cells(self) -> list[tuple[int, int]]:
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.walls_RC == 0))]

    # ---- validity ----------------------------------------------------------------------------
    def in_bounds(self, xy) -> bool:
        xmin, xmax, ymin, ymax = self.extent()
        return bool(xmin < xy[0] < xmax and ymin < xy[1] < ymax)

    def is_free(self, xy, margin: float = BALL_RADIUS) -> bool:
        """True when a ball of radius `margin` centred at xy touches no wall and stays inside the map."""
        if not self.in_bounds(xy) or not np.all(np.isfinite(xy)):
            return False
        r, c = self.xy_to_cell(xy)
        if not (0 <= r < self.n_rows and 0 <= c < self.n_cols) or self.walls_RC[r, c]:
            return False
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = r + dr, c + dc
                if (dr or dc) and 0 <= rr < self.n_rows and 0 <= cc < self.n_cols and self.walls_RC[rr, cc]:
                    lo = self.cell_to_xy((rr, cc)) - self.cell_size / 2
                    hi = lo + self.cell_size
                    nearest = np.clip(xy, lo, hi)
                    if np.linalg.norm(np.asarray(xy) - nearest) < margin:
                        return False
        return True

    def wall_depth(self, xy_N2) -> np.ndarray:
        """How far each point lies inside the walls (world units): its distance to the nearest free cell, 0 for a
        point in a free cell. Points outside the map count as walls. Shape (...,) for xy of shape (..., 2)."""
        xy = np.asarray(xy_N2, dtype=np.float64)
        if not hasattr(self, "_free_lo_F2"):
            self._free_lo_F2 = np.array([self.cell_to_xy(c) - self.cell_size / 2 for c in self.free_cells()])
        lo_F2 = self._free_lo_F2
        flat_P2 = xy.reshape(-1, 2)
        depth_P = np.empty(len(flat_P2))
        for i in range(0, len(flat_P2), 4096):  # (chunk, free cells, 2) stays small
            q_P12 = flat_P2[i:i + 4096, None, :]
            gap_PF2 = q_P12 - np.clip(q_P12, lo_F2, lo_F2 + self.cell_size)
            depth_P[i:i + 4096] = np.sqrt((gap_PF2 ** 2).sum(-1)).min(-1)
        return depth_P.reshape(xy.shape[:-1])

    def check_free(self, xy, what: str = "position") -> None:
        """Raise a UsageError (a MageError: the point is the caller's) when xy is outside the maze or inside a wall."""
        from mage_core.errors import UsageError

        xy = np.asarray(xy, dtype=float)
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise UsageError(f"{what} must be two finite numbers x,y; got {xy.tolist()}")
        if not self.in_bounds(xy):
            xmin, xmax, ymin, ymax = self.extent()
            raise UsageError(f"{what} ({xy[0]:.2f}, {xy[1]:.2f}) is outside the maze (x in [{xmin}, {xmax}], y in [{ymin}, {ymax}])")
        if not self.is_free(xy):
            raise UsageError(f"{what} ({xy[0]:.2f}, {xy[1]:.2f}) is inside or touching a wall; pick a free cell")

    # ---- planning over cells -----------------------------------------------------------------
    def distance_map(self, goal_rc) -> np.ndarray:
        """Steps from every free cell to goal_rc by value iteration (4-connected); inf for walls/unreachable."""
        key = (int(goal_rc[0]), int(goal_rc[1]))
        if key in self._dist_cache:
            return self._dist_cache[key]
        free = self.walls_RC == 0
        v = np.full(self.walls_RC.shape, np.inf)
        v[key] = 0.0
        while True:  # Bellman backups V(c) = min_n 1 + V(n) until a fixed point
            padded = np.pad(v, 1, constant_values=np.inf)
            best = np.minimum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]) + 1
            new = np.where(free, np.minimum(v, best), np.inf)
            new[key] = 0.0
            if np.array_equal(new, v):
                break
            v = new
        self._dist_cache[key] = v
        return v

    def next_waypoint(self, pos_xy, goal_xy) -> np.ndarray:
        """The centre of the next cell on a shortest path to the goal's cell, or the goal itself in its cell."""
        cell = self.xy_to_cell(pos_xy)
        goal_cell = self.xy_to_cell(goal_xy)
        if cell == goal_cell:
            return np.asarray(goal_xy, dtype=float)
        dist = self.distance_map(goal_cell)
        r, c = cell
        if not (0 <= r < self.n_rows and 0 <= c < self.n_cols) or not np.isfinite(dist[r, c]):
            return np.asarray(goal_xy, dtype=float)
        options = [(dist[r + dr, c + dc], (r + dr, c + dc)) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                   if 0 <= r + dr < self.n_rows and 0 <= c + dc < self.n_cols]
        _, best = min(options, key=lambda t: t[0])
        if best == goal_cell:
            return np.asarray(goal_xy, dtype=float)
        return self.cell_to_xy(best)

    def cell_distance(self, pos_xy, goal_xy) -> float:
        """Shortest-path length in cells between the cells of two points (inf when unreachable)."""
        d = self.distance_map(self.xy_to_cell(goal_xy))
        r, c = self.xy_to_cell(pos_xy)
        if not (0 <= r < self.n_rows and 0 <= c < self.n_cols):
            return float("inf")
        return float(d[r, c])


def pd_action(pos_xy, vel_xy, waypoint_xy) -> np.ndarray:
    """The D4RL/pointmaze PD controller: clip(10 (waypoint - pos) - 1 vel, -1, 1)."""
    a = KP * (np.asarray(waypoint_xy) - np.asarray(pos_xy)) + KD * np.asarray(vel_xy)
    return np.clip(a, -1.0, 1.0)


class WaypointExpert:
    """Scripted expert: value-iteration waypoints followed by the PD controller, with optional jitter and noise."""

    def __init__(self, geometry: MazeGeometry, waypoint_jitter: float = 0.0, action_noise: float = 0.0,
                 rng: np.random.Generator | None = None):
        self.geometry = geometry
        self.waypoint_jitter = waypoint_jitter  # uniform +- jitter (world units) added to each new waypoint
        self.action_noise = action_noise  # std of Gaussian noise added to the PD action
        self.rng = rng or np.random.default_rng(0)
        self._wp_key = None
        self._wp = None

    def __call__(self, pos_xy, vel_xy, goal_xy) -> np.ndarray:
        wp = self.geometry.next_waypoint(pos_xy, goal_xy)
        key = tuple(np.round(wp, 6))
        if key != self._wp_key:  # jitter once per waypoint, as the D4RL controller does
            self._wp_key = key
            jitter = self.rng.uniform(-self.waypoint_jitter, self.waypoint_jitter, size=2) if self.waypoint_jitter else 0.0
            self._wp = wp + jitter
        a = pd_action(pos_xy, vel_xy, self._wp)
        if self.action_noise:
            a = a + self.rng.normal(0.0, self.action_noise, size=2)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
