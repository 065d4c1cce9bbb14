"""Videos of closed-loop episodes for `mage demo --video` and `mage eval --record`: the task's scene at every step,
with the plan being executed drawn per scale (when there is one), the path so far and a caption under the frame."""
from __future__ import annotations

import numpy as np

from mage_core.video import caption_frame

FRAME_SIZE = (640, 480)  # pixels of the scene in a video frame (the caption band is added under it)
FPS = 30  # frames per second: one frame per environment step


class EpisodeFrames:
    """Renders one task's episodes frame by frame in a private scene (one thread, as TaskScene requires)."""

    def __init__(self, task, size: tuple = FRAME_SIZE):
        from mage_core.render import TaskScene

        self.task, self.size = task, size
        self.scene = TaskScene(task)
        self.camera = self.scene.default_camera(size[0] / size[1])
        suite = task.suite
        self.floor = suite.draws_floor_path(task)  # the path is an xy trail on the floor (mazes), else a key point's
        self.track = suite.key_point_names(task)[:1]

    def point(self, obs_D: np.ndarray):
        """Where the path passes at this observation: the agent's xy (mazes), else the first key point in 3-D."""
        suite, model = self.task.suite, self.scene.model
        if self.floor:
            return suite.agent_point(self.task, obs_D)
        if self.track and suite.can_pose(self.task, model, len(obs_D)):
            return suite.key_points(self.task, model, np.asarray(obs_D)[None])[self.track[0]][0]
        return None

    def can_pose(self, obs_dim: int) -> bool:
        """Whether frames can be posed from observations alone (what `mage eval --record` has)."""
        return self.task.suite.can_pose(self.task, self.scene.model, obs_dim)

    def frame(self, caption: list[str], *, obs_D=None, qpos=None, plan=None, path: list | None = None,
              goal=None) -> np.ndarray:
        """One captioned frame: the scene posed from qpos (the env's own state) or else from obs_D, the plan per scale,
        the path so far and the goal marker."""
        from mage_core.render import Overlay, plan_overlay

        if qpos is not None:
            self.scene.set_qpos(qpos)
        elif obs_D is not None:
            self.scene.set_obs(obs_D)
        overlay = Overlay()
        if plan is not None:
            overlay = plan_overlay(plan.states_KHD, plan.scales, task=self.task, model=self.scene.model)
            overlay.ghost_scales = 1  # robots: the onion skin of the finest scale; every scale's key-point paths
        points = [p for p in (path or []) if p is not None]
        if len(points) > 1:
            p = np.asarray(points, dtype=float)
            if overlay.plans_xy or self.floor:
                overlay.path_xy = p[:, :2]
            else:
                overlay.path_xyz = p
        if goal is not None:
            overlay.goal_xy = np.asarray(goal, dtype=float)[:2]
            self.scene.set_goal(overlay.goal_xy)
        rgb = self.scene.render(self.camera, overlay, self.size)
        return caption_frame(rgb, caption)

    def close(self) -> None:
        self.scene.close()
