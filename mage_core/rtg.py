"""The one owner of acting-time RTG bookkeeping: the condition c_t from a return target, received rewards and time,
for the window relabel (sparse goal reaching) and for plain dense return-to-go (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import numpy as np


def condition_rtg(target, received, t: int, mode: str = "window"):
    """The unclamped condition at step t: G - (reward received) + t for the window relabel, G - received if dense."""
    c = np.asarray(target, dtype=np.float64) - np.asarray(received, dtype=np.float64)
    return c + t if mode == "window" else c


def clamp_rtg(c, lo: float, hi: float, ceiling=None):
    """A condition limited to the data's range [lo, hi] and, where given, to the return ceiling of each state."""
    c = np.clip(np.asarray(c, dtype=np.float64), lo, hi)
    return c if ceiling is None else np.minimum(c, ceiling)


class RTGTracker:
    """Per-env RTG condition over an episode: the user's target G, the rewards received, the steps taken.

    regoal_steps (window mode): the window label of a state is W - d, d the steps until the next reward, so a
    condition near W says "at the goal now" and no demonstration carries it from a state outside the goal. The plain
    bookkeeping G - r + t, which only grows while no reward comes, asks exactly that of an agent that has not yet
    reached the goal or has drifted out of it, and a trained model answers with a plan that holds where it stands
    (an ant parked a metre from the goal point, a point mass hovering at the rim). Whenever the latest step paid no
    reward the condition is therefore capped at W - regoal_steps ("be at the goal within regoal_steps steps");
    0 keeps the plain bookkeeping."""

    def __init__(self, target: float, mode: str = "window", window: int = 300, regoal_steps: int = 0):
        if regoal_steps < 0:
            raise ValueError(f"regoal_steps must be >= 0, got {regoal_steps}")
        self.target = float(target)  # G: the user's return target for the whole episode
        self.mode = mode  # "window" or "dense" (see mage_core.data.segments.SegmentConfig.rtg_mode)
        self.window = int(window)  # W: evaluation window of the window-equivalent RTG
        self.regoal_steps = int(regoal_steps)  # cap W - n on the condition while outside the goal (0 = none)
        self.reset(1)

    def reset(self, n_envs: int) -> None:
        self.received_N = np.zeros(n_envs)
        self.last_N = np.zeros(n_envs)  # the reward of the latest step
        self.t = 0

    def receive(self, reward_N) -> None:
        """Add the rewards received since the last step."""
        r_N = np.asarray(reward_N, dtype=np.float64).reshape(-1)
        self.received_N = self.received_N + r_N
        self.last_N = np.broadcast_to(r_N, self.received_N.shape).copy()

    @property
    def regoal_cap(self) -> int | None:
        """The steps of the cap outside the goal where it applies (window mode, regoal_steps > 0), else None."""
        return self.regoal_steps if self.mode == "window" and self.regoal_steps > 0 else None

    def outside_goal(self) -> np.ndarray:
        """(N,) True where the latest step paid no reward (window mode: the agent is not at the goal)."""
        return self.last_N <= 0

    def raw(self) -> np.ndarray:
        """The unclamped condition c_t for the current step (N,), capped at W - regoal_steps outside the goal."""
        c = condition_rtg(self.target, self.received_N, self.t, self.mode)
        if self.regoal_cap is None:
            return c
        return np.where(self.outside_goal(), np.minimum(c, self.window - self.regoal_steps), c)

    def step(self, reward_N: np.ndarray) -> np.ndarray:
        """Add the rewards received since the last call and return this step's condition, window mode clipped to
        [0, W] (how Decision Transformer is conditioned); then advance the clock."""
        self.receive(reward_N)
        c_N = np.clip(self.raw(), 0.0, self.window) if self.mode == "window" else self.raw()
        self.t += 1
        return c_N
