"""Adroit's scene facet: the hand posed from an observation (a small pose solver recovers the objects), key points,
ghosts and cameras, and an evaluation env moved to a dataset state."""
from __future__ import annotations

from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.adroit.tasks import LAYOUTS, kind_of
from mage_core.suites.base import EditableState, SceneFacet, scratch_data

# Default viewport camera per task: (look-at xyz, distance, azimuth, elevation), chosen from renders of each scene
CAMERAS = {"door": ((0.05, -0.1, 0.2), 1.45, 60.0, -35.0), "hammer": ((0.0, -0.12, 0.17), 0.8, 335.0, -25.0),
           "pen": ((0.0, -0.2, 0.2), 0.8, 135.0, -25.0), "relocate": ((0.0, -0.05, 0.2), 1.3, 150.0, -25.0)}

GHOSTLESS_BODIES = {"door": ("door", "latch")}  # moving bodies not drawn for ghosts, besides the forearm
FIRST_HIDDEN_GROUP = 3  # MuJoCo's default mjvOption shows geom groups 0-2 only; Adroit's collision geoms are 3-4

FD_EPS = 1e-6  # finite-difference step of the pose solver (m or rad)
SOLVE_ITERS = 30  # Gauss-Newton iterations at most
SOLVE_TOL = 1e-14  # stop when the squared residual is below this
SOLVE_STEP_TOL = 1e-9  # ... or when a step moves no parameter more than this
# pose_in_scene's looser stops (0.1 mm, or 6 iterations: the pen's fit is within 0.02 degrees of the 30-iteration one)
# and stronger damping (unobserved directions barely move): a ghost is drawn, not simulated
DRAW_TOL, DRAW_STEP_TOL, DRAW_DAMPING, DRAW_ITERS = 1e-8, 1e-5, 1e-4, 6
SOLVE_DAMPING = 1e-9  # Levenberg damping: picks the smallest step along unobserved directions (pen roll)


class Names:
    """Body and site ids by name, with a MageError naming what a model lacks."""

    def __init__(self, model):
        self.model = model

    def _id(self, kind, name: str) -> int:
        import mujoco

        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise MageError(f"the MuJoCo model has no {name!r}; is it an Adroit model?")
        return int(i)

    def body(self, name: str) -> int:
        import mujoco

        return self._id(mujoco.mjtObj.mjOBJ_BODY, name)

    def site(self, name: str) -> int:
        import mujoco

        return self._id(mujoco.mjtObj.mjOBJ_SITE, name)


def solve(model, data, write: Callable, resid: Callable, p0: np.ndarray, tol: float = SOLVE_TOL,
          step_tol: float = SOLVE_STEP_TOL, damping: float = SOLVE_DAMPING, iters: int = SOLVE_ITERS) -> np.ndarray:
    """Damped Gauss-Newton on a few state parameters so the posed kinematics reproduce the observed positions."""
    import mujoco

    p = np.asarray(p0, np.float64).copy()
    for _ in range(iters):
        write(p)
        mujoco.mj_kinematics(model, data)
        r = resid()
        if float(r @ r) < tol:
            break
        J = np.empty((len(r), len(p)))
        for j in range(len(p)):
            q = p.copy()
            q[j] += FD_EPS
            write(q)
            mujoco.mj_kinematics(model, data)
            J[:, j] = (resid() - r) / FD_EPS
        step = np.linalg.solve(J.T @ J + damping * np.eye(len(p)), -J.T @ r)
        p = p + step
        if float(np.abs(step).max()) < step_tol:  # converged to a least-squares fit (inconsistent obs)
            break
    write(p)
    mujoco.mj_kinematics(model, data)
    return p


class AdroitScene(SceneFacet):
    """How the studio and the renderer pose and draw an Adroit task."""

    # ---- initial state -------------------------------------------------------------------------------------------
    def editable(self, task) -> EditableState:
        return EditableState(points=(), from_dataset=True, from_reset=True)

    def reset_env_to_obs(self, task, env, obs_D) -> np.ndarray:
        """Move an (already reset) env to the state an observation describes, e.g. a dataset state to Run from;
        returns the env's own observation there. Exact up to what pose() documents (velocities the observation
        lacks are zero, pen roll and ball spin unobserved)."""
        import mujoco

        self.check_obs(task, obs_D)
        u = env.unwrapped
        self.pose(task, u.model, u.data, obs_D)
        mujoco.mj_forward(u.model, u.data)
        return task.flatten_obs(u._get_obs())

    # ---- drawing and posing --------------------------------------------------------------------------------------
    def hide_for_ghost(self, task, model) -> set:
        """Ghosts draw the hand from the wrist on and the moving objects: geoms welded to the world (table, door
        frame, nail board, pen target), the forearm (a large cylinder that would cover the hand ghosts; its
        motion shows in the palm path), the door itself (a dozen translucent doors hide the hand; the door's swing
        shows in the handle path) and the collision geoms in groups 3+ (the Adroit models' capsules and
        spheres, which the viewer hides by default) are left out."""
        import mujoco

        hidden_bodies = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b)
                         for b in ("forearm",) + GHOSTLESS_BODIES.get(kind_of(task), ())}
        return {i for i in range(model.ngeom)
                if int(model.body_weldid[model.geom_bodyid[i]]) == 0 or int(model.geom_bodyid[i]) in hidden_bodies
                or int(model.geom_group[i]) >= FIRST_HIDDEN_GROUP}

    def can_pose(self, task, model, obs_dim) -> bool:
        lay = LAYOUTS[kind_of(task)]
        return model is not None and int(model.nq) == lay.nq and int(obs_dim) == lay.obs_dim

    def pose_in_scene(self, task, model, data, obs_D) -> None:
        """pose() with the scene constants held (door frame, nail board, pen target, relocate target): a ghost of a
        plan fits only the moving parts, and never moves the condition's scene (it is also a smaller fit)."""
        self.pose(task, model, data, obs_D, hold_scene=True)

    def pose(self, task, model, data, obs_D, hold_scene: bool = False) -> None:
        """Set the hand's qpos from the observation and solve the rest of the state the observation fixes.

        Exact: every hand joint the observation lists; door: the arm's ARTz slide (from the palm position), the door
        hinge and latch, the door frame's position (model.body_pos, from the handle position); hammer: the hammer's
        six joints (from its position and Euler angles) and the nail board's position (from the nail's); relocate:
        the ball's position (its three slides) and the target (model.site_pos). Approximate: the ball's spin
        (relocate; a sphere, invisible) and the pen's roll about its own axis are not observed and kept near their
        previous value; velocities the observation lacks are zero. The per-episode scene constants (door frame,
        nail board, pen target orientation, relocate target) are written into `model`, shared by every pose of it;
        with hold_scene they are kept as they are and only the hand and the moving object are fit (pose_in_scene).
        An env observation is itself slightly inconsistent: its qpos is after the last physics substep but its
        site/body positions (palm, handle, hammer, nail) are from before it (MuJoCo's mj_step computes kinematics
        first), so posing a recorded observation reproduces those positions to a few mm, in a least-squares fit.
        """
        import mujoco

        kind = kind_of(task)
        lay = LAYOUTS[kind]
        obs_D = np.asarray(obs_D, np.float64)
        if not self.can_pose(task, model, len(obs_D)):
            raise MageError(f"{task.name}: cannot pose a {len(obs_D)}-dim observation on a model with nq={model.nq}")
        a, b, c = lay.hand_qpos
        data.qpos[a:b] = obs_D[c:c + b - a]
        data.qvel[:] = 0.0
        sl = self.obs_slices(task)
        names = Names(model)
        if kind == "door":
            data.qpos[29] = obs_D[sl["latch"]][0]
            data.qpos[28] = obs_D[sl["door_hinge"]][0]
            frame = names.body("frame")
            grasp, handle = names.site("S_grasp"), names.site("S_handle")

            def write(p):
                data.qpos[0] = p[0]
                if not hold_scene:
                    model.body_pos[frame] = p[1:4]

            def resid():
                palm = data.site_xpos[grasp] - obs_D[sl["palm_xyz"]]
                return palm if hold_scene else np.concatenate([palm, data.site_xpos[handle] - obs_D[sl["handle_xyz"]]])

            p0 = np.concatenate([[data.qpos[0]], [] if hold_scene else model.body_pos[frame]])
        elif kind == "hammer":
            from gymnasium_robotics.utils.rotations import euler2mat

            obj, board, nail = names.body("Object"), names.body("nail_board"), names.site("S_target")
            R_want = euler2mat(obs_D[sl["object_euler"]])
            data.qvel[27:33] = obs_D[sl["object_vel"]]

            def write(p):
                data.qpos[27:33] = p[:6]
                if not hold_scene:
                    model.body_pos[board] = p[6:9]

            def resid():
                r = [data.xpos[obj] - obs_D[sl["object_xyz"]], (data.xmat[obj].reshape(3, 3) - R_want).ravel()]
                return np.concatenate(r if hold_scene else r + [data.site_xpos[nail] - obs_D[sl["target_xyz"]]])

            p0 = np.concatenate([data.qpos[27:33], [] if hold_scene else model.body_pos[board]])
        elif kind == "pen":
            from gymnasium_robotics.utils.rotations import euler2quat

            obj, tgt = names.body("Object"), names.body("target")
            top, bot = names.site("object_top"), names.site("object_bottom")
            ttop, tbot = names.site("target_top"), names.site("target_bottom")
            data.qvel[24:30] = obs_D[sl["object_vel"]]
            mujoco.mj_kinematics(model, data)
            pen_len = np.linalg.norm(data.site_xpos[top] - data.site_xpos[bot])  # rigid: the same in every pose
            tar_len = np.linalg.norm(data.site_xpos[ttop] - data.site_xpos[tbot])

            def write(p):
                data.qpos[24:30] = p[:6]
                if not hold_scene:
                    model.body_quat[tgt] = euler2quat(np.array([p[6], p[7], 0.0]))  # as the env's reset draws it

            def resid():
                r = [data.xpos[obj] - obs_D[sl["object_xyz"]],
                     (data.site_xpos[top] - data.site_xpos[bot]) / pen_len - obs_D[sl["object_axis"]]]
                if not hold_scene:
                    r.append((data.site_xpos[ttop] - data.site_xpos[tbot]) / tar_len - obs_D[sl["target_axis"]])
                return np.concatenate(r)

            from gymnasium_robotics.utils.rotations import quat2euler

            p0 = np.concatenate([data.qpos[24:30], [] if hold_scene else quat2euler(model.body_quat[tgt])[:2]])
        else:  # relocate
            obj, tgt, grasp = names.body("Object"), names.site("target"), names.site("S_grasp")
            mujoco.mj_kinematics(model, data)
            palm = data.site_xpos[grasp].copy()  # the hand is posed: the palm is known, ball and target are relative
            want_obj = palm - obs_D[sl["palm_minus_object"]]
            if not hold_scene:
                model.site_pos[tgt] = palm - obs_D[sl["palm_minus_target"]]  # the target site hangs on the world body

            def write(p):
                data.qpos[30:33] = p

            def resid():
                return data.xpos[obj] - want_obj

            p0 = data.qpos[30:33].copy()
        solve(model, data, write, resid, p0, *((DRAW_TOL, DRAW_STEP_TOL, DRAW_DAMPING, DRAW_ITERS) if hold_scene else ()))

    def key_point_names(self, task) -> tuple:
        return ("palm", "object") if kind_of(task) == "door" else ("palm", "object", "target")

    def key_points(self, task, model, states_HD) -> dict:
        """Palm, object (door: the handle) and target xyz along a plan: read from the observation where it holds them
        (door, hammer; pen's object and target), else from the posed kinematics (pen's palm, relocate)."""
        kind = kind_of(task)
        s_HD = np.asarray(states_HD, np.float64)
        sl = self.obs_slices(task)
        if kind == "door":
            return {"palm": s_HD[:, sl["palm_xyz"]], "object": s_HD[:, sl["handle_xyz"]]}
        if kind == "hammer":
            return {"palm": s_HD[:, sl["palm_xyz"]], "object": s_HD[:, sl["object_xyz"]],
                    "target": s_HD[:, sl["target_xyz"]]}
        if model is None or not self.can_pose(task, model, s_HD.shape[-1]):
            return {}
        palm_H3 = self._palm_path(task, model, s_HD)
        if kind == "pen":
            return {"palm": palm_H3, "object": s_HD[:, sl["object_xyz"]],
                    "target": s_HD[:, sl["object_xyz"]] - s_HD[:, sl["object_minus_target"]]}
        return {"palm": palm_H3, "object": palm_H3 - s_HD[:, sl["palm_minus_object"]],
                "target": palm_H3 - s_HD[:, sl["palm_minus_target"]]}

    def _palm_path(self, task, model, s_HD) -> np.ndarray:
        """The palm (S_grasp site) for each planned hand configuration (forward kinematics of the hand qpos only)."""
        import mujoco

        a, b, c = LAYOUTS[kind_of(task)].hand_qpos
        grasp = Names(model).site("S_grasp")
        out = []
        with scratch_data(model) as data:
            for s in s_HD:
                data.qpos[a:b] = s[c:c + b - a]
                mujoco.mj_kinematics(model, data)
                out.append(data.site_xpos[grasp].copy())
        return np.asarray(out)

    def camera(self, task, model, aspect: float):
        """A three-quarter view of where the hand works (the envs' own defaults look at the model's centre, under
        the table, from 1.5-2 m: the hand is small there)."""
        from mage_core.render import CameraPose

        return CameraPose(*CAMERAS[kind_of(task)])

    def summary(self, task) -> str:
        kind = kind_of(task)
        what = {"door": "door angle and frame", "hammer": "hammer pose and nail board", "pen": "pen and target axis",
                "relocate": "ball and target"}[kind]
        return f"Adroit {kind}: hand posed from the observation, {what} recovered from it; key points palm, object" + (
            "" if kind == "door" else ", target")
