"""The locomotion data recipes, D4RL's way: uniform random actions, rollouts of a SAC actor sampling its own Gaussian,
the SAC replay log split into episodes, and medium and expert episodes half and half."""
from __future__ import annotations

from typing import Callable

import numpy as np

EPISODE_SEED_STRIDE = 1_000_003  # env reset seed of episode i of data seed s: s * stride + i (as the other suites)


def rollouts(env, act: Callable[[np.ndarray], np.ndarray], steps: int, seed: int, first_id: int,
             tick: Callable[[int], None]) -> list:
    """Minari EpisodeBuffers of `act(obs_D) -> action_A` on `env` (its own episode limit) from seeded resets, each
    episode run to its termination (a fall) or time limit, the last one cut (truncated) when `steps` run out."""
    from minari.data_collector import EpisodeBuffer

    low, high = env.action_space.low, env.action_space.high
    buffers, done, ep_id = [], 0, first_id
    while done < steps:
        env_seed = int(seed) * EPISODE_SEED_STRIDE + ep_id
        obs, _ = env.reset(seed=env_seed)
        obs_l, acts, rews, terms, truncs = [obs], [], [], [], []
        while True:
            a = np.clip(np.asarray(act(np.asarray(obs, np.float64)), np.float32), low, high)
            obs, r, term, trunc, _ = env.step(a)
            done += 1
            tick(1)
            end = bool(term or trunc or done >= steps)
            obs_l.append(obs), acts.append(a), rews.append(float(r))
            terms.append(bool(term)), truncs.append(bool(end and not term))
            if end:
                break
        buffers.append(EpisodeBuffer(id=ep_id, seed=env_seed, observations=np.asarray(obs_l, np.float64),
                                     actions=np.asarray(acts, np.float32), rewards=rews, terminations=terms,
                                     truncations=truncs))
        ep_id += 1
    return buffers


def replay_episodes(replay: dict[str, np.ndarray], steps: int, tick: Callable[[int], None]) -> list:
    """The first `steps` transitions of a SAC replay log as Minari EpisodeBuffers, in the order they were collected.

    An episode ends where `terminals` is set (SB3's done: a termination or a time limit); it terminated (fell) when
    `timeouts` is not also set, else it was truncated. The log's last episode, still running when the log was cut, is
    kept and marked truncated. Each episode's observations are its logged observations and, after the last, that
    transition's next observation (the terminal observation SB3 logs at an episode's end)."""
    from minari.data_collector import EpisodeBuffer

    n = min(int(steps), len(replay["rewards"]))
    dones_N = np.asarray(replay["terminals"][:n]) > 0
    timeouts_N = np.asarray(replay["timeouts"][:n]) > 0
    ends = np.nonzero(dones_N | timeouts_N)[0].tolist()
    if not ends or ends[-1] != n - 1:
        ends.append(n - 1)
    buffers, start = [], 0
    for end in ends:
        sl = slice(start, end + 1)
        T = end + 1 - start
        fell = bool(dones_N[end] and not timeouts_N[end])
        obs = np.concatenate([replay["observations"][sl], replay["next_observations"][end:end + 1]]).astype(np.float64)
        buffers.append(EpisodeBuffer(id=len(buffers), observations=obs,
                                     actions=np.asarray(replay["actions"][sl], np.float32),
                                     rewards=np.asarray(replay["rewards"][sl], np.float64).tolist(),
                                     terminations=[False] * (T - 1) + [fell],
                                     truncations=[False] * (T - 1) + [not fell]))
        tick(T)
        start = end + 1
    return buffers


def uniform_actor(env, seed) -> Callable[[np.ndarray], np.ndarray]:
    """Uniform random actions in the env's action box (D4RL's `random` data); seed: anything numpy's default_rng
    takes."""
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    return lambda obs_D: rng.uniform(low, high).astype(np.float32)


def sampling_actor(actor, seed) -> Callable[[np.ndarray], np.ndarray]:
    """A SAC actor sampling from its own squashed Gaussian (D4RL's `medium` and `expert` data); seed: anything
    numpy's default_rng takes."""
    rng = np.random.default_rng(seed)
    return lambda obs_D: actor.act(obs_D, rng)
