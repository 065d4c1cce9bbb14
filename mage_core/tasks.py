"""Task registry: which gymnasium env a task uses, its default dataset, horizon, evaluation protocol and obs flattening."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from mage_core.errors import MageError

U_MAZE = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
MEDIUM_MAZE = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 1, 1],
               [1, 0, 0, 1, 0, 0, 0, 1], [1, 0, 1, 0, 0, 1, 0, 1], [1, 0, 0, 0, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1, 1]]
LARGE_MAZE = [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1], [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1], [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1], [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]


@dataclass
class Task:
    """Everything the engine needs to know about one task; built-ins below, others derived from a Minari dataset."""

    name: str  # registry key, e.g. "pointmaze-umaze"
    env_id: str  # gymnasium id, e.g. "PointMaze_UMaze-v3"
    env_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make when generating data
    eval_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make for the evaluation protocol
    dataset_id: str = ""  # default local Minari dataset id
    horizon: int = 64  # default segment horizon H (steps)
    eval_steps: int = 300  # evaluation episode length
    obs_keys: tuple = ("observation", "desired_goal")  # Dict-observation keys concatenated by flatten_obs
    maze_map: list | None = None  # maze layout for maze tasks (None otherwise)
    eval_start_cell: tuple | None = None  # fixed (row, col) start of the evaluation protocol
    eval_goal_cell: tuple | None = None  # fixed (row, col) goal of the evaluation protocol
    data_max_episode_steps: int = 1000  # cap on one generated episode before it is truncated
    rtg_mode: str = "window"  # "window": sparse goal-reaching relabel (see segments.relabel_rtg); "dense": plain RTG

    @property
    def is_maze(self) -> bool:
        return self.maze_map is not None

    @property
    def geometry(self):
        from mage_core.maze import MazeGeometry

        if self.maze_map is None:
            raise MageError(f"task {self.name} is not a maze")
        return MazeGeometry(self.maze_map)

    def flatten_obs(self, obs: Any) -> np.ndarray:
        """One observation (Box array or Dict) -> flat float32 vector (goal included for goal-conditioned tasks)."""
        return flatten_obs(obs, self.obs_keys)

    def eval_map(self) -> list:
        """The maze map with the fixed evaluation start 'r' and goal 'g' marked."""
        m = copy.deepcopy(self.maze_map)
        r, c = self.eval_start_cell
        m[r][c] = "r"
        r, c = self.eval_goal_cell
        m[r][c] = "g"
        return m

    def make_env(self, mode: str = "eval", render_mode: str | None = None, **overrides):
        """A gymnasium env for this task; mode 'eval' applies the fixed-goal evaluation protocol."""
        import gymnasium as gym

        if self.env_id.startswith(("PointMaze", "AntMaze", "Adroit", "FrankaKitchen")):
            gym.register_envs(import_robotics())
        kwargs = dict(self.eval_kwargs if mode == "eval" else self.env_kwargs)
        if mode == "eval" and self.is_maze:
            kwargs.setdefault("maze_map", self.eval_map())
            kwargs.setdefault("max_episode_steps", self.eval_steps)
        kwargs.update(overrides)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        try:
            env = gym.make(self.env_id, **kwargs)
        except Exception as exc:  # unknown env id, missing package
            raise MageError(f"cannot create environment {self.env_id!r} for task {self.name}: {exc}") from exc
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


def import_robotics():
    """Import gymnasium_robotics (registers its envs) without its import-time Adroit reward notice on stderr."""
    try:
        from farama_notifications import notifications

        notifications.pop("gymnasium_robotics", None)  # an Adroit v1 notice unrelated to the tasks used here
    except ImportError:
        pass
    import gymnasium_robotics

    return gymnasium_robotics


def flatten_obs(obs: Any, keys: tuple = ("observation", "desired_goal")) -> np.ndarray:
    """Flatten a Box observation or a Dict one (the named keys in order, or every key sorted if none match)."""
    if isinstance(obs, dict):
        use = [k for k in keys if k in obs] or sorted(obs)
        return np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in use])
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def _maze_task(name: str, env_id: str, maze_map: list, eval_steps: int, start: tuple, goal: tuple, horizon: int) -> Task:
    common = dict(maze_map=maze_map, continuing_task=False, reset_target=False)
    return Task(
        name=name,
        env_id=env_id,
        env_kwargs=dict(common),
        eval_kwargs=dict(continuing_task=True, reset_target=False),
        dataset_id=f"mage/{name}/expert-v0",
        horizon=horizon,
        eval_steps=eval_steps,
        maze_map=maze_map,
        eval_start_cell=start,
        eval_goal_cell=goal,
    )


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        _maze_task("pointmaze-umaze", "PointMaze_UMaze-v3", U_MAZE, 300, (3, 1), (1, 1), 64),
        _maze_task("pointmaze-medium", "PointMaze_Medium-v3", MEDIUM_MAZE, 600, (1, 1), (6, 6), 64),
        _maze_task("pointmaze-large", "PointMaze_Large-v3", LARGE_MAZE, 800, (1, 1), (7, 10), 64),
    )
}


def segment_config(task: Task, horizon: int | None = None):
    """The SegmentConfig that matches a task's horizon and evaluation window."""
    from mage_core.data.segments import SegmentConfig

    return SegmentConfig(horizon=horizon or task.horizon, rtg_window=task.eval_steps, rtg_mode=task.rtg_mode)


def get_task(name: str) -> Task:
    """The registered task `name`, or a MageError listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise MageError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


def task_names() -> list[str]:
    return sorted(TASKS)
