"""A suite's task as plain data (env, horizon, evaluation protocol, suite-only params) and observation flattening."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mage_core.suites.registry import get_suite


@dataclass
class Task:
    """One task of a suite: which env it uses, its default dataset, horizon and evaluation protocol."""

    name: str  # registry key, e.g. "pointmaze-umaze"
    env_id: str  # gymnasium id, e.g. "PointMaze_UMaze-v3"
    suite_name: str = "generic"  # the Suite that owns this task (mage_core.suites.SUITES key)
    env_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make when generating data
    eval_kwargs: dict = field(default_factory=dict)  # kwargs for gym.make for the evaluation protocol
    dataset_id: str = ""  # default local Minari dataset id
    horizon: int = 64  # default segment horizon H (steps)
    downsample: int = 0  # default temporal downsampling r of MAGE's autoencoder for this task (0 = the preset's)
    eval_steps: int = 300  # evaluation episode length
    obs_keys: tuple = ("observation", "desired_goal")  # Dict-observation keys concatenated by flatten_obs, in order
    data_max_episode_steps: int = 1000  # cap on one generated episode before it is truncated
    rtg_mode: str = "window"  # "window": sparse goal-reaching relabel (see segments.relabel_rtg); "dense": plain RTG
    params: dict = field(default_factory=dict)  # suite-specific facts (maze map, evaluation cells, ...); only the suite reads them

    @property
    def suite(self) -> "Suite":
        return get_suite(self.suite_name)

    def flatten_obs(self, obs: Any) -> np.ndarray:
        """One observation (Box array or Dict) -> flat float32 vector (goal included for goal-conditioned tasks)."""
        return flatten_obs(obs, self.obs_keys)

    def make_env(self, mode: str = "eval", render_mode: str | None = None, **overrides):
        """A gymnasium env for this task; mode 'eval' applies the suite's evaluation protocol, 'data' its data protocol."""
        return self.suite.make_env(self, mode, render_mode, **overrides)


def flatten_obs(obs: Any, keys: tuple = ("observation", "desired_goal")) -> np.ndarray:
    """Flatten a Box observation or a Dict one (the named keys in order, or every key sorted if none match)."""
    if isinstance(obs, dict):
        use = [k for k in keys if k in obs] or sorted(obs)
        return np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in use])
    return np.asarray(obs, dtype=np.float32).reshape(-1)
