"""The evaluation protocol: run a batched Policy on a task's evaluation env, score it (raw, normalised, s.e.), and
measure the reference scores (random and expert policies) that normalise it."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import numpy as np

from mage_core.errors import MageError
from mage_core.suites import Task, get_suite


class Policy(Protocol):
    """What every acting method implements (MAGE planner and baselines alike)."""

    def reset(self, n_envs: int) -> None:
        """Start n_envs parallel episodes."""

    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        """Flattened observations and last rewards (zeros at the start) -> actions_NA in env units."""


@dataclass
class EvalResult:
    """Scores of one evaluation run."""

    task: str  # task name
    returns: list  # raw return of every episode, in seed-major order
    seeds: list  # env seed of every episode
    successes: list  # whether each episode ever reached the goal (all False where the task has no goal)
    ref_min_score: float | None  # random-policy reference (from the dataset metadata)
    ref_max_score: float | None  # expert reference (from the dataset metadata)
    episode_steps: int  # steps per episode
    extra: dict = field(default_factory=dict)  # caller's annotations (checkpoint, rtg target, timings)
    has_goal: bool = True  # False where the suite reports no success (Suite.reports_success): success_rate is None

    @property
    def n(self) -> int:
        return len(self.returns)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def se(self) -> float:
        return float(np.std(self.returns, ddof=1) / np.sqrt(self.n)) if self.n > 1 else 0.0

    def normalise(self, score):
        if self.ref_min_score is None or self.ref_max_score is None or self.ref_max_score == self.ref_min_score:
            return None
        return 100.0 * (np.asarray(score, dtype=float) - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)

    @property
    def success_rate(self) -> float | None:
        """Share of episodes that reached the goal; None ('n/a') for tasks without a goal."""
        return float(np.mean(self.successes)) if self.has_goal and self.successes else None

    @property
    def normalised_mean(self) -> float | None:
        v = self.normalise(self.mean)
        return None if v is None else float(v)

    @property
    def normalised_se(self) -> float | None:
        if self.normalise(self.mean) is None:
            return None
        return float(100.0 * self.se / (self.ref_max_score - self.ref_min_score))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(n=self.n, mean=self.mean, se=self.se, normalised_mean=self.normalised_mean,
                 normalised_se=self.normalised_se, success_rate=self.success_rate)
        return d

    def summary(self) -> str:
        s = f"{self.task}: return {self.mean:.1f} ± {self.se:.1f} (n={self.n})"
        if self.normalised_mean is not None:
            s += f", normalised {self.normalised_mean:.1f} ± {self.normalised_se:.1f}"
        return s + (f", success {100 * self.success_rate:.0f}%" if self.success_rate is not None else ", success n/a")


def episode_seed(seed: int, episode: int) -> int:
    """The env reset seed of episode `episode` of evaluation seed `seed` (so others can reproduce the starts)."""
    return int(seed) * 100003 + int(episode)


def evaluate(task: Task, policy: Policy, episodes: int = 10, seeds=(0,), n_envs: int | None = None,
             ref_scores: tuple | None = None, episode_steps: int | None = None,
             progress: Callable[[int, int], None] | None = None, env_kwargs: dict | None = None,
             record: bool = False) -> EvalResult:
    """Run `episodes` episodes per seed of `policy` on the task's evaluation protocol (fixed start/goal, fixed length).

    Episodes run `n_envs` at a time in lockstep so batched policies plan for all of them in one call. record=True
    keeps every episode's observations, rewards and alive flags in result.extra["episodes"] (diagnostics, videos):
    obs_TD has T + 1 rows, rewards_T and alive_T T rows; alive_T[t] says whether the episode went on after step t
    (the rows after its first False repeat the last state).
    """
    if episodes < 1:
        raise MageError("episodes must be at least 1")
    steps = int(episode_steps or task.eval_steps)
    n_envs = int(n_envs or min(episodes, 10))
    returns, ep_seeds, successes, recorded = [], [], [], []
    has_goal = task.suite.reports_success(task)
    jobs = [(s, e) for s in seeds for e in range(episodes)]
    total_steps, done_steps = len(jobs) * steps, 0
    envs = [task.make_env(mode="eval", max_episode_steps=steps, **(env_kwargs or {})) for _ in range(min(n_envs, len(jobs)))]
    try:
        for lo in range(0, len(jobs), len(envs)):
            batch = jobs[lo:lo + len(envs)]
            n = len(batch)
            obs = []
            for env, (s, e) in zip(envs, batch):
                o, _ = env.reset(seed=episode_seed(s, e))
                obs.append(task.flatten_obs(o))
            obs_ND = np.stack(obs)
            reward_N = np.zeros(n)
            ret_N = np.zeros(n)
            alive_N = np.ones(n, dtype=bool)
            succ_N = np.zeros(n, dtype=bool)
            policy.reset(n)
            obs_TND, rew_TN, alive_TN = [obs_ND.copy()], [], []
            for t in range(steps):
                act_NA = np.asarray(policy.act(obs_ND, reward_N), dtype=np.float32)
                if act_NA.shape[0] != n or not np.all(np.isfinite(act_NA)):
                    raise MageError(f"policy returned invalid actions (shape {act_NA.shape}, finite={np.all(np.isfinite(act_NA))})")
                for i, env in enumerate(envs[:n]):
                    if not alive_N[i]:
                        reward_N[i] = 0.0
                        continue
                    o, r, term, trunc, info = env.step(act_NA[i])
                    obs_ND[i] = task.flatten_obs(o)
                    reward_N[i] = r
                    ret_N[i] += r
                    succ_N[i] |= has_goal and bool(info.get("success", r > 0))
                    if term or trunc:
                        alive_N[i] = False
                if record:
                    obs_TND.append(obs_ND.copy()), rew_TN.append(reward_N.copy()), alive_TN.append(alive_N.copy())
                done_steps += n
                if progress is not None and (t % 25 == 0 or t == steps - 1):
                    progress(done_steps, total_steps)
                if not alive_N.any():
                    break
            if record:
                o_TND, r_TN, a_TN = np.stack(obs_TND), np.stack(rew_TN), np.stack(alive_TN)
                for i in range(n):
                    recorded.append({"obs_TD": o_TND[:, i], "rewards_T": r_TN[:, i], "alive_T": a_TN[:, i]})
            returns += ret_N.tolist()
            successes += succ_N.tolist()
            ep_seeds += [s for s, _ in batch]
    finally:
        for env in envs:
            env.close()
    lo, hi = ref_scores if ref_scores is not None else (None, None)
    res = EvalResult(task.name, returns, ep_seeds, successes, lo, hi, steps, has_goal=has_goal)
    if record:
        res.extra["episodes"] = recorded
    return res


class RandomPolicy:
    """Uniform random actions in [-1, 1] (the ref_min_score policy)."""

    def __init__(self, act_dim: int = 2, seed: int = 0):
        self.act_dim = act_dim
        self.rng = np.random.default_rng(seed)

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs_ND, reward_N):
        return self.rng.uniform(-1.0, 1.0, size=(len(obs_ND), self.act_dim)).astype(np.float32)


def ExpertPolicy(task: Task):
    """The task's noise-free reference expert (the ref_max_score policy), from its suite; a MageError if it has none."""
    expert = task.suite.expert_policy(task)
    if expert is None:
        raise MageError(f"{task.name} ({task.suite.title}) has no reference expert")
    return expert


def measure_reference_scores(task: Task, episodes: int = 20, seed: int = 10_000) -> tuple[float, float] | None:
    """(random, expert) mean returns on the task's evaluation protocol: uniform random actions and the suite's
    noise-free expert, `episodes` episodes each at env seed `seed`; None when the suite has no expert."""
    expert = task.suite.expert_policy(task)
    if expert is None:
        return None
    env = task.make_env(mode="eval")
    act_dim = int(np.prod(env.action_space.shape))
    env.close()
    lo = evaluate(task, RandomPolicy(act_dim=act_dim, seed=seed), episodes=episodes, seeds=(seed,)).mean
    hi = evaluate(task, expert, episodes=episodes, seeds=(seed,)).mean
    return float(lo), float(hi)


def measure_reference_table(suite_name: str, episodes: int = 20, seed: int = 10_000) -> dict:
    """Measure (random, expert) on every built-in task of a suite, as `mage data make` does, and print them as the
    lines of a suite's table of built-in reference scores (e.g. BUILTIN_REFERENCE_SCORES in suites/adroit/tasks.py)."""
    out = {}
    for t in get_suite(suite_name).tasks():
        t0 = time.time()
        ref = measure_reference_scores(t, episodes, seed)
        if ref is None:
            continue
        lo, hi = ref
        out[t.env_id] = (round(lo, 2), round(hi, 2))
        print(f'    "{t.env_id}": ({lo:.2f}, {hi:.2f}),  # {time.time() - t0:.0f} s', flush=True)
    return out


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); nan with fewer than 3 points or constant input."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")

    def rank(v):
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for val in np.unique(v):  # average ties
            m = v == val
            r[m] = r[m].mean()
        return r

    return float(np.corrcoef(rank(x), rank(y))[0, 1])
