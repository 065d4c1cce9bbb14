"""FrankaKitchen-v1 as the kitchen suite makes it: a fix, scoped to the suite's own envs, for gymnasium-robotics'
robot observation on mujoco 4, and the flattened observation (the env's 'observation' and one done flag per target).

gymnasium-robotics 1.4.2 reads the robot's joints with `mujoco_utils.get_joint_qpos`, which asserts
`joint_type in (mjJNT_HINGE, mjJNT_SLIDE)`; mujoco 4's joint-type enums no longer compare equal to the model's int32
joint types inside `in`, so constructing FrankaKitchen-v1 raises AssertionError. `FixedKitchenEnv` is FrankaKitchen-v1
whose robot reads its nine joints by their qpos / qvel addresses instead (the same values, the same noise); only envs
this suite makes use it (tests/core/test_kitchen.py says when upstream no longer needs it).

This module imports gymnasium-robotics; the suite imports it only when it makes an env."""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base import import_robotics
from mage_core.suites.kitchen.tasks import ENV_ID, ENV_OBS_DIM

import_robotics()
from gymnasium_robotics.envs.franka_kitchen.franka_env import FrankaRobot  # noqa: E402
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import KitchenEnv  # noqa: E402

N_ROBOT_JOINTS = 9  # 7 arm joints and 2 fingers: qpos[0:9] and qvel[0:9] of the kitchen model


class FixedRobot(FrankaRobot):
    """FrankaRobot reading its joints by address rather than through the helper that fails on mujoco 4."""

    def _get_obs(self):
        qpos = self.data.qpos[:N_ROBOT_JOINTS].copy()
        qvel = self.data.qvel[:N_ROBOT_JOINTS].copy()
        qpos += (self.robot_noise_ratio * self.robot_pos_noise_amp[:N_ROBOT_JOINTS]
                 * self.np_random.uniform(low=-1.0, high=1.0, size=qpos.shape))
        qvel += (self.robot_noise_ratio * self.robot_vel_noise_amp[:N_ROBOT_JOINTS]
                 * self.np_random.uniform(low=-1.0, high=1.0, size=qvel.shape))
        self._last_robot_qpos = qpos  # velocity actions integrate from the last observed position, as upstream
        return np.concatenate((qpos.copy(), qvel.copy()))


class FixedKitchenEnv(KitchenEnv):
    """FrankaKitchen-v1 whose robot is a FixedRobot. KitchenEnv builds a FrankaRobot and reads it at once in its
    constructor, so the robot's class is swapped as it is assigned, for this env instance only (FixedRobot only
    overrides a method, so the object's layout is the same)."""

    def __setattr__(self, name, value):
        if name == "robot_env" and type(value) is FrankaRobot:
            value.__class__ = FixedRobot
        super().__setattr__(name, value)


class FlatKitchenObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The Dict observation flattened to the env's 'observation' and one done flag per target sub-task (in the env's
    tasks_to_complete order, 1 once the env counted it this episode); info['success'] once every target is done."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.targets = tuple(env.unwrapped.goal)  # KitchenEnv keeps tasks_to_complete's order here
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (ENV_OBS_DIM + len(self.targets),), np.float64)

    def flags(self) -> np.ndarray:
        done = self.env.unwrapped.episode_task_completions
        return np.array([t in done for t in self.targets], np.float64)

    def observation(self, observation):
        return np.concatenate([np.asarray(observation["observation"], np.float64), self.flags()])

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info["success"] = bool(self.flags().all())
        return obs, reward, terminated, truncated, info


def make_kitchen_env(task_name: str, max_episode_steps: int | None = None, render_mode: str | None = None,
                     **kwargs) -> FlatKitchenObs:
    """FrankaKitchen-v1 (a FixedKitchenEnv) with the flat observation; kwargs are FrankaKitchen-v1's (e.g.
    tasks_to_complete). Its spec keeps the id FrankaKitchen-v1 and names this module's env and wrapper."""
    gym.register_envs(import_robotics())
    # the passive checker only warns that KitchenEnv hands out its goal dict itself on every step
    spec = dataclasses.replace(gym.spec(ENV_ID), entry_point=f"{__name__}:FixedKitchenEnv", disable_env_checker=True)
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(spec, **kwargs)
    except Exception as exc:  # an unknown sub-task (ValueError), bad kwargs
        raise MageError(f"cannot create {ENV_ID} for task {task_name}: {exc}") from exc
    return FlatKitchenObs(env)


def flat_wrapper(env) -> FlatKitchenObs:
    """The FlatKitchenObs of an env the suite made (the env itself, or one wrapping it)."""
    e = env
    while not isinstance(e, FlatKitchenObs):
        if not hasattr(e, "env"):
            raise MageError("not a kitchen env made by the kitchen suite")
        e = e.env
    return e


def set_start(env, qpos: np.ndarray, qvel: np.ndarray | None = None, done=()) -> np.ndarray:
    """Move a reset env to a state (model qpos, qvel; the target sub-tasks in `done` counted as completed) and
    return its flat observation there (drawn with the env's observation noise, as after a reset)."""
    w = flat_wrapper(env)
    u = w.unwrapped
    u.robot_env.set_state(np.asarray(qpos, np.float64),
                          np.zeros(u.model.nv) if qvel is None else np.asarray(qvel, np.float64))
    u.episode_task_completions[:] = [t for t in w.targets if t in done]
    u.tasks_to_complete = set(w.targets) - set(done)
    return w.observation(u._get_obs(u.robot_env._get_obs()))


def jitter_start(env, rng: np.random.Generator, arm: float) -> np.ndarray:
    """Perturb a freshly reset env's arm joints by uniform +-`arm` rad (fingers and objects as reset); returns the
    flat observation there."""
    u = flat_wrapper(env).unwrapped
    qpos = u.data.qpos.copy()
    qpos[:7] += rng.uniform(-arm, arm, 7)
    return set_start(env, qpos)
