"""Behaviour cloning baseline: an MLP from the flattened observation (goal included) to the normalised action."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mage_core.baselines import common
from mage_core.data.segments import Normaliser, SegmentBatch
from mage_core.device import resolve_device
from mage_core.tasks import Task

ALGO = "bc"


@dataclass
class BCConfig(common.TrainLoopConfig):
    """BC model and training knobs (the loop fields come from TrainLoopConfig)."""

    hidden: int = 256  # width of every hidden layer
    n_layers: int = 3  # number of hidden layers
    dropout: float = 0.1  # dropout after each hidden activation (training only)


PRESETS: dict[str, BCConfig] = {
    "tiny": BCConfig(hidden=64, n_layers=2, steps=300, batch_size=128, lr=1e-3, warmup_steps=20, log_every=20,
                     ckpt_every=0),
    "small": BCConfig(hidden=256, n_layers=3, steps=6000, batch_size=256, lr=1e-3, warmup_steps=200, log_every=100,
                      ckpt_every=2000),
}


class BCModel(nn.Module):
    """MLP policy s -> a in normalised units; forward(batch, stage) is the training loss (mage_core.training.loop contract)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: BCConfig):
        super().__init__()
        layers: list[nn.Module] = []
        d = obs_dim
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(d, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            d = cfg.hidden
        layers.append(nn.Linear(d, act_dim))
        self.net = nn.Sequential(*layers)

    def predict(self, s_BD: torch.Tensor) -> torch.Tensor:
        """Normalised states -> normalised actions a_BA."""
        return self.net(s_BD)

    def forward(self, batch: SegmentBatch, stage: int = 1) -> dict:
        """MSE between predicted and dataset actions (normalised) on horizon-1 segments."""
        pred_BA = self.predict(batch.x_BHD[:, 0, 1:])
        return {"loss": ((pred_BA - batch.a_BA) ** 2).mean()}


def train(episodes: list, task: Task, config: BCConfig, *, out: str | Path, device: str = "cpu",
          resume: dict | None = None, events: Any = None, seed: int = 0, dataset: Any = None,
          progress: bool = False) -> dict:
    """Fit BC on all (s, a) pairs of the episodes; writes the checkpoint to `out` and returns it."""
    dev = resolve_device(device)
    normaliser = Normaliser.from_state_dict(resume["normaliser"]) if resume else None
    ds = common.make_segments(episodes, task, horizon=1, normaliser=normaliser)
    torch.manual_seed(seed)
    model = BCModel(ds.obs_dim, ds.act_dim, config)
    return common.train_model(ALGO, model, config, ds, task, episodes, out=out, resume=resume, events=events,
                              seed=seed, device=dev, dataset=dataset, progress=progress)


class BCPolicy:
    """Acting wrapper: normalise s, run the MLP, denormalise and clip the action (stateless, no RTG)."""

    def __init__(self, model: BCModel, normaliser: Normaliser, device: torch.device):
        self.model = model.eval()
        self.norm = normaliser
        self.device = device
        self.obs_dim = len(normaliser.x_mean_D) - 1

    def reset(self, n_envs: int) -> None:
        pass

    @torch.no_grad()
    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        obs_ND = common.check_obs(obs_ND, self.obs_dim)
        s_ND = (obs_ND - self.norm.x_mean_D[1:]) / self.norm.x_std_D[1:]
        a_NA = self.model.predict(torch.from_numpy(s_ND.astype(np.float32)).to(self.device)).cpu().numpy()
        return np.clip(self.norm.denorm_a(a_NA), common.ACTION_LOW, common.ACTION_HIGH).astype(np.float32)


def load_model(ckpt_or_path, device: str = "cpu") -> tuple[BCModel, dict]:
    ckpt = common.load_ckpt(ckpt_or_path, ALGO)
    cfg = common.config_from_dict(BCConfig, ckpt["config"][ALGO])
    dev = resolve_device(device)
    model = BCModel(ckpt["spaces"]["obs_dim"], ckpt["spaces"]["act_dim"], cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(dev).eval(), ckpt


def load_policy(ckpt_or_path, rtg_target: float | None = None, device: str = "cpu", **kw) -> BCPolicy:
    """A BCPolicy from a checkpoint (rtg_target is accepted for a uniform interface and ignored: BC has no RTG)."""
    model, ckpt = load_model(ckpt_or_path, device)
    return BCPolicy(model, Normaliser.from_state_dict(ckpt["normaliser"]), resolve_device(device))


def preset(name: str, steps: int | None = None) -> BCConfig:
    from mage_core.errors import MageError

    if name not in PRESETS:
        raise MageError(f"unknown bc preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    return replace(cfg, steps=steps) if steps else replace(cfg)
