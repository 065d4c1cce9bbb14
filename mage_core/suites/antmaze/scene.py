"""AntMaze's scene facet: the condition observation of an ant at rest, the ant posed from an observation, its torso
as the key point."""
from __future__ import annotations

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.antmaze.tasks import CELL_SIZE, OBS_DIM, PROPRIO, REST_QPOS_REST, proprio_dim, split_obs
from mage_core.suites.base import SceneFacet


class AntMazeScene(SceneFacet):
    """How the studio and the renderer place, pose and draw the ant (the maze itself: MazeSuite)."""

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
