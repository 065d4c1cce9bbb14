"""The generic suite: any gymnasium MuJoCo env no other suite claims — trains, evaluates, plans, plots, and poses the
robot where the observation is the env's positions then velocities (the standard MuJoCo layout)."""
from __future__ import annotations

import numpy as np

from mage_core.suites.base import Suite, scratch_data

ROOT_BODY = 1  # body 1 is the robot's root (torso) in the standard MuJoCo envs; body 0 is the world


def _layout(model, obs_dim: int) -> int | None:
    """How many leading qpos entries the observation leaves out (0-2, e.g. a walker's x), or None if it is not
    [qpos[skip:], qvel]."""
    skip = int(model.nq) + int(model.nv) - int(obs_dim)
    return skip if 0 <= skip <= 2 else None


_CONTROL_DT: dict[str, float] = {}  # task name -> seconds per env step (MuJoCo timestep x frame skip)


def control_dt(task, model) -> float:
    """Seconds per env step: the env's own dt (read once per task), else the model's timestep."""
    if task.name not in _CONTROL_DT:
        try:
            env = task.make_env(mode="eval")
            _CONTROL_DT[task.name] = float(getattr(env.unwrapped, "dt", model.opt.timestep))
            env.close()
        except Exception:  # noqa: BLE001 - an env that cannot be made here: the model's own step
            _CONTROL_DT[task.name] = float(model.opt.timestep)
    return _CONTROL_DT[task.name]


class GenericSuite(Suite):
    """Fallback for Minari datasets of MuJoCo envs without a dedicated suite (Hopper, HalfCheetah, Walker2d, ...)."""

    name = "generic"
    title = "MuJoCo (generic)"

    def claims(self, env_id, spec, meta) -> bool:
        return True  # the registry asks it last

    def can_pose(self, task, model, obs_dim) -> bool:
        return model is not None and _layout(model, obs_dim) is not None

    def pose(self, task, model, data, obs_D) -> None:
        import mujoco

        skip = _layout(model, len(obs_D))
        nq = int(model.nq)
        data.qpos[skip:] = np.asarray(obs_D[: nq - skip], np.float64)
        data.qvel[:] = np.asarray(obs_D[nq - skip: nq - skip + int(model.nv)], np.float64)
        mujoco.mj_kinematics(model, data)

    def pose_path(self, task, model, states_HD, steps=None) -> list[np.ndarray]:
        """qpos per planned step (or at the indices `steps`); positions the observation leaves out (a walker's x, y)
        are integrated from the planned velocities so ghosts move along the plan instead of piling up at the
        origin (every step is posed for that; posing here is cheap)."""
        skip = _layout(model, states_HD.shape[-1])
        dt = control_dt(task, model)
        out, free = [], np.zeros(skip or 0)
        with scratch_data(model) as data:
            for s in states_HD:
                self.pose(task, model, data, s)
                if skip:
                    data.qpos[:skip] = free
                    free = free + data.qvel[:skip] * dt
                out.append(data.qpos.copy())
        return out if steps is None else [out[int(i)] for i in steps]

    def key_point_names(self, task) -> tuple:
        return ("torso",)

    def key_points(self, task, model, states_HD) -> dict:
        import mujoco

        if model is None or not self.can_pose(task, model, states_HD.shape[-1]):
            return {}
        pts = []
        with scratch_data(model, slot=1) as data:  # pose_path borrows slot 0
            for q in self.pose_path(task, model, states_HD):
                data.qpos[:] = q
                mujoco.mj_kinematics(model, data)
                pts.append(data.xpos[min(ROOT_BODY, model.nbody - 1)].copy())
        return {"torso": np.asarray(pts)}

    def summary(self, task) -> str:
        return "generic MuJoCo task: robot posed from [qpos, qvel] observations where they match, else plots only"
