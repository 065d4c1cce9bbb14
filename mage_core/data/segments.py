"""The segment pipeline: episodes -> (R, s) windows of horizon H with actions, RTG relabelling and a normaliser."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mage_core.errors import MageError


@dataclass
class Episode:
    """One episode with flattened observations: obs_TD has T+1 rows (the final observation included)."""

    obs_TD: np.ndarray  # (T+1, obs_dim) float32 flattened observations
    actions_TA: np.ndarray  # (T, act_dim) float32 actions
    rewards_T: np.ndarray  # (T,) float32 rewards
    success: bool  # whether the episode reached its goal (ended by success)

    def __post_init__(self):
        t = len(self.actions_TA)
        if len(self.obs_TD) != t + 1 or len(self.rewards_T) != t:
            raise MageError(f"episode lengths disagree: {len(self.obs_TD)} observations, {t} actions, "
                            f"{len(self.rewards_T)} rewards (expected T+1, T, T)")
        for name, arr in (("observations", self.obs_TD), ("actions", self.actions_TA), ("rewards", self.rewards_T)):
            if not np.all(np.isfinite(arr)):
                raise MageError(f"episode contains NaN or inf {name}")

    @property
    def length(self) -> int:
        return len(self.actions_TA)


def relabel_rtg(length: int, success: bool, window: int, first_reward: int | None = None) -> np.ndarray:
    """Window return-to-go for sparse goal reaching, for the T+1 observations of an episode.

    R_i = clip(W - d_i, 0, W) where d_i is the number of steps from observation i until the goal is first reached
    (observation first_reward + 1; by default the last one) and W afterwards, while the agent holds the goal; all 0
    when the goal is never reached. It is the reward a fresh W-step evaluation window would collect if the agent
    then stays at the goal.
    """
    if not success:
        return np.zeros(length + 1, dtype=np.float32)
    arrive = length if first_reward is None else int(first_reward) + 1
    d_T = np.maximum(arrive - np.arange(length + 1), 0)
    return np.clip(window - d_T, 0, window).astype(np.float32)


def episode_rtg(ep: "Episode", window: int) -> np.ndarray:
    """relabel_rtg for an Episode, arriving at its first rewarded step (episodes may hold the goal afterwards)."""
    hits = np.flatnonzero(ep.rewards_T > 0)
    return relabel_rtg(ep.length, ep.success, window, int(hits[0]) if len(hits) else None)


def dense_rtg(rewards_T: np.ndarray) -> np.ndarray:
    """Plain undiscounted return-to-go for the T+1 observations (0 after the last step), for dense-reward tasks."""
    r = np.asarray(rewards_T, dtype=np.float64)
    out = np.zeros(len(r) + 1)
    out[:-1] = np.cumsum(r[::-1])[::-1]
    return out.astype(np.float32)


@dataclass
class Normaliser:
    """Per-feature standardisation of x = (R, s) and of actions; fits on data, saves to / loads from a dict."""

    x_mean_D: np.ndarray  # (1 + obs_dim,) mean of (R, s)
    x_std_D: np.ndarray  # (1 + obs_dim,) std of (R, s), floored
    a_mean_A: np.ndarray  # (act_dim,) mean of actions
    a_std_A: np.ndarray  # (act_dim,) std of actions, floored

    MIN_STD = 1e-3  # floor that keeps constant features finite

    @classmethod
    def fit(cls, x_ND: np.ndarray, a_NA: np.ndarray) -> "Normaliser":
        if len(x_ND) == 0:
            raise MageError("cannot fit a normaliser on an empty dataset")
        return cls(x_ND.mean(0).astype(np.float32), np.maximum(x_ND.std(0), cls.MIN_STD).astype(np.float32),
                   a_NA.mean(0).astype(np.float32), np.maximum(a_NA.std(0), cls.MIN_STD).astype(np.float32))

    def norm_x(self, x):
        return (x - _like(self.x_mean_D, x)) / _like(self.x_std_D, x)

    def denorm_x(self, x):
        return x * _like(self.x_std_D, x) + _like(self.x_mean_D, x)

    def norm_a(self, a):
        return (a - _like(self.a_mean_A, a)) / _like(self.a_std_A, a)

    def denorm_a(self, a):
        return a * _like(self.a_std_A, a) + _like(self.a_mean_A, a)

    def state_dict(self) -> dict:
        return {k: torch.as_tensor(getattr(self, k)) for k in ("x_mean_D", "x_std_D", "a_mean_A", "a_std_A")}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Normaliser":
        return cls(*(np.asarray(d[k], dtype=np.float32) for k in ("x_mean_D", "x_std_D", "a_mean_A", "a_std_A")))


def _like(v: np.ndarray, ref):
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
    return v


@dataclass
class SegmentConfig:
    """How episodes are cut into training segments."""

    horizon: int = 64  # H: steps per segment
    rtg_window: int = 300  # W: evaluation window used by the sparse-goal RTG relabel (the task's eval_steps)
    rtg_mode: str = "window"  # "window" (sparse goal reaching, see relabel_rtg) or "dense" (plain return-to-go)
    min_valid: int = 1  # a segment must contain at least this many real steps


@dataclass
class SegmentBatch:
    """A batch of normalised segments (see docs/ARCHITECTURE.md)."""

    x_BHD: torch.Tensor  # (B, H, 1 + obs_dim) normalised (R, s)
    a_BHA: torch.Tensor  # (B, H, act_dim) normalised actions, 0 past the episode end
    mask_BH: torch.Tensor  # (B, H) 1 for real steps, 0 for held padding

    @property
    def a_BA(self) -> torch.Tensor:
        return self.a_BHA[:, 0]

    def to(self, device) -> "SegmentBatch":
        return SegmentBatch(self.x_BHD.to(device), self.a_BHA.to(device), self.mask_BH.to(device))


@dataclass
class SegmentDataset:
    """All segments of a list of episodes, held as one padded array for fast random access."""

    episodes: list
    config: SegmentConfig = field(default_factory=SegmentConfig)
    normaliser: Normaliser | None = None  # fitted on the episodes when not given

    def __post_init__(self):
        if not self.episodes:
            raise MageError("the dataset has no episodes")
        H = self.config.horizon
        xs, acts, masks, starts = [], [], [], []
        offset = 0
        for ep in self.episodes:
            if self.config.rtg_mode == "window":
                R = episode_rtg(ep, self.config.rtg_window)
            else:
                R = dense_rtg(ep.rewards_T)
            x = np.concatenate([R[:, None], ep.obs_TD], axis=1)  # (T+1, 1+D)
            pad = H - 1
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])  # hold the last state
            a = np.concatenate([ep.actions_TA, np.zeros((pad + 1, ep.actions_TA.shape[1]), np.float32)])
            m = np.concatenate([np.ones(ep.length), np.zeros(pad + 1)]).astype(np.float32)
            n_starts = max(ep.length - self.config.min_valid + 1, 1)
            starts.append(offset + np.arange(n_starts))
            xs.append(x), acts.append(a), masks.append(m)
            offset += len(x)
        self.x_ND = np.concatenate(xs).astype(np.float32)
        self.a_NA = np.concatenate(acts).astype(np.float32)
        self.m_N = np.concatenate(masks)
        self.starts = np.concatenate(starts)
        if self.normaliser is None:
            real = self.m_N > 0
            self.normaliser = Normaliser.fit(self.x_ND[real], self.a_NA[real])
        self.xn_ND = self.normaliser.norm_x(self.x_ND).astype(np.float32)
        self.an_NA = (self.normaliser.norm_a(self.a_NA) * self.m_N[:, None]).astype(np.float32)
        self._arange_H = np.arange(H)

    @property
    def obs_dim(self) -> int:
        return self.x_ND.shape[1] - 1

    @property
    def act_dim(self) -> int:
        return self.a_NA.shape[1]

    def __len__(self) -> int:
        return len(self.starts)

    def get(self, idx: np.ndarray) -> SegmentBatch:
        """Segments by index into the list of valid starts."""
        rows_BH = self.starts[np.asarray(idx)][:, None] + self._arange_H
        return SegmentBatch(torch.from_numpy(self.xn_ND[rows_BH]), torch.from_numpy(self.an_NA[rows_BH]),
                            torch.from_numpy(self.m_N[rows_BH]))

    def sample(self, batch_size: int, rng: np.random.Generator) -> SegmentBatch:
        return self.get(rng.integers(0, len(self.starts), size=batch_size))

    def return_range(self) -> tuple[float, float]:
        """(min, max) of the RTG labels in environment units."""
        return float(self.x_ND[:, 0].min()), float(self.x_ND[:, 0].max())
