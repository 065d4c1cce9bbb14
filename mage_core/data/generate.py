"""Dataset generation for maze tasks with the Minari D4RL/pointmaze protocol, written as a real Minari dataset."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.maze import WaypointExpert
from mage_core.tasks import Task


@dataclass
class GenerateConfig:
    """Knobs of the D4RL/pointmaze data protocol."""

    steps: int = 1_000_000  # total environment steps to record
    seed: int = 0  # seeds the env resets, the jitter and the action noise
    action_noise: float = 0.5  # std of the Gaussian noise added to the PD action (D4RL: 0.5)
    waypoint_jitter: float = 0.2  # uniform +- jitter (world units) on every waypoint
    dwell_steps: int = 40  # after reaching the goal the expert holds it this many steps before the episode is cut
    ref_episodes: int = 20  # evaluation episodes used to measure ref_min_score and ref_max_score


def collect_buffers(task: Task, cfg: GenerateConfig, progress: Callable[[int, int], None] | None = None) -> list:
    """Roll out the noisy waypoint expert; one Minari EpisodeBuffer per goal reached (or per truncation)."""
    from minari.data_collector import EpisodeBuffer

    if not task.is_maze:
        raise MageError(f"dataset generation is built in only for maze tasks; {task.name} is not one")
    if cfg.steps < 1:
        raise MageError("--steps must be positive")
    env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
    rng = np.random.default_rng(cfg.seed)
    expert = WaypointExpert(task.geometry, cfg.waypoint_jitter, cfg.action_noise, rng)
    buffers, done, ep_id = [], 0, 0
    keys = ("observation", "achieved_goal", "desired_goal")
    try:
        while done < cfg.steps:
            obs, _ = env.reset(seed=int(cfg.seed) * 1_000_003 + ep_id)
            obs_l = {k: [obs[k]] for k in keys}
            acts, rews, terms, truncs = [], [], [], []
            dwell = -1  # steps left holding the goal once reached (-1: not reached yet)
            while True:
                o = obs["observation"]
                a = expert(o[:2], o[2:4], obs["desired_goal"])
                obs, r, term, trunc, info = env.step(a)
                done += 1
                budget_out = done >= cfg.steps
                if term and dwell < 0:
                    dwell = cfg.dwell_steps
                elif dwell > 0:
                    dwell -= 1
                end = dwell == 0 or trunc or budget_out
                for k in keys:
                    obs_l[k].append(obs[k])
                acts.append(a), rews.append(float(r))
                terms.append(bool(end and dwell == 0 and term))
                truncs.append(bool(end and not terms[-1]))
                if progress is not None and done % 2000 == 0:
                    progress(done, cfg.steps)
                if end:
                    break
            buffers.append(EpisodeBuffer(
                id=ep_id, observations={k: np.asarray(v, dtype=np.float64) for k, v in obs_l.items()},
                actions=np.asarray(acts, dtype=np.float32), rewards=rews, terminations=terms, truncations=truncs))
            ep_id += 1
    finally:
        env.close()
    if progress is not None:
        progress(done, cfg.steps)
    return buffers


def reference_scores(task: Task, episodes: int = 20, seed: int = 10_000) -> tuple[float, float]:
    """(ref_min_score, ref_max_score): mean return of the random policy and of the noise-free expert on the eval protocol."""
    from mage_core.evaluate import ExpertPolicy, RandomPolicy, evaluate

    lo = evaluate(task, RandomPolicy(seed=seed), episodes=episodes, seeds=(seed,)).mean
    hi = evaluate(task, ExpertPolicy(task), episodes=episodes, seeds=(seed,)).mean
    return float(lo), float(hi)


def make_dataset(task: Task, cfg: GenerateConfig, dataset_id: str | None = None, force: bool = False,
                 progress: Callable[[int, int], None] | None = None):
    """Generate and write a Minari dataset; returns the MinariDataset. Nothing is left behind if it fails."""
    import minari
    from minari.storage import get_dataset_path

    dataset_id = dataset_id or task.dataset_id
    path = get_dataset_path(dataset_id)
    if path.exists():
        if not force:
            raise MageError(f"dataset {dataset_id} already exists at {path}; use --force to replace it")
        shutil.rmtree(path)
    buffers = collect_buffers(task, cfg, progress)
    ref_min, ref_max = reference_scores(task, cfg.ref_episodes)
    data_env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
    eval_env = task.make_env(mode="eval")
    try:
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=data_env.spec, eval_env=eval_env.spec,
            algorithm_name="waypoint-pd-expert (D4RL/pointmaze protocol)", author="MAGE Studio", author_email="n/a",
            code_permalink="mage_core/data/generate.py", ref_min_score=ref_min, ref_max_score=ref_max,
            description=(f"{task.name}: value-iteration waypoints + PD controller, action noise N(0,{cfg.action_noise}), "
                         f"waypoint jitter +-{cfg.waypoint_jitter}, episodes cut {cfg.dwell_steps} steps after the goal "
                         f"is reached (the expert holds it meanwhile), seed {cfg.seed}, {cfg.steps} steps. "
                         f"ref_min_score: random policy, ref_max_score: noise-free expert, {cfg.ref_episodes} episodes "
                         f"of {task.eval_steps} steps on the fixed-goal evaluation protocol."),
            requirements=["gymnasium-robotics>=1.3"], data_format="hdf5")
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        data_env.close(), eval_env.close()
