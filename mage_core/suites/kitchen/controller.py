"""The kitchen's scripted controller: for every FrankaKitchen-v1 sub-task, end-effector targets from the scene's handle
and object poses, joint velocities from MuJoCo's Jacobian by damped least squares, the fingers to grasp and release.

It reads only the flattened observation: the robot's and the objects' joint positions are written into a private
MjData of the kitchen model, whose kinematics give the sites and bodies the targets are computed from
(kinematics.py). Each sub-task is a short program of phases (skills.py); a sequence of sub-tasks runs them one after
the other, trying a sub-task again after a lost grasp or a stuck phase."""
from __future__ import annotations

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.kitchen.kinematics import N_ARM, OPEN, ControllerConfig, Kinematics, goal_distance, pose_turn
from mage_core.suites.kitchen.skills import Phase, program, retreat
from mage_core.suites.kitchen.tasks import COMPLETION_THRESHOLD, ENV_OBS_DIM, check_subtasks


class ScriptedKitchen:
    """Performs a sequence of sub-tasks in one env, one episode: act(obs) -> action.

    A sub-task counts as done when the env's own done flag says so (the observation carries one for each of the
    env's `targets`), or, for the others, when its joints are past the env's threshold (the same measure).

    A sub-task whose grasp is lost (both fingers closed on nothing while holding) or whose phase runs out of steps
    is tried again from a step back, up to cfg.retries times; then the controller gives up on it (`failed`) and
    holds still. `noise` adds N(0, noise) to every action (then clipped to [-1, 1]), drawn from `rng`. `log`
    records (step, sub-task, event) for every sub-task begun, retried, finished or given up."""

    def __init__(self, model, sequence, targets=(), cfg: ControllerConfig | None = None, noise: float = 0.0,
                 rng: np.random.Generator | None = None):
        self.cfg = cfg or ControllerConfig()
        self.kin = Kinematics(model)
        self.sequence = check_subtasks(sequence)
        if not self.sequence:
            raise MageError("the kitchen controller needs at least one sub-task to perform")
        self.targets = check_subtasks(targets, "target sub-task")  # the env's targets: their done flags are read
        self._flags = np.zeros(len(self.targets))  # the targets' done flags in the last observation
        self.noise = float(noise)
        self.rng = rng or np.random.default_rng(0)
        self.q_rest: np.ndarray | None = None  # the arm's posture at the first observation (the null-space pull)
        self.index = 0  # the sub-task under way
        self.phases: list[Phase] = []
        self.phase_index, self.phase_steps, self.retries, self.steps = 0, 0, 0, 0
        self._started = False
        self.failed: str | None = None  # the sub-task the controller gave up on
        self.finished = False  # every sub-task of the sequence performed (by the controller's own estimate)
        self.log: list[tuple] = []
        self._begin(self.sequence[0], retry=False)

    @property
    def current(self) -> str | None:
        """The sub-task under way (None once the sequence is finished or given up)."""
        return None if self.finished or self.failed else self.sequence[self.index]

    @property
    def phase(self) -> str:
        """The name of the phase under way ('' once the sequence is finished or given up)."""
        return self.phases[self.phase_index].name if self.current else ""

    def _begin(self, name: str, retry: bool) -> None:
        self.phases = ([retreat("back off", 0.06, up=0.03)] if retry else []) + program(name, self.cfg)
        self.phase_index, self.phase_steps, self._started = 0, 0, False
        self.log.append((self.steps, name, "retry" if retry else "begin"))

    def _next_subtask(self) -> None:
        self.log.append((self.steps, self.sequence[self.index], "done"))
        self.index += 1
        self.retries = 0
        if self.index >= len(self.sequence):
            self.finished = True
        else:
            self._begin(self.sequence[self.index], retry=False)

    def _trouble(self, why: str) -> None:
        """A lost grasp or a stuck phase: past the env's threshold already, go on; else try the sub-task again, or
        give up on it."""
        name = self.sequence[self.index]
        self.log.append((self.steps, name, why))
        if self._subtask_done():
            self._next_subtask()
            return
        if self.retries >= self.cfg.retries:
            self.failed = name
            self.log.append((self.steps, name, "gave up"))
            return
        self.retries += 1
        self._begin(name, retry=True)

    def act(self, obs_D: np.ndarray) -> np.ndarray:
        """The action (7 arm and 2 finger velocities in [-1, 1]) for one flattened observation."""
        obs_D = np.asarray(obs_D, np.float64)
        kin = self.kin
        kin.set_obs(obs_D)
        self._flags = obs_D[ENV_OBS_DIM:ENV_OBS_DIM + len(self.targets)]
        if self.q_rest is None:  # the first posture, inside the joints' limits
            lo, hi = kin.arm_limits(self.cfg.limit_margin)
            self.q_rest = np.clip(kin.qpos[:N_ARM], lo, hi)
        self.steps += 1
        ph = self._current_phase(obs_D)
        a = np.zeros(9)
        if ph is None:  # finished or given up: hold still, fingers open
            a[:N_ARM] = kin.servo_action(np.zeros(N_ARM))
            a[7:] = OPEN
            return self._noisy(a)
        p_t, R_t = ph.target(kin, ph.memo)
        a[:N_ARM] = kin.servo_action(kin.arm_step(p_t, R_t, self.cfg, self.q_rest, ph.speed, ph.free_roll))
        a[7:] = ph.grip
        self.phase_steps += 1
        return self._noisy(a)

    def _current_phase(self, obs_D: np.ndarray) -> Phase | None:
        """The phase to act in now, after handing on from phases that are over (several may end in one step)."""
        for _ in range(4 * len(self.phases) + 4):
            if self.finished or self.failed:
                return None
            if self.phase_index == 0 and not self._started and self._subtask_done():
                self._next_subtask()  # already done (e.g. by an earlier sub-task's push): nothing to do
                continue
            ph = self.phases[self.phase_index]
            if not self._started:
                ph.memo = {}
                if ph.start is not None:
                    ph.start(self.kin, ph.memo)
                self._started = True
            if ph.holds and self.phase_steps >= 2 and float(np.max(obs_D[7:9])) < self.cfg.empty_grip:
                self._trouble("lost grasp")
                continue
            if self.phase_steps >= self.cfg.phase_steps:
                self._trouble("stuck")
                continue
            if not self._over(ph):
                return ph
            self.phase_index += 1
            self.phase_steps, self._started = 0, False
            if self.phase_index >= len(self.phases):
                self._next_subtask()
        raise MageError("the kitchen controller's phases did not settle")  # unreachable: every phase takes a step

    def _subtask_done(self) -> bool:
        name = self.sequence[self.index]
        if name in self.targets and self._flags[self.targets.index(name)] > 0.5:
            return True
        return goal_distance(name, self.kin.qpos) < self.cfg.counted_margin * COMPLETION_THRESHOLD

    def _over(self, ph: Phase) -> bool:
        if ph.until is not None:
            return bool(ph.until(self.kin, ph.memo, self.phase_steps))
        p_t, R_t = ph.target(self.kin, ph.memo)
        p, R = self.kin.tcp()
        tol = ph.tol if ph.tol is not None else self.cfg.reach_tol
        return np.linalg.norm(p_t - p) < tol and np.linalg.norm(pose_turn(R, R_t, ph.free_roll)) < self.cfg.turn_tol

    def _noisy(self, a: np.ndarray) -> np.ndarray:
        if self.noise > 0:
            a = a + self.rng.normal(0.0, self.noise, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
