"""The kitchen controller's kinematics: the gripper's frames, one damped-least-squares step of the arm towards a
gripper pose (MuJoCo's Jacobian, joint limits held), the servo actions that make the step happen, rotation helpers.

The env's actions are joint velocities (7 arm joints, 2 fingers) in [-1, 1], scaled by 2 rad/s (m/s for the fingers)
and integrated over one 0.08 s step (12.5 Hz) from the observed joint positions into the position servos' targets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.kitchen.tasks import CONTROL_DT, GOAL_QPOS, GOALS, NQ, OBJECT_QPOS, ROBOT_QPOS

ACTION_SCALE = 2.0  # FrankaKitchen-v1: action 1 = 2 rad/s (arm) or 2 m/s (fingers)
N_ARM = 7  # arm joints: qpos[0:7]
TCP_OFFSET = 0.01  # m along the approach axis from the model's 'end_effector' site to the middle of the finger pads
OPEN, CLOSE = 1.0, -1.0  # finger actions
# FrankaKitchen-v1 clips the arm's servo targets to these (franka_config.xml's pos_bound), inside or beyond the model's
# joint ranges (joint 6 may not go below 0 there); the controller keeps the joints inside both.
SERVO_BOUNDS = np.array([(-2.9, 2.9), (-1.8, 1.8), (-2.9, 2.9), (-3.1, 0.0), (-2.9, 2.9), (0.0, 3.8), (-2.9, 2.9)])


def _frame(approach, fingers) -> np.ndarray:
    """Rotation matrix of the gripper (columns: the 'end_effector' site's x, y, z axes in the world) whose approach
    axis (site z) and finger axis (site y, the line the fingers close along) are the given world directions."""
    z = np.asarray(approach, float) / np.linalg.norm(approach)
    y = np.asarray(fingers, float) / np.linalg.norm(fingers)
    return np.column_stack([np.cross(y, z), y, z])


# Gripper orientations in the kitchen's world (the robot stands at the origin facing +y, the kitchen in front).
FORWARD = _frame((0, 1, 0), (1, 0, 0))  # pointing into the kitchen, fingers closing sideways: vertical handles
FORWARD_FLAT = _frame((0, 1, 0), (0, 0, 1))  # pointing into the kitchen, fingers closing up-down: horizontal bars


def pitched(angle: float) -> np.ndarray:
    """FORWARD tilted to point `angle` rad below the horizontal (fingers still closing sideways)."""
    return _frame((0.0, np.cos(angle), -np.sin(angle)), (1, 0, 0))


@dataclass
class ControllerConfig:
    """Gains and limits of the scripted controller."""

    pos_gain: float = 0.7  # share of the position error corrected per step
    rot_gain: float = 0.6  # share of the orientation error corrected per step
    max_move: float = 0.045  # m: the most the gripper is asked to travel in one step (0.56 m/s)
    max_turn: float = 0.25  # rad: the most the gripper is asked to turn in one step
    rot_weight: float = 0.3  # m per rad: weight of orientation against position in the least squares
    damping: float = 0.03  # damped least squares' lambda (m)
    limit_margin: float = 0.05  # rad: joints are held this far inside their limits
    null_gain: float = 0.1  # share of the distance to the rest posture closed per step in the Jacobian's null space
    reach_tol: float = 0.012  # m: a reach phase ends this close to its target ...
    turn_tol: float = 0.1  # rad: ... and this close to its orientation
    grip_steps: int = 4  # steps the fingers get to close or open
    empty_grip: float = 0.004  # m: both fingers closed further than this while holding: the grasp is lost
    phase_steps: int = 60  # steps one phase may take before the sub-task is tried again
    retries: int = 2  # times a sub-task is tried again (after a lost grasp or a stuck phase) before giving up
    done_margin: float = 0.7  # a sub-task's drive stops once its goal distance is under this share of the threshold
    counted_margin: float = 0.9  # ... and a sub-task this far in is not begun or tried again


class Kinematics:
    """The kitchen model's kinematics at an observation: the gripper's pose and Jacobian, object sites and bodies."""

    def __init__(self, model):
        import mujoco

        if int(model.nq) != NQ:
            raise MageError(f"the kitchen controller needs the FrankaKitchen-v1 model (nq={NQ}), got nq={model.nq}")
        self.mj = mujoco
        self.model = model
        self.data = mujoco.MjData(model)
        self.ee = self._id(mujoco.mjtObj.mjOBJ_SITE, "end_effector")
        self.hand = int(model.site_bodyid[self.ee])
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._bias = np.zeros(model.nv)

    def _id(self, kind, name: str) -> int:
        i = self.mj.mj_name2id(self.model, kind, name)
        if i < 0:
            raise MageError(f"the kitchen model has no {name!r}")
        return int(i)

    def site_id(self, name: str) -> int:
        return self._id(self.mj.mjtObj.mjOBJ_SITE, name)

    def body_id(self, name: str) -> int:
        return self._id(self.mj.mjtObj.mjOBJ_BODY, name)

    def set_obs(self, obs_D: np.ndarray) -> None:
        """Pose the private data at a flattened observation (robot and object joint positions)."""
        self.set_qpos(np.concatenate([obs_D[ROBOT_QPOS], obs_D[OBJECT_QPOS]]))

    def set_qpos(self, qpos: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        self.mj.mj_kinematics(self.model, self.data)
        self.mj.mj_comPos(self.model, self.data)

    @property
    def qpos(self) -> np.ndarray:
        return self.data.qpos

    def tcp(self) -> tuple[np.ndarray, np.ndarray]:
        """(position between the finger pads, gripper rotation matrix)."""
        R = self.data.site_xmat[self.ee].reshape(3, 3).copy()
        return self.data.site_xpos[self.ee] + TCP_OFFSET * R[:, 2], R

    def site(self, sid: int) -> np.ndarray:
        return self.data.site_xpos[sid].copy()

    def body_pose(self, bid: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.xpos[bid].copy(), self.data.xmat[bid].reshape(3, 3).copy()

    def body_pose_at(self, bid: int, qadr: int, value: float) -> tuple[np.ndarray, np.ndarray]:
        """A body's pose were the joint at qpos[qadr] at `value` (the rest of the state as it is)."""
        saved = self.data.qpos.copy()
        self.data.qpos[qadr] = value
        self.mj.mj_kinematics(self.model, self.data)
        pose = self.body_pose(bid)
        self.set_qpos(saved)
        return pose

    def arm_step(self, p_target, R_target, cfg: ControllerConfig, q_rest: np.ndarray,
                 max_move: float | None = None, free_roll: bool = False) -> np.ndarray:
        """Arm joint displacements for one step that move the gripper towards a pose, by damped least squares on
        the 6-D pose error, plus a pull towards the rest posture in the Jacobian's null space; joints that would run
        into their limits are held."""
        p, R = self.tcp()
        e_p = cfg.pos_gain * (np.asarray(p_target) - p)
        n, cap = np.linalg.norm(e_p), max_move or cfg.max_move
        if n > cap:
            e_p *= cap / n
        e_r = cfg.rot_gain * pose_turn(R, R_target, free_roll)
        n = np.linalg.norm(e_r)
        if n > cfg.max_turn:
            e_r *= cfg.max_turn / n
        self.mj.mj_jac(self.model, self.data, self._jacp, self._jacr, p, self.hand)
        J = np.vstack([self._jacp[:, :N_ARM], cfg.rot_weight * self._jacr[:, :N_ARM]])
        e = np.concatenate([e_p, cfg.rot_weight * e_r])
        q = self.qpos[:N_ARM]
        lo, hi = self.arm_limits(cfg.limit_margin)
        free = np.ones(N_ARM, bool)
        held = np.zeros(N_ARM)  # the steps of joints held at a limit
        for _ in range(N_ARM):  # joints that would cross a limit stop at it, and the others solve for the rest
            Jf = J * free
            JJt = Jf @ Jf.T + cfg.damping ** 2 * np.eye(6)
            J_pinv = Jf.T @ np.linalg.solve(JJt, np.eye(6))
            posture = cfg.null_gain * (q_rest - q) * free
            dq = J_pinv @ (e - J @ held) + (np.eye(N_ARM) - J_pinv @ Jf) @ posture
            dq = np.where(free, dq, held)
            crossing = free & ((q + dq < lo) | (q + dq > hi))
            if not crossing.any():
                break
            held[crossing] = np.clip(q + dq, lo, hi)[crossing] - q[crossing]
            free &= ~crossing
        return dq

    def arm_limits(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) positions the arm's joints are kept within: the model's ranges and the env's servo bounds."""
        lo = np.maximum(self.model.jnt_range[:N_ARM, 0], SERVO_BOUNDS[:, 0]) + margin
        hi = np.minimum(self.model.jnt_range[:N_ARM, 1], SERVO_BOUNDS[:, 1]) - margin
        return lo, hi

    def servo_action(self, dq: np.ndarray) -> np.ndarray:
        """The arm's actions that make its position servos move the joints by dq in one step: the servo target is
        the observed position plus action * 2 rad/s * 0.08 s, and a servo of stiffness kp against joint damping d and
        gravity lags, so the target leads by the gravity torque / kp and by d / (kp dt) of the motion."""
        m, d = self.model, self.data
        d.qvel[:] = 0.0
        self.mj.mj_comVel(m, d)
        self.mj.mj_rne(m, d, 0, self._bias)  # gravity torques at this posture
        kp = m.actuator_gainprm[:N_ARM, 0]
        lead = 1.0 + m.dof_damping[:N_ARM] / (kp * CONTROL_DT)
        full = ACTION_SCALE * CONTROL_DT  # the servo lead of action 1
        hold = self._bias[:N_ARM] / kp
        move = dq * lead
        room = np.where(move >= 0, full - hold, full + hold)  # what actions of +-1 leave for the motion
        over = np.abs(move) > np.maximum(room, 1e-9)
        if over.any():  # slow the whole motion down rather than clip joints (which would bend the path)
            move *= float(np.min(np.maximum(room[over], 0.0) / np.abs(move[over])))
        return (move + hold) / full


def rotation_error(R: np.ndarray, R_target: np.ndarray) -> np.ndarray:
    """The rotation vector (world frame) that turns R into R_target."""
    R_err = R_target @ R.T
    angle = np.arccos(np.clip((np.trace(R_err) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([R_err[2, 1] - R_err[1, 2], R_err[0, 2] - R_err[2, 0], R_err[1, 0] - R_err[0, 1]])
    s = np.linalg.norm(axis)
    if s < 1e-9:  # a half turn: any axis orthogonal to the fixed points
        w, v = np.linalg.eigh(R_err + R_err.T)
        return angle * v[:, -1]
    return angle * axis / s


def pose_turn(R: np.ndarray, R_target: np.ndarray, free_roll: bool) -> np.ndarray:
    """The rotation vector that turns the gripper to R_target, or with free_roll only its approach axis (site z)."""
    if not free_roll:
        return rotation_error(R, R_target)
    z, zt = R[:, 2], R_target[:, 2]
    axis = np.cross(z, zt)
    s = float(np.linalg.norm(axis))
    angle = float(np.arctan2(s, float(z @ zt)))
    return np.zeros(3) if s < 1e-9 else angle * axis / s


def partial_turn(R: np.ndarray, share: float) -> np.ndarray:
    """The rotation about R's own axis by `share` of R's angle."""
    import mujoco

    if share == 1.0:
        return R
    v = rotation_error(np.eye(3), R) * share
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, v / angle, angle)
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, q)
    return out.reshape(3, 3)


def goal_distance(name: str, qpos: np.ndarray) -> float:
    """How far a sub-task's joints are from its goal (FrankaKitchen-v1's completion measure)."""
    return float(np.linalg.norm(qpos[list(GOAL_QPOS[name])] - np.asarray(GOALS[name])))
