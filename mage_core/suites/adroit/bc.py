"""The behaviour-cloning trainer behind Adroit's 'cloned' data: an MLP fitted to the human demonstrations."""
from __future__ import annotations

import numpy as np

from mage_core.suites.adroit.assets import Demo
from mage_core.suites.adroit.tasks import AdroitDataConfig


class BCPolicy:
    """A behaviour-cloned Gaussian policy: torch MLP mean on normalised observations, per-dim residual std."""

    def __init__(self, net, obs_mean_D, obs_std_D, std_A):
        self.net, self.obs_mean_D, self.obs_std_D, self.std_A = net, obs_mean_D, obs_std_D, std_A

    def mean(self, obs_D: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor((np.asarray(obs_D) - self.obs_mean_D) / self.obs_std_D, dtype=torch.float32)
        with torch.no_grad():
            return self.net(x[None])[0].numpy().astype(np.float64)

    def sample(self, obs_D: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.mean(obs_D) + self.std_A * rng.standard_normal(self.std_A.shape)


def train_bc(demos: list[Demo], cfg: AdroitDataConfig, seed: int) -> BCPolicy:
    """Fit an MLP to the demos' (observation, action) pairs by MSE (deterministic for a seed)."""
    import torch

    obs_ND = np.concatenate([d.obs_TD[:-1] for d in demos])
    act_NA = np.concatenate([d.actions_TA[:-1] for d in demos]).astype(np.float64)
    mean_D, std_D = obs_ND.mean(0), obs_ND.std(0) + 1e-6
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    h = cfg.bc_hidden
    net = torch.nn.Sequential(torch.nn.Linear(obs_ND.shape[1], h), torch.nn.ReLU(), torch.nn.Linear(h, h),
                              torch.nn.ReLU(), torch.nn.Linear(h, act_NA.shape[1]))
    x_ND = torch.as_tensor((obs_ND - mean_D) / std_D, dtype=torch.float32)
    y_NA = torch.as_tensor(act_NA, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.bc_lr)
    for _ in range(cfg.bc_steps):
        idx_B = torch.randint(0, len(x_ND), (cfg.bc_batch,), generator=gen)
        loss = ((net(x_ND[idx_B]) - y_NA[idx_B]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        resid_NA = (net(x_ND) - y_NA).numpy()
    return BCPolicy(net, mean_D, std_D, resid_NA.std(0).astype(np.float64))
