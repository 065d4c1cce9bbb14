"""The kitchen's scene facet: the arm and the objects posed from an observation (ghost arms along a plan), the
end-effector and kettle key points, a camera that frames the arm and the kitchen, an env moved to a dataset state."""
from __future__ import annotations

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base import SceneFacet, scratch_data
from mage_core.suites.kitchen.tasks import (COMPLETION_THRESHOLD, ENV_OBS_DIM, GOAL_QPOS, GOALS, NQ, OBJECT_QPOS,
                                            OBJECT_QVEL, OBS_OF_QPOS, ROBOT_QPOS, ROBOT_QVEL, obs_dim, targets_of)

KEY_POINTS = ("end effector", "kettle")  # the gripper's 'end_effector' site; the kettle body's origin
ROBOT_ROOT = "panda0_link0"  # the arm's base body: ghosts draw its subtree only
# The default view, chosen from renders: from the front left, above the counter, the arm in front of the cabinets,
# the microwave, the oven's knobs and the slide and hinge cabinets all in frame (look-at xyz, distance, azimuth,
# elevation in degrees).
CAMERA = ((-0.25, 0.35, 2.05), 2.1, 65.0, -28.0)


class KitchenScene(SceneFacet):
    """How the studio and the renderer pose and draw a kitchen task."""

    # ---- initial state -------------------------------------------------------------------------------------------
    def reset_env_to_obs(self, task, env, obs_D):
        """Move an (already reset) env to the state an observation describes (joint positions and velocities; its
        done flags as the sub-tasks counted done); returns the env's flat observation there."""
        from mage_core.suites.kitchen.env import set_start

        obs_D = np.asarray(obs_D, np.float64)
        self.check_obs(task, obs_D)
        targets = targets_of(task)
        done = [t for t, f in zip(targets, obs_D[ENV_OBS_DIM:]) if f > 0.5]
        return set_start(env, qpos_of(obs_D), qvel_of(obs_D), done)

    # ---- posing --------------------------------------------------------------------------------------------------
    def can_pose(self, task, model, obs_dim_: int) -> bool:
        return model is not None and int(model.nq) == NQ and int(obs_dim_) == obs_dim(targets_of(task))

    def pose(self, task, model, data, obs_D) -> None:
        """Set the arm's and the objects' joints (and velocities) from one flattened observation: exact up to the
        env's observation noise (about 1 mrad on the arm)."""
        obs_D = np.asarray(obs_D, np.float64)
        if not self.can_pose(task, model, len(obs_D)):
            raise MageError(f"{task.name}: cannot pose a {len(obs_D)}-dim observation on a model with nq={model.nq}")
        import mujoco

        data.qpos[:] = qpos_of(obs_D)
        data.qvel[:] = qvel_of(obs_D)
        mujoco.mj_kinematics(model, data)

    # ---- drawing -------------------------------------------------------------------------------------------------
    def hide_for_ghost(self, task, model) -> set:
        """Ghosts are the arm alone: every geom outside the arm's subtree (the kitchen, its doors, the kettle) is
        left out, so a plan shows as translucent arms over the one scene."""
        import mujoco

        root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROBOT_ROOT)
        arm_root = int(model.body_rootid[root]) if root >= 0 else -1
        return {i for i in range(model.ngeom) if int(model.body_rootid[model.geom_bodyid[i]]) != arm_root}

    def key_point_names(self, task) -> tuple:
        return KEY_POINTS

    def key_points(self, task, model, states_HD) -> dict[str, np.ndarray]:
        """The end effector's and the kettle's (H, 3) world positions along a planned trajectory."""
        import mujoco

        states_HD = np.asarray(states_HD, np.float64)
        if not self.can_pose(task, model, states_HD.shape[-1]):
            return {}
        ee = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "end_effector")
        qpos_HQ = np.concatenate([states_HD[:, ROBOT_QPOS], states_HD[:, OBJECT_QPOS]], axis=1)
        ee_H3 = np.zeros((len(states_HD), 3))
        with scratch_data(model) as data:  # the end effector needs the arm's kinematics; velocities do not matter
            for h, q in enumerate(qpos_HQ):
                data.qpos[:] = q
                mujoco.mj_kinematics(model, data)
                ee_H3[h] = data.site_xpos[ee]
        # the kettle hangs on a free joint: its body sits at that joint's position, read straight from the state
        kettle = GOAL_QPOS["kettle"][0] + OBS_OF_QPOS
        return {"end effector": ee_H3, "kettle": states_HD[:, kettle:kettle + 3].copy()}

    def camera(self, task, model, aspect: float):
        from mage_core.render import CameraPose

        lookat, dist, az, el = CAMERA
        dist *= max(1.0, (4 / 3) / max(aspect, 1e-3))  # a narrow image needs the camera further back
        return CameraPose(lookat, float(dist), az, el)

    def orbit_camera(self, task, model=None):
        return self.camera(task, model, 4 / 3)

    def summary(self, task) -> str:
        return (f"{task.env_id}, targets {', '.join(targets_of(task))}: arm and objects posed from the observation "
                f"(ghost arms along a plan); key points end effector and kettle; success when every target is done")

    def sub_goals(self, task, states_TD) -> list[tuple[str, int | None]]:
        """Each target sub-task and the first step it is done: its done flag is up (an env observation) or its joints
        are within FrankaKitchen-v1's completion threshold of their goal (a planned state; the env's own test)."""
        s_TD = np.atleast_2d(np.asarray(states_TD, np.float64))
        if s_TD.shape[-1] != obs_dim(targets_of(task)):
            return []
        out = []
        for i, name in enumerate(targets_of(task)):
            idx = [q + OBS_OF_QPOS for q in GOAL_QPOS[name]]
            near = np.linalg.norm(s_TD[:, idx] - np.asarray(GOALS[name]), axis=1) < COMPLETION_THRESHOLD
            hit = np.nonzero(near | (s_TD[:, ENV_OBS_DIM + i] > 0.5))[0]
            out.append((name, int(hit[0]) if len(hit) else None))
        return out


def qpos_of(obs_D: np.ndarray) -> np.ndarray:
    """The model's qpos (30: arm and fingers, then the objects) in a flattened observation."""
    return np.concatenate([obs_D[ROBOT_QPOS], obs_D[OBJECT_QPOS]])


def qvel_of(obs_D: np.ndarray) -> np.ndarray:
    """The model's qvel (29) in a flattened observation."""
    return np.concatenate([obs_D[ROBOT_QVEL], obs_D[OBJECT_QVEL]])
