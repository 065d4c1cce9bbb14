"""Shared fixtures for the model/training tests: a small PointMaze UMaze dataset rolled out by the noisy expert."""
from __future__ import annotations

import functools

import numpy as np

from mage_core.suites.pointmaze import geometry
from mage_core.config import MageConfig, preset


@functools.lru_cache(maxsize=4)
def umaze_episodes(steps: int = 3000, seed: int = 0, noise: float = 0.3) -> tuple:
    """(task, episodes): WaypointExpert with action noise in the UMaze data env; episodes end at success."""
    from mage_core.data.segments import Episode
    from mage_core.maze import WaypointExpert
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")
    env = task.make_env(mode="data")
    expert = WaypointExpert(geometry(task), waypoint_jitter=0.1, action_noise=noise, rng=np.random.default_rng(seed))
    episodes, total, ep_seed = [], 0, seed
    while total < steps:
        obs, _ = env.reset(seed=ep_seed)
        ep_seed += 1
        obs_list, acts, rews = [task.flatten_obs(obs)], [], []
        success = False
        for _ in range(task.data_max_episode_steps):
            o = obs["observation"]
            a = expert(o[:2], o[2:4], obs["desired_goal"])
            obs, r, terminated, truncated, _ = env.step(a)
            obs_list.append(task.flatten_obs(obs)), acts.append(a), rews.append(r)
            if terminated or truncated:
                success = bool(terminated)
                break
        episodes.append(Episode(np.array(obs_list, np.float32), np.array(acts, np.float32),
                                np.array(rews, np.float32), success))
        total += len(acts)
    env.close()
    return task, tuple(episodes)


def micro_config(**model_overrides) -> MageConfig:
    """An even smaller config than the tiny preset, for unit tests (seconds on one core)."""
    cfg = preset("tiny")
    cfg.model.horizon = 16
    cfg.model.downsample = 2
    cfg.model.latent_dim = 8
    cfg.model.codebook_size = 32
    cfg.model.enc_channels = 16
    cfg.model.d_model = 32
    cfg.model.n_layers = 2
    cfg.model.n_heads = 2
    cfg.model.inv_hidden = 64
    cfg.model.adapter_hidden = 8
    cfg.model.obs_dim = 6
    cfg.model.act_dim = 2
    for k, v in model_overrides.items():
        setattr(cfg.model, k, v)
    cfg.train.batch_size = 16
    cfg.train.log_every = 5
    cfg.train.device = "cpu"
    return cfg


def train_micro(dataset_id: str, path, steps: int = 20):
    """A micro MAGE checkpoint (seconds) on a local dataset; returns its path."""
    from mage_core.data.store import load_episodes
    from mage_core.training.mage_stages import train_mage

    task, episodes, _ = load_episodes(dataset_id)
    cfg = micro_config()
    cfg.train.stage1_steps, cfg.train.stage2_steps, cfg.train.stage3_steps = steps, steps, 0
    cfg.train.warmup_steps = 2
    train_mage(cfg, episodes, task, out_path=path, dataset_id=dataset_id, progress=False)
    return path
