"""Making a task's gymnasium env: gymnasium-robotics registered on demand, a clear error, no leftover maze files."""
from __future__ import annotations

import os
import tempfile
import warnings

from mage_core.errors import MageError

ROBOTICS_PREFIXES = ("PointMaze", "AntMaze", "Adroit", "FrankaKitchen", "Fetch", "HandManipulate", "HandReach")


def import_robotics():
    """Import gymnasium_robotics (registers its envs) without its import-time Adroit reward notice on stderr."""
    try:
        from farama_notifications import notifications

        notifications.pop("gymnasium_robotics", None)  # an Adroit v1 notice unrelated to the tasks used here
    except ImportError:
        pass
    import gymnasium_robotics

    return gymnasium_robotics


def gym_make(env_id: str, task_name: str, **kwargs):
    """gym.make with gymnasium-robotics registered when needed and a MageError naming the task on failure."""
    import gymnasium as gym

    if env_id.startswith(ROBOTICS_PREFIXES):
        gym.register_envs(import_robotics())
    try:
        with warnings.catch_warnings():  # a suite picks its env version on purpose (AntMaze v4: Minari's datasets)
            warnings.filterwarnings("ignore", message=r".*is out of date.*")
            env = gym.make(env_id, **kwargs)
    except Exception as exc:  # unknown env id, missing package, bad kwargs
        raise MageError(f"cannot create environment {env_id!r} for task {task_name}: {exc}") from exc
    _remove_maze_xml(env)
    return env


def _remove_maze_xml(env) -> None:
    """gymnasium-robotics writes each maze's MuJoCo XML to a new temp file and never deletes it; once the model is
    loaded the file is not needed, so remove it rather than leave thousands behind in /tmp."""
    path = getattr(env.unwrapped, "tmp_xml_file_path", None)
    if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(tempfile.gettempdir()):
        try:
            os.remove(path)
        except OSError:
            pass
