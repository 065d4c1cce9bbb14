"""AntMaze's task tables: the flattened observation's layout, the mazes and their protocols, the built-in tasks."""
from __future__ import annotations

import numpy as np

from mage_core.maze import LARGE_MAZE, MEDIUM_MAZE, U_MAZE
from mage_core.suites.base import Task

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
VARIANTS = ("diverse", "play", "paced")  # paced: 'diverse' at a per-episode gait speed (AntMazeRecipe.pace_range)


def up_z(qpos_rest_13: np.ndarray) -> float:
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


def make_task(size: str) -> Task:
    """The built-in task of one maze size."""
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
