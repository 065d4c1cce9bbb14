"""Decision Transformer baseline: a return-conditioned causal transformer over (R, s, a) tokens with a rolling context."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mage_core.baselines import common
from mage_core.data.segments import Normaliser, SegmentBatch
from mage_core.device import resolve_device
from mage_core.errors import MageError
from mage_core.rtg import RTGTracker
from mage_core.tasks import Task

ALGO = "dt"
TOKENS_PER_STEP = 3  # (R_t, s_t, a_t)


@dataclass
class DTConfig(common.TrainLoopConfig):
    """Decision Transformer model and training knobs (paper defaults for gym: K=20, d=128, 3 layers, 1 head)."""

    context: int = 20  # K: timesteps in the context window (3K tokens)
    d_model: int = 128  # embedding width
    n_layers: int = 3  # transformer blocks
    n_heads: int = 1  # attention heads
    dropout: float = 0.1  # dropout on embeddings, attention and MLP outputs
    max_timestep: int = 1024  # timestep embedding table size; set at training time to cover the data and the eval
    # episode (as the paper's max_ep_len); entries the data never reaches keep their initialisation


PRESETS: dict[str, DTConfig] = {
    "tiny": DTConfig(context=8, d_model=32, n_layers=1, n_heads=1, steps=200, batch_size=32, lr=1e-3,
                     warmup_steps=20, log_every=20, ckpt_every=0),
    "small": DTConfig(context=20, d_model=128, n_layers=3, n_heads=1, steps=2000, batch_size=64, lr=6e-4,
                      weight_decay=1e-4, warmup_steps=200, log_every=100, ckpt_every=500),
}


class Block(nn.Module):
    """Pre-LayerNorm GPT block: causal self-attention + MLP, both residual."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, h_BLC: torch.Tensor) -> torch.Tensor:
        B, L, C = h_BLC.shape
        q, k, v = self.qkv(self.ln1(h_BLC)).view(B, L, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        y_BHLc = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                dropout_p=self.attn_dropout if self.training else 0.0)
        h_BLC = h_BLC + self.drop(self.proj(y_BHLc.transpose(1, 2).reshape(B, L, C)))
        return h_BLC + self.mlp(self.ln2(h_BLC))


class DecisionTransformer(nn.Module):
    """(R, s, a) token model: per-modality linear embeddings + a learned timestep embedding; a_t read off the s_t token."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: DTConfig):
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.embed_t = nn.Embedding(cfg.max_timestep, d)
        self.embed_R = nn.Linear(1, d)
        self.embed_s = nn.Linear(obs_dim, d)
        self.embed_a = nn.Linear(act_dim, d)
        self.embed_ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head_a = nn.Linear(d, act_dim)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, batch: "TimedBatch", stage: int = 1) -> dict:
        """Masked MSE of the actions predicted at every s_t token of K-step segments (mage_core.training.loop contract)."""
        pred_BKA = self.predict(batch.x_BHD[..., 0], batch.x_BHD[..., 1:], batch.a_BHA, batch.t_BH)
        return {"loss": common.masked_mse(pred_BKA, batch.a_BHA, batch.mask_BH)}

    def predict(self, R_BK: torch.Tensor, s_BKD: torch.Tensor, a_BKA: torch.Tensor, t_BK: torch.Tensor) -> torch.Tensor:
        """Normalised RTG, states, actions and integer timesteps -> predicted normalised actions a_BKA."""
        B, K = R_BK.shape
        e_t_BKC = self.embed_t(t_BK.clamp(0, self.cfg.max_timestep - 1))
        tok_BK3C = torch.stack([self.embed_R(R_BK.unsqueeze(-1)) + e_t_BKC, self.embed_s(s_BKD) + e_t_BKC,
                                self.embed_a(a_BKA) + e_t_BKC], dim=2)
        h_BLC = self.drop(self.embed_ln(tok_BK3C.reshape(B, TOKENS_PER_STEP * K, -1)))
        for blk in self.blocks:
            h_BLC = blk(h_BLC)
        h_s_BKC = self.ln_f(h_BLC).view(B, K, TOKENS_PER_STEP, -1)[:, :, 1]  # hidden state at the s_t tokens
        return self.head_a(h_s_BKC)


@dataclass
class TimedBatch(SegmentBatch):
    """A SegmentBatch plus the episode timestep of every step (for the timestep embedding)."""

    t_BH: torch.Tensor = None  # (B, H) int64 time index within the episode

    def to(self, device) -> "TimedBatch":
        return TimedBatch(self.x_BHD.to(device), self.a_BHA.to(device), self.mask_BH.to(device), self.t_BH.to(device))


def train(episodes: list, task: Task, config: DTConfig, *, out: str | Path, device: str = "cpu",
          resume: dict | None = None, events: Any = None, seed: int = 0, dataset: Any = None,
          progress: bool = False) -> dict:
    """Fit the DT on K-step windows of the relabelled segments; writes the checkpoint to `out` and returns it."""
    dev = resolve_device(device)
    normaliser = Normaliser.from_state_dict(resume["normaliser"]) if resume else None
    ds = common.make_segments(episodes, task, horizon=config.context, normaliser=normaliser)
    if resume is None:  # the table covers every step of the data and of the evaluation episode
        # (clamping late evaluation steps to the last trained entry instead scored lower: it erases their order)
        config = replace(config, max_timestep=int(max(max(ep.length for ep in episodes), task.eval_steps) + 1))
    t_N = torch.from_numpy(common.episode_timesteps(ds))
    torch.manual_seed(seed)
    model = DecisionTransformer(ds.obs_dim, ds.act_dim, config)

    def batch_fn(rng: np.random.Generator, batch_size: int) -> TimedBatch:
        idx_B = rng.integers(0, len(ds), size=batch_size)
        b = ds.get(idx_B)
        return TimedBatch(b.x_BHD, b.a_BHA, b.mask_BH, t_N[common.segment_rows(ds, idx_B)])

    return common.train_model(ALGO, model, config, ds, task, episodes, out=out, resume=resume, events=events,
                              seed=seed, device=dev, dataset=dataset, progress=progress, batch_fn=batch_fn)


class DTPolicy:
    """Acting wrapper: rolling K-step context per env; the RTG condition is decremented by the received reward.

    For window-mode (sparse maze) tasks the condition is c_t = clip(G - r_<t + t, 0, W), matching the relabelled
    training labels; for dense tasks it is the usual G - r_<t. Timesteps past the embedding table are clamped.
    """

    def __init__(self, model: DecisionTransformer, normaliser: Normaliser, rtg: RTGTracker, device: torch.device):
        self.model = model.eval()
        self.norm = normaliser
        self.rtg = rtg
        self.device = device
        self.K = model.cfg.context
        self.obs_dim = len(normaliser.x_mean_D) - 1
        self.act_dim = len(normaliser.a_mean_A)
        self.reset(1)

    @property
    def target(self) -> float:
        """The episode return target G this policy acts for (the same attribute as MAGE's PlannerPolicy)."""
        return self.rtg.target

    def reset(self, n_envs: int) -> None:
        self.rtg.reset(n_envs)
        self.n = n_envs
        self.R_NL = np.zeros((n_envs, 0), np.float32)  # normalised RTG conditions of the context
        self.s_NLD = np.zeros((n_envs, 0, self.obs_dim), np.float32)  # normalised states
        self.a_NLA = np.zeros((n_envs, 0, self.act_dim), np.float32)  # normalised actions (last one is a placeholder)
        self.t_NL = np.zeros((n_envs, 0), np.int64)  # episode timesteps
        self.last_condition_N = np.zeros(n_envs)  # the (env-unit) RTG the last action was conditioned on

    @torch.no_grad()
    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        obs_ND = common.check_obs(obs_ND, self.obs_dim)
        if len(obs_ND) != self.n:
            raise MageError(f"policy was reset for {self.n} envs but got {len(obs_ND)} observations")
        t = self.rtg.t
        c_N = self.rtg.step(reward_N)
        self.last_condition_N = c_N
        Rn_N = ((c_N - self.norm.x_mean_D[0]) / self.norm.x_std_D[0]).astype(np.float32)
        sn_ND = ((obs_ND - self.norm.x_mean_D[1:]) / self.norm.x_std_D[1:]).astype(np.float32)
        keep = self.K - 1
        self.R_NL = np.concatenate([self.R_NL[:, -keep:] if keep else self.R_NL[:, :0], Rn_N[:, None]], 1)
        self.s_NLD = np.concatenate([self.s_NLD[:, -keep:] if keep else self.s_NLD[:, :0], sn_ND[:, None]], 1)
        self.a_NLA = np.concatenate([self.a_NLA[:, -keep:] if keep else self.a_NLA[:, :0],
                                     np.zeros((self.n, 1, self.act_dim), np.float32)], 1)
        self.t_NL = np.concatenate([self.t_NL[:, -keep:] if keep else self.t_NL[:, :0], np.full((self.n, 1), t)], 1)
        dev = self.device
        pred_NLA = self.model.predict(torch.from_numpy(self.R_NL).to(dev), torch.from_numpy(self.s_NLD).to(dev),
                              torch.from_numpy(self.a_NLA).to(dev), torch.from_numpy(self.t_NL).to(dev))
        an_NA = pred_NLA[:, -1].cpu().numpy()
        self.a_NLA[:, -1] = an_NA
        return np.clip(self.norm.denorm_a(an_NA), common.ACTION_LOW, common.ACTION_HIGH).astype(np.float32)


def load_model(ckpt_or_path, device: str = "cpu") -> tuple[DecisionTransformer, dict]:
    ckpt = common.load_ckpt(ckpt_or_path, ALGO)
    cfg = common.config_from_dict(DTConfig, ckpt["config"][ALGO])
    model = DecisionTransformer(ckpt["spaces"]["obs_dim"], ckpt["spaces"]["act_dim"], cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(resolve_device(device)).eval(), ckpt


def load_policy(ckpt_or_path, rtg_target: float | None = None, device: str = "cpu", **kw) -> DTPolicy:
    """A DTPolicy; rtg_target = the episode return target G (default: the best episode-start RTG in the data)."""
    model, ckpt = load_model(ckpt_or_path, device)
    meta = ckpt["dataset"]
    target = common.default_rtg_target(meta) if rtg_target is None else float(rtg_target)
    tracker = RTGTracker(target, meta.get("rtg_mode", "window"), meta.get("rtg_window", 300))
    return DTPolicy(model, Normaliser.from_state_dict(ckpt["normaliser"]), tracker, resolve_device(device))


def preset(name: str, steps: int | None = None) -> DTConfig:
    if name not in PRESETS:
        raise MageError(f"unknown dt preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], steps=steps) if steps else replace(PRESETS[name])
