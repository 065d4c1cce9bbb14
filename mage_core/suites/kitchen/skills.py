"""The kitchen controller's skills: phases (reach a gripper pose, close or open the fingers, drive an articulated
object along its own joint, back away) and, from them, the program of every FrankaKitchen-v1 sub-task, with the
gripper's targets taken from the scene's handles and objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.kitchen.kinematics import (CLOSE, FORWARD_FLAT, OPEN, ControllerConfig, goal_distance,
                                                 partial_turn, pitched)
from mage_core.suites.kitchen.tasks import COMPLETION_THRESHOLD, GOALS, SUBTASKS


# ---- phases ------------------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    """One step of a sub-task's program: each step it gives a gripper pose and a finger action, and says when it is
    over. `start` is called once when the phase begins (phases that work relative to the state they find)."""

    name: str
    target: Callable  # (kin, memo) -> (p_target, R_target)
    grip: float = OPEN  # finger action during the phase
    until: Callable | None = None  # (kin, memo, steps) -> bool: the phase is over (default: the target is reached)
    start: Callable | None = None  # (kin, memo) -> None: record what the phase works relative to
    holds: bool = False  # the fingers hold the object in this phase (both closing on nothing: the grasp is lost)
    tol: float | None = None  # reach tolerance (m) for the default `until` (None: the controller's reach_tol)
    speed: float | None = None  # m: the most the gripper is asked to travel per step (None: the controller's max_move)
    free_roll: bool = False  # only the approach axis is steered, not the roll about it (closed fingers pushing)
    memo: dict = field(default_factory=dict)


def reach(name, target, R, grip=OPEN, tol=None, speed=None, fixed=False, holds=False) -> Phase:
    """Move the gripper to target(kin) (a point) with orientation R (a matrix, or a callable of kin); `fixed`: the
    target is computed once when the phase begins (e.g. a point above a grasped object, which rises with it)."""
    orient = (lambda kin: R(kin)) if callable(R) else (lambda kin: R)
    if not fixed:
        return Phase(name, lambda kin, memo: (target(kin), orient(kin)), grip, tol=tol, speed=speed, holds=holds)

    def start(kin, memo):
        memo["pose"] = (target(kin), orient(kin))

    return Phase(name, lambda kin, memo: memo["pose"], grip, start=start, tol=tol, speed=speed, holds=holds)


def hold(name, grip, steps) -> Phase:
    """Keep the gripper where it is while the fingers close or open for `steps` steps."""
    def start(kin, memo):
        memo["pose"] = kin.tcp()

    return Phase(name, lambda kin, memo: memo["pose"], grip, until=lambda kin, memo, t: t >= steps, start=start)


def follow(name, body: str, joint_qadr: int, direction: float, rate: float, done: Callable, grasped: bool = True,
           turn: float = 1.0) -> Phase:
    """Drive an articulated object along its joint: the gripper keeps the pose it had relative to the object's body
    when the phase began, with the body posed `rate` (rad or m) further along the joint in `direction`, so it
    leads the object (pulling a grasped handle; pushing a lever with the fingers closed, `grasped` False, the gripper
    keeping its orientation). The gripper turns by `turn` times the body's own turn (a vertical bar held in the
    fingers lets the gripper turn less than the door; a knob has to be turned all the way)."""
    def start(kin, memo):
        bid = kin.body_id(body)
        p, R = kin.tcp()
        pb, Rb = kin.body_pose(bid)
        memo.update(bid=bid, rel_p=Rb.T @ (p - pb), Rb0=Rb, R0=R)

    def target(kin, memo):
        q = float(kin.qpos[joint_qadr]) + direction * rate
        pb, Rb = kin.body_pose_at(memo["bid"], joint_qadr, q)
        return pb + Rb @ memo["rel_p"], partial_turn(Rb @ memo["Rb0"].T, turn) @ memo["R0"]

    return Phase(name, target, CLOSE, until=lambda kin, memo, t: done(kin), start=start, holds=grasped)


def retreat(name, distance: float, up: float = 0.0, grip=OPEN, tol: float = 0.03) -> Phase:
    """Back the gripper away along its approach axis (and up), keeping its orientation."""
    def start(kin, memo):
        p, R = kin.tcp()
        memo["pose"] = (p - distance * R[:, 2] + np.array([0.0, 0.0, up]), R)

    return Phase(name, lambda kin, memo: memo["pose"], grip, start=start, tol=tol, free_roll=True)


# ---- the sub-tasks' programs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Handle:
    """Where and how the gripper works one articulated object."""

    site: str  # the site the gripper works at (a handle, a knob, a lever's end)
    body: str  # the body that moves with the object's joint
    qadr: int  # qpos address of that joint (every one is closed at 0)
    direction: float  # +1 or -1: the way the joint opens (turns on)
    lead: float  # rad or m: how far ahead of the object the gripper aims while driving it
    offset: tuple = (0.0, 0.0, 0.0)  # m: the gripper's point from the site, in the world with the joint at rest
    grasp: bool = True  # close the fingers on the handle (False: push with the fingers closed)
    turn: float = 1.0  # share of the object's turn the gripper follows while driving it
    pitch: float = 0.0  # rad: the gripper points this much below the horizontal (a low handle near the robot)
    free_roll: bool = False  # closed fingers pushing: only their approach axis is steered, not their roll about it


HANDLES = {
    # the door's vertical bar; pulled along the hinge, gently (a faster pull slips out of the fingers)
    "microwave": Handle("microhandle_site", "microdoorroot", 22, -1.0, 0.16, turn=0.0, pitch=0.3),
    "slide cabinet": Handle("slide_site", "slidelink", 19, 1.0, 0.06),  # the vertical bar, slid to the right
    "hinge cabinet": Handle("hinge_site2", "hingerightdoor", 21, 1.0, 0.15, turn=0.5),  # the right door's bar, swung open
    # the lever's end, pushed to the left from its right side against the switch's friction
    "light switch": Handle("light_site", "lightswitchroot", 17, -1.0, 0.6, (0.06, 0.0, 0.0), grasp=False, turn=0.0),
    # the knobs' vertical bars, pushed near one end (which turns a knob against its damping several times faster
    # than twisting it between the fingers): the lower knob's lower end to the left, clear of the knob above it,
    # the upper knob's upper end to the right
    "bottom burner": Handle("knob2_site", "knob 2", 11, -1.0, 1.0, (-0.04, -0.03, 0.035), grasp=False, turn=0.0,
                            free_roll=True),
    "top burner": Handle("knob4_site", "knob 4", 15, -1.0, 1.0, (-0.04, -0.03, 0.035), grasp=False, turn=0.0,
                            free_roll=True),
}
KETTLE_HANDLE_HEIGHT = 0.259  # m: the kettle's handle (kettle_site) above its body origin
APPROACH = 0.12  # m: the gripper lines up this far back along its approach axis before moving in


def handle_pose(h: Handle, back: float = 0.0) -> Callable:
    """kin -> (point, rotation): the gripper at a handle as the object stands now (the point at rest moved with the
    object's body, the gripper turned by the handle's share of its turn), `back` m behind it along the approach
    axis."""
    off = np.asarray(h.offset, float)

    def pose(kin):
        bid = kin.body_id(h.body)
        _, Rb = kin.body_pose(bid)
        _, Rb0 = kin.body_pose_at(bid, h.qadr, 0.0)
        turned = Rb @ Rb0.T
        R = partial_turn(turned, h.turn) @ pitched(h.pitch)
        return kin.site(kin.site_id(h.site)) + turned @ off - back * R[:, 2], R

    return pose


def _posed(name, pose, grip=OPEN, tol=None, speed=None, free_roll=False) -> Phase:
    return Phase(name, lambda kin, memo: pose(kin), grip, tol=tol, speed=speed, free_roll=free_roll)


def _done(name: str, margin: float) -> Callable:
    return lambda kin: goal_distance(name, kin.qpos) < margin * COMPLETION_THRESHOLD


def _kettle_site(offset=(0.0, 0.0, 0.0)) -> Callable:
    off = np.asarray(offset, float)
    return lambda kin: kin.site(kin.site_id("kettle_site")) + off


def program(name: str, cfg: ControllerConfig) -> list[Phase]:
    """The phases that perform one sub-task from wherever the gripper is."""
    done = _done(name, cfg.done_margin)
    if name in HANDLES:
        h = HANDLES[name]
        fingers = OPEN if h.grasp else CLOSE
        phases = [_posed("approach", handle_pose(h, APPROACH), fingers, tol=0.025, free_roll=h.free_roll),
                  _posed("reach", handle_pose(h), fingers, free_roll=h.free_roll)]
        if h.grasp:
            phases.append(hold("grasp", CLOSE, cfg.grip_steps))
        phases.append(follow("drive", h.body, h.qadr, h.direction, h.lead, done, grasped=h.grasp, turn=h.turn))
        phases[-1].free_roll = h.free_roll
        if h.grasp:
            phases.append(hold("release", OPEN, cfg.grip_steps))
        return phases + [retreat("retreat", 0.1, grip=fingers)]
    if name == "kettle":  # pinch the handle from the front (fingers above and below it), carry the kettle to the
        # top left burner, set it down
        goal = np.asarray(GOALS["kettle"][:3]) + np.array([0.0, 0.0, KETTLE_HANDLE_HEIGHT])  # the handle there
        return [reach("approach", _kettle_site((0.0, -APPROACH, 0.0)), FORWARD_FLAT, tol=0.025),
                reach("reach", _kettle_site(), FORWARD_FLAT),
                hold("grasp", CLOSE, cfg.grip_steps),
                reach("lift", _kettle_site((0.0, 0.0, 0.06)), FORWARD_FLAT, CLOSE, 0.02, 0.025, fixed=True,
                      holds=True),
                reach("carry", lambda kin: goal + np.array([0.0, 0.0, 0.06]), FORWARD_FLAT, CLOSE, 0.02, 0.03,
                      holds=True),
                reach("set down", lambda kin: goal, FORWARD_FLAT, CLOSE, None, 0.02, holds=True),
                hold("release", OPEN, cfg.grip_steps),
                retreat("retreat", 0.12, tol=0.015)]  # far and exactly enough for the lower finger to clear the handle
    raise MageError(f"FrankaKitchen-v1 has no sub-task {name!r}; its sub-tasks: {', '.join(SUBTASKS)}")
