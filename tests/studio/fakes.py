"""Test doubles for the studio: a Plan-shaped fake planner that heads for the goal faster the higher the RTG."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FakePlan:
    """Mirrors mage_core.planner.Plan's documented fields."""

    tokens: list
    states_KHD: np.ndarray
    rtg_KH: np.ndarray
    action_A: np.ndarray
    scales: tuple
    condition_rtg: float
    timings_ms: dict = field(default_factory=dict)


class FakePlanner:
    """Documented Planner API without a model: a straight-line plan towards the goal, speed set by the RTG."""

    def __init__(self, task, scales=(1, 2, 4, 8, 16, 32), horizon=32):
        self.task = task
        self.scales = tuple(scales)
        self.horizon = horizon
        self.obs_dim = 6
        self.act_dim = 2
        self.rtg_range = (0.0, float(task.eval_steps))
        self.codebook_size = 64
        self.calls = []

    def plan(self, obs, rtg, *, seed=None, decode=True):
        obs = np.asarray(obs, dtype=np.float32)
        self.calls.append((obs.copy(), float(rtg)))
        pos, goal = obs[:2], obs[4:6]
        speed = 0.01 + 0.05 * float(np.clip(rtg / self.rtg_range[1], 0, 1))
        K, H = len(self.scales), self.horizon
        rng = np.random.default_rng(0 if seed is None else seed)
        d = goal - pos
        dist = float(np.linalg.norm(d)) + 1e-9
        steps = np.minimum(np.arange(H) * speed, dist)[:, None]
        line_H2 = pos + d / dist * steps
        states = np.zeros((K, H, self.obs_dim), np.float32)
        for k in range(K):
            states[k, :, :2] = line_H2 + rng.normal(0, 0.15 / (k + 1), size=(H, 2))
            states[k, :, 4:6] = goal
        rtg_KH = np.tile(np.linspace(rtg, rtg - H, H), (K, 1)).astype(np.float32)
        tokens = [rng.integers(0, self.codebook_size, size=p) for p in self.scales]
        action = np.clip(10 * (line_H2[min(3, H - 1)] - pos), -1, 1).astype(np.float32)
        return FakePlan(tokens, states, rtg_KH, action, self.scales, float(rtg), {"sample": 0.1, "decode": 0.1, "total": 0.2})
