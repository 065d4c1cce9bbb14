"""The locomotion suite's behaviour-policy files: the env table, the numpy SAC actor they hold, their hashes."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

# The three Gym-MuJoCo locomotion envs of D4RL, on their current (-v5) versions.
ENVS: dict[str, str] = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
ASSETS = Path(__file__).resolve().parents[3] / "assets" / "locomotion"


class NumpyActor:
    """A squashed-Gaussian SAC actor run with numpy: deterministic tanh(mean) or a sample with its own std."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.n_layers = int(arrays["n_layers"])
        self.w = [np.asarray(arrays[f"w{i}"], np.float64) for i in range(self.n_layers)]
        self.b = [np.asarray(arrays[f"b{i}"], np.float64) for i in range(self.n_layers)]
        self.w_mu, self.b_mu = np.asarray(arrays["w_mu"], np.float64), np.asarray(arrays["b_mu"], np.float64)
        self.w_ls, self.b_ls = np.asarray(arrays["w_logstd"], np.float64), np.asarray(arrays["b_logstd"], np.float64)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NumpyActor":
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    def _head(self, obs_D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h_H = np.asarray(obs_D, np.float64)
        for w, b in zip(self.w, self.b):
            h_H = np.maximum(w @ h_H + b, 0.0)
        return self.w_mu @ h_H + self.b_mu, np.clip(self.w_ls @ h_H + self.b_ls, -20.0, 2.0)

    def act(self, obs_D: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """tanh(mean) without rng; with rng, tanh of a sample from the policy's own Gaussian (SAC's exploration)."""
        mu_A, logstd_A = self._head(obs_D)
        if rng is not None:
            mu_A = mu_A + np.exp(logstd_A) * rng.standard_normal(mu_A.shape)
        return np.tanh(mu_A)


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
