"""Test doubles for the studio: a Plan-shaped fake planner that heads for the goal faster the higher the RTG."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

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

    def policy(self, target, replan_every=1, seed=0, executor="inverse", keep_plan=False):
        return FakePolicy(self, target, replan_every, seed)

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


class FakePolicy:
    """PlannerPolicy's contract over FakePlanner.plan: mage_core.rtg bookkeeping, replans every n steps, keep_plan."""

    def __init__(self, planner, target, replan_every=1, seed=0):
        from mage_core.rtg import RTGTracker

        self.planner, self.replan_every, self.seed = planner, replan_every, seed
        self.rtg = RTGTracker(target, planner.task.rtg_mode, planner.task.eval_steps)
        self.last_plan = None

    def reset(self, n_envs):
        self.rtg.reset(n_envs)

    def act(self, obs_ND, reward_N):
        self.rtg.receive(reward_N)
        if self.rtg.t % self.replan_every == 0:
            self.last_plan = self.planner.plan(obs_ND[0], float(self.rtg.raw()[0]), seed=self.seed + self.rtg.t)
        else:  # between replans: the suite's tracker on the finest plan, as PlannerPolicy does
            k = self.rtg.t % self.replan_every
            target = self.last_plan.states_KHD[-1][min(k + 1, self.planner.horizon - 1)][None]
            self.rtg.t += 1
            return self.planner.task.suite.track_action(self.planner.task, obs_ND, target)
        self.rtg.t += 1
        return self.last_plan.action_A[None]


def fake_events_script(tmp_path: Path, events: list, delay: float = 0.0, exit_code: int = 0, stderr: str = "") -> list:
    """argv of a small Python process that prints the given JSON events (one per line) like `mage train --events -`."""
    script = tmp_path / "fake_train.py"
    script.write_text(
        "import json, sys, time\n"
        f"events = json.loads({json.dumps(json.dumps(events))})\n"
        "for ev in events:\n"
        "    print(json.dumps(ev), flush=True)\n"
        f"    time.sleep({delay})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n")
    return [sys.executable, str(script)]
