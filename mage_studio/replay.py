"""Replaying a dataset episode in the view (Qt-free): the agent at step t, its path so far, the episode's goal."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mage_core.render import Overlay


@dataclass
class EpisodeStep:
    """What the view shows of a dataset episode at one step."""

    t: int  # the step shown (limited to the episode)
    overlay: Overlay  # the path so far, the start and goal markers
    hud: str  # the header line
    floor: bool  # the suite draws the agent on the floor (agent_xy, goal_xy); else the robot is posed from obs
    agent_xy: np.ndarray | None = None  # (2,) the agent at step t (floor suites)
    goal_xy: np.ndarray | None = None  # (2,) the episode's goal at step t (floor suites)
    obs: np.ndarray | None = None  # (D,) the recorded observation the robot is posed from (other suites)


def episode_step(task, episode, t: int, scene_model=None) -> EpisodeStep:
    """The episode at step t (clipped to its length); robots get their first key point's path so far where the
    suite can pose them in `scene_model` (the MuJoCo model of the scene on screen, None before it is built)."""
    obs_TD = episode.obs_TD
    t = int(np.clip(t, 0, len(obs_TD) - 1))
    hud = f"dataset episode · step {t}/{episode.length}"
    suite = task.suite
    if suite.draws_floor_path(task):
        path = suite.agent_point(task, obs_TD[: t + 1])
        goal = suite.goal_point(task, obs_TD[t])
        ov = Overlay(path_xy=path if len(path) > 1 else None, start_xy=path[0], goal_xy=goal)
        return EpisodeStep(t, ov, hud, floor=True, agent_xy=path[-1], goal_xy=goal)
    ov = Overlay()
    names = suite.key_point_names(task)
    if names and scene_model is not None and suite.can_pose(task, scene_model, obs_TD.shape[1]) and t > 0:
        ov.path_xyz = suite.key_points(task, scene_model, obs_TD[: t + 1])[names[0]]
    return EpisodeStep(t, ov, hud, floor=False, obs=obs_TD[t])
