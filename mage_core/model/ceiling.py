"""Return ceiling: a high-expectile regressor R_hi(s) of the RTG labels, used to keep RTG conditions feasible."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn


@dataclass
class CeilingConfig:
    """The return-ceiling regressor and its fit."""

    hidden: int = 128  # hidden width of the MLP
    expectile: float = 0.9  # tau of the expectile loss: 0.5 = mean, close to 1 = best returns seen from a state
    steps: int = 1500  # optimisation steps
    batch_size: int = 512  # states per step
    lr: float = 2e-3  # Adam learning rate
    seed: int = 0  # init and sampling seed


class ReturnCeiling(nn.Module):
    """MLP s -> normalised R: the tau-expectile of the RTG labels observed from similar states."""

    def __init__(self, obs_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 1))

    def forward(self, s_BD: torch.Tensor) -> torch.Tensor:
        return self.net(s_BD).squeeze(-1)


def expectile_loss(pred_B: torch.Tensor, target_B: torch.Tensor, tau: float) -> torch.Tensor:
    diff = target_B - pred_B
    weight = torch.where(diff > 0, tau, 1 - tau)
    return (weight * diff.pow(2)).mean()


def fit_return_ceiling(xn_ND: np.ndarray, cfg: CeilingConfig | None = None,
                       progress: Callable[[int], None] | None = None) -> tuple[dict, dict]:
    """Fit on normalised (R, s) rows; returns (payload for the checkpoint, metrics). progress(step) every 100 steps."""
    cfg = cfg or CeilingConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.as_tensor(xn_ND, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
        torch.manual_seed(cfg.seed)
        model = ReturnCeiling(x.shape[1] - 1, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    first = last = None
    for step in range(cfg.steps):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
        loss = expectile_loss(model(x[idx, 1:]), x[idx, 0], cfg.expectile)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach())
        first = last if first is None else first
        if progress is not None and ((step + 1) % 100 == 0 or step + 1 == cfg.steps):
            progress(step + 1)
    return ({"config": asdict(cfg), "obs_dim": int(x.shape[1] - 1), "state_dict": model.state_dict()},
            {"ceiling_loss_first": first, "ceiling_loss_last": last})


def load_return_ceiling(payload: dict) -> ReturnCeiling:
    model = ReturnCeiling(int(payload["obs_dim"]), int(payload["config"]["hidden"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
