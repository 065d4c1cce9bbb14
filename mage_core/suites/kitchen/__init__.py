"""The Franka Kitchen suite: FrankaKitchen-v1 with D4RL's four targets (microwave, kettle, light switch, slide
cabinet), D4RL's protocol (280 steps, one reward per target done, reference scores 0 and 4), a scripted controller
for every sub-task the env offers, complete / partial / mixed data after D4RL's, and Minari's D4RL/kitchen datasets.

Modules: tasks (sub-tasks, the flattened observation's layout, the protocol), env (the env on mujoco 4, the flat
observation), controller (the scripted controller), data (the data facet: datasets and recipes), scene (the scene
facet: posing, key points, camera)."""
from __future__ import annotations

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base import Suite
from mage_core.suites.kitchen.data import VARIANTS, KitchenData, KitchenRecipe
from mage_core.suites.kitchen.scene import KitchenScene
from mage_core.suites.kitchen.tasks import (D4RL_TARGETS, ENV_OBS_DIM, REFERENCE_SCORES, SUBTASKS, make_task,
                                            obs_dim, obs_slices, targets_of)


class KitchenExpert:
    """The scripted controller as an evaluate.Policy: one controller per env performs the task's targets in order,
    without noise (the reference expert of the evaluation protocol)."""

    def __init__(self, task, noise: float = 0.0, seed: int = 0):
        self.task = task
        self.noise = float(noise)  # std of the Gaussian action noise (0: the reference expert)
        self.rng = np.random.default_rng(seed)
        self._model = None
        self.controllers: list = []

    def reset(self, n_envs: int) -> None:
        from mage_core.suites.kitchen.controller import ScriptedKitchen

        if self._model is None:
            env = self.task.make_env(mode="eval")
            self._model = env.unwrapped.model
            env.close()
        targets = targets_of(self.task)
        self.controllers = [ScriptedKitchen(self._model, targets, targets=targets, noise=self.noise, rng=self.rng)
                            for _ in range(n_envs)]

    def act(self, obs_ND, reward_N):
        return np.stack([c.act(o) for c, o in zip(self.controllers, np.asarray(obs_ND))])


class KitchenSuite(KitchenData, KitchenScene, Suite):
    """Franka Kitchen (`FrankaKitchen-v1`): multi-task, long-horizon manipulation with D4RL's sub-task targets."""

    name = "kitchen"
    title = "Franka Kitchen"

    # ---- protocol ------------------------------------------------------------------------------------------------
    def make_env(self, task, mode: str = "eval", render_mode: str | None = None, **overrides):
        """FrankaKitchen-v1 on mujoco 4 (env.make_kitchen_env) with the flat observation; 'eval' runs the task's
        eval_steps."""
        from mage_core.suites.kitchen.env import make_kitchen_env

        kwargs = dict(task.eval_kwargs if mode == "eval" else task.env_kwargs)
        kwargs.setdefault("tasks_to_complete", list(targets_of(task)))
        if mode == "eval":
            kwargs.setdefault("max_episode_steps", task.eval_steps)
        kwargs.update(overrides)
        return make_kitchen_env(task.name, render_mode=render_mode, **kwargs)

    def obs_slices(self, task) -> dict:
        return obs_slices(targets_of(task))

    def check_obs(self, task, obs_D, expected_dim=None) -> None:
        want = obs_dim(targets_of(task))
        n = np.asarray(obs_D).shape[-1]
        if n != want:
            raise MageError(f"observation has {n} dims but {task.name} observations have {want} (FrankaKitchen-v1's "
                            f"{ENV_OBS_DIM} and a done flag for each of its {want - ENV_OBS_DIM} targets)")
        super().check_obs(task, obs_D, expected_dim)

    def expert_policy(self, task):
        return KitchenExpert(task)

    def episode_diagnostics(self, task, obs_TD, rewards_T) -> dict:
        """The return, and per target the step its done flag first rose (None: not done)."""
        out = super().episode_diagnostics(task, obs_TD, rewards_T)
        flags = np.asarray(obs_TD)[:, ENV_OBS_DIM:]
        for i, t in enumerate(targets_of(task)):
            hit = np.nonzero(flags[:, i] > 0.5)[0]
            out[f"done_step_{t.replace(' ', '_')}"] = int(hit[0]) if len(hit) else None
        return out

    def diagnostics_summary(self, task, rows) -> tuple[dict, str]:
        """Per target, the share of episodes that got it done."""
        if not rows:
            return {}, ""
        shares = {t: float(np.mean([r.get(f"done_step_{t.replace(' ', '_')}") is not None for r in rows]))
                  for t in targets_of(task)}
        return ({f"done_share_{t.replace(' ', '_')}": v for t, v in shares.items()},
                "targets done: " + ", ".join(f"{t} {100 * v:.0f}%" for t, v in shares.items()))


SUITE = KitchenSuite()

__all__ = ["SUITE", "KitchenSuite", "KitchenExpert", "KitchenRecipe", "VARIANTS", "SUBTASKS", "D4RL_TARGETS",
           "REFERENCE_SCORES", "make_task"]
