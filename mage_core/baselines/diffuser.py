"""Diffuser baseline: a DDPM temporal U-Net over state-action trajectories; start and goal imposed by inpainting."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mage_core.baselines import common
from mage_core.data.segments import Normaliser, SegmentBatch
from mage_core.device import resolve_device
from mage_core.errors import MageError
from mage_core.task_spec import task_from_checkpoint
from mage_core.tasks import Task

ALGO = "diffuser"
EXECUTE_MODES = ("pd", "actions")


@dataclass
class DiffuserConfig(common.TrainLoopConfig):
    """Diffuser model, diffusion and acting knobs (Diffuser maze2d: H=128, x0-prediction, dim 32)."""

    horizon: int = 0  # H: planned steps, a multiple of 2 ** (len(dim_mults) - 1); 0 = task_horizon(task)
    n_diffusion_steps: int = 50  # DDPM steps (training and sampling)
    dim: int = 32  # base channel width of the U-Net
    dim_mults: tuple = (1, 2, 4)  # channel multiplier per U-Net level (one 2x down/up-sample between levels)
    kernel_size: int = 5  # temporal convolution kernel
    predict_epsilon: bool = False  # predict the noise (True) or the clean trajectory (False, as Diffuser maze2d)
    action_weight: float = 1.0  # loss weight of the first action (Diffuser: 10 for locomotion, 1 for maze2d)
    clip_denoised: float = 4.0  # clamp predicted clean trajectories to +- this many stds (0 = no clamp)
    execute: str = "pd"  # acting: "pd" follows the planned positions with the PD controller, "actions" runs planned actions
    replan_every: int = 0  # control steps between plans; 0 = plan once per episode (Diffuser's maze2d protocol)
    lookahead: int = 1  # "pd": steer towards the planned position this many steps ahead (Diffuser: the next one)


PRESETS: dict[str, DiffuserConfig] = {
    "tiny": DiffuserConfig(horizon=16, n_diffusion_steps=10, dim=8, dim_mults=(1, 2), steps=150, batch_size=16,
                           lr=2e-3, warmup_steps=10, log_every=10, ckpt_every=0),
    "small": DiffuserConfig(horizon=0, n_diffusion_steps=50, dim=32, dim_mults=(1, 2, 4), steps=2500, batch_size=32,
                            lr=5e-4, weight_decay=0.0, warmup_steps=100, log_every=50, ckpt_every=500),
}




def task_horizon(task: Task, cfg: DiffuserConfig) -> int:
    """The planning horizon for a task when the config leaves it at 0: the suite's (task.params['diffuser_horizon'],
    Diffuser's maze2d horizons for PointMaze: the plan must be long enough to reach the inpainted goal), else twice
    the task's segment horizon; rounded up to a multiple of the U-Net's down-sampling factor."""
    levels = 2 ** (len(cfg.dim_mults) - 1)
    h = int(task.params.get("diffuser_horizon", 2 * task.horizon))
    return -(-h // levels) * levels


# ---------------------------------------------------------------------------------------------------------------
# temporal U-Net
# ---------------------------------------------------------------------------------------------------------------
class SinusoidalEmbedding(nn.Module):
    """Diffusion step k -> sinusoidal features of width dim."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer("freq_F", torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1)),
                             persistent=False)

    def forward(self, k_B: torch.Tensor) -> torch.Tensor:
        arg_BF = k_B.float()[:, None] * self.freq_F[None]
        return torch.cat([arg_BF.sin(), arg_BF.cos()], dim=-1)


def _groups(ch: int) -> int:
    return 8 if ch % 8 == 0 else 1


class ConvBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(_groups(c_out), c_out),
                                 nn.Mish())

    def forward(self, x_BCH: torch.Tensor) -> torch.Tensor:
        return self.net(x_BCH)


class ResidualTemporalBlock(nn.Module):
    """Two conv blocks with the diffusion-step embedding added in between, plus a (1x1) residual path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, kernel: int):
        super().__init__()
        self.block1, self.block2 = ConvBlock(c_in, c_out, kernel), ConvBlock(c_out, c_out, kernel)
        self.emb = nn.Sequential(nn.Mish(), nn.Linear(emb_dim, c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x_BCH: torch.Tensor, e_BE: torch.Tensor) -> torch.Tensor:
        h_BCH = self.block1(x_BCH) + self.emb(e_BE)[:, :, None]
        return self.block2(h_BCH) + self.skip(x_BCH)


class TemporalUNet(nn.Module):
    """Diffuser's temporal U-Net: x_BHX (trajectory of H transitions of width X) and step k -> x_BHX."""

    def __init__(self, transition_dim: int, cfg: DiffuserConfig):
        super().__init__()
        dims = [transition_dim] + [cfg.dim * m for m in cfg.dim_mults]
        pairs = list(zip(dims[:-1], dims[1:]))
        E = cfg.dim
        self.step_emb = nn.Sequential(SinusoidalEmbedding(E), nn.Linear(E, 4 * E), nn.Mish(), nn.Linear(4 * E, E))
        k = cfg.kernel_size
        self.downs = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(nn.ModuleList([ResidualTemporalBlock(c_in, c_out, E, k), ResidualTemporalBlock(c_out, c_out, E, k),
                                             nn.Conv1d(c_out, c_out, 3, stride=2, padding=1) if not last else nn.Identity()]))
        c_mid = dims[-1]
        self.mid1, self.mid2 = ResidualTemporalBlock(c_mid, c_mid, E, k), ResidualTemporalBlock(c_mid, c_mid, E, k)
        self.ups = nn.ModuleList()
        for c_in, c_out in reversed(pairs[1:]):  # each level up undoes one down-sample (the finest skip is unused)
            self.ups.append(nn.ModuleList([ResidualTemporalBlock(2 * c_out, c_in, E, k), ResidualTemporalBlock(c_in, c_in, E, k),
                                           nn.ConvTranspose1d(c_in, c_in, 4, stride=2, padding=1)]))
        self.final = nn.Sequential(ConvBlock(cfg.dim, cfg.dim, k), nn.Conv1d(cfg.dim, transition_dim, 1))

    def forward(self, x_BHX: torch.Tensor, k_B: torch.Tensor) -> torch.Tensor:
        e_BE = self.step_emb(k_B)
        h_BCH = x_BHX.transpose(1, 2)
        skips = []
        for res1, res2, down in self.downs:
            h_BCH = res2(res1(h_BCH, e_BE), e_BE)
            skips.append(h_BCH)
            h_BCH = down(h_BCH)
        h_BCH = self.mid2(self.mid1(h_BCH, e_BE), e_BE)
        for res1, res2, up in self.ups:
            h_BCH = torch.cat([h_BCH, skips.pop()], dim=1)
            h_BCH = up(res2(res1(h_BCH, e_BE), e_BE))
        return self.final(h_BCH).transpose(1, 2)


# ---------------------------------------------------------------------------------------------------------------
# DDPM
# ---------------------------------------------------------------------------------------------------------------
def cosine_betas(n_steps: int, s: float = 0.008) -> torch.Tensor:
    """The cosine noise schedule (Nichol & Dhariwal), betas clipped to [0, 0.999]."""
    x = torch.linspace(0, n_steps, n_steps + 1, dtype=torch.float64)
    abar = torch.cos(((x / n_steps) + s) / (1 + s) * math.pi / 2) ** 2
    abar = abar / abar[0]
    return (1 - abar[1:] / abar[:-1]).clamp(0, 0.999)


class GaussianDiffusion(nn.Module):
    """DDPM over normalised trajectories x_BHX = [a, s] per step, with inpainting of known entries.

    goal_inpainting: impose the final xy and the goal dims (sparse goal-reaching mazes) besides the start state.
    forward(batch, stage) is the training loss (mage_core.training.loop contract); sample(...) plans.
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: DiffuserConfig, goal_inpainting: bool = False,
                 pos_slice: slice | None = None, goal_slice: slice | None = None):
        super().__init__()
        if goal_inpainting and (pos_slice is None or goal_slice is None):
            raise MageError("goal inpainting needs where the agent's xy and the goal sit in the observation "
                            "(diffusion_kwargs(task) asks the task's suite)")
        self.goal_inpainting = goal_inpainting
        self.pos_slice = pos_slice  # the agent's xy in the observation (imposed at the last step when inpainting)
        self.goal_slice = goal_slice  # the goal xy in the observation (imposed at every step when inpainting)
        levels = 2 ** (len(cfg.dim_mults) - 1)
        if cfg.horizon <= 0 or cfg.horizon % levels:
            raise MageError(f"diffuser horizon {cfg.horizon} must be a positive multiple of {levels} for dim_mults "
                            f"{cfg.dim_mults}")
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.model = TemporalUNet(obs_dim + act_dim, cfg)
        betas_K = cosine_betas(cfg.n_diffusion_steps)
        alphas_K = 1 - betas_K
        abar_K = torch.cumprod(alphas_K, 0)
        abar_prev_K = torch.cat([torch.ones(1, dtype=abar_K.dtype), abar_K[:-1]])
        post_var_K = betas_K * (1 - abar_prev_K) / (1 - abar_K)
        bufs = {"sqrt_abar_K": abar_K.sqrt(), "sqrt_1m_abar_K": (1 - abar_K).sqrt(),
                "sqrt_recip_abar_K": (1 / abar_K).sqrt(), "sqrt_recipm1_abar_K": (1 / abar_K - 1).sqrt(),
                "post_c0_K": betas_K * abar_prev_K.sqrt() / (1 - abar_K),
                "post_ct_K": (1 - abar_prev_K) * alphas_K.sqrt() / (1 - abar_K),
                "post_logvar_K": torch.log(torch.cat([post_var_K[1:2], post_var_K[1:]]))}
        for name, v in bufs.items():
            self.register_buffer(name, v.float(), persistent=False)
        self.register_buffer("cond_mask_HX", condition_mask(obs_dim, act_dim, cfg.horizon, goal_inpainting,
                                                            self.pos_slice, self.goal_slice), persistent=False)

    @staticmethod
    def _at(v_K: torch.Tensor, k_B: torch.Tensor) -> torch.Tensor:
        return v_K[k_B][:, None, None]

    def predict_x0(self, x_BHX: torch.Tensor, k_B: torch.Tensor) -> torch.Tensor:
        out_BHX = self.model(x_BHX, k_B)
        if self.cfg.predict_epsilon:
            out_BHX = self._at(self.sqrt_recip_abar_K, k_B) * x_BHX - self._at(self.sqrt_recipm1_abar_K, k_B) * out_BHX
        if self.cfg.clip_denoised > 0:
            out_BHX = out_BHX.clamp(-self.cfg.clip_denoised, self.cfg.clip_denoised)
        return out_BHX

    def forward(self, batch: SegmentBatch, stage: int = 1) -> dict:
        """Denoising loss on H-step [a, s] segments (states held past episode ends; no action targets there)."""
        A = self.act_dim
        x0_BHX = torch.cat([batch.a_BHA, batch.x_BHD[..., 1:]], dim=-1)  # the RTG column is not modelled
        w_BHX = torch.ones_like(x0_BHX)
        w_BHX[..., :A] = batch.mask_BH[..., None]
        w_BHX[:, 0, :A] *= self.cfg.action_weight
        return {"loss": self.denoising_loss(x0_BHX, self.cond_mask_HX.expand_as(x0_BHX), w_BHX)}

    def denoising_loss(self, x0_BHX: torch.Tensor, cond_mask_BHX: torch.Tensor, weight_BHX: torch.Tensor) -> torch.Tensor:
        """Weighted denoising loss; conditioned entries are inpainted into the noisy input and left out of the loss."""
        B = len(x0_BHX)
        k_B = torch.randint(0, self.cfg.n_diffusion_steps, (B,), device=x0_BHX.device)
        eps_BHX = torch.randn_like(x0_BHX)
        xk_BHX = self._at(self.sqrt_abar_K, k_B) * x0_BHX + self._at(self.sqrt_1m_abar_K, k_B) * eps_BHX
        xk_BHX = torch.where(cond_mask_BHX > 0, x0_BHX, xk_BHX)
        out_BHX = self.model(xk_BHX, k_B)
        target_BHX = eps_BHX if self.cfg.predict_epsilon else x0_BHX
        w_BHX = weight_BHX * (1 - cond_mask_BHX)
        return ((out_BHX - target_BHX) ** 2 * w_BHX).sum() / w_BHX.sum().clamp_min(1.0)

    @torch.no_grad()
    def sample(self, cond_mask_BHX: torch.Tensor, cond_val_BHX: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Reverse diffusion from noise with the known entries (mask 1) held at cond_val at every step."""
        B, H, X = cond_val_BHX.shape
        dev = cond_val_BHX.device
        x_BHX = torch.randn(B, H, X, generator=generator, device=dev)
        for k in reversed(range(self.cfg.n_diffusion_steps)):
            x_BHX = torch.where(cond_mask_BHX > 0, cond_val_BHX, x_BHX)
            k_B = torch.full((B,), k, device=dev, dtype=torch.long)
            x0_BHX = self.predict_x0(x_BHX, k_B)
            mean_BHX = self._at(self.post_c0_K, k_B) * x0_BHX + self._at(self.post_ct_K, k_B) * x_BHX
            if k > 0:
                noise_BHX = torch.randn(B, H, X, generator=generator, device=dev)
                x_BHX = mean_BHX + (0.5 * self._at(self.post_logvar_K, k_B)).exp() * noise_BHX
            else:
                x_BHX = mean_BHX
        return torch.where(cond_mask_BHX > 0, cond_val_BHX, x_BHX)


def condition_mask(obs_dim: int, act_dim: int, horizon: int, goal_inpainting: bool, pos: slice | None = None,
                   goal: slice | None = None) -> torch.Tensor:
    """(H, X) 1 where the trajectory is imposed: the whole start state; when inpainting, the final xy (pos) and the goal
    dims (goal), both slices of the observation that the task's suite names."""
    m_HX = torch.zeros(horizon, act_dim + obs_dim)
    m_HX[0, act_dim:] = 1
    if goal_inpainting:
        m_HX[-1, act_dim + pos.start:act_dim + pos.stop] = 1
        m_HX[:, act_dim + goal.start:act_dim + goal.stop] = 1
    return m_HX


def diffusion_kwargs(task: Task) -> dict:
    """GaussianDiffusion's task-dependent arguments: whether to inpaint the goal, and where xy and goal sit."""
    sl = task.suite.obs_slices(task)
    if not task.suite.goal_reaching(task):
        return {"goal_inpainting": False}
    return {"goal_inpainting": True, "pos_slice": sl["agent_xy"], "goal_slice": sl["goal_xy"]}


def train(episodes: list, task: Task, config: DiffuserConfig, *, out: str | Path, device: str = "cpu",
          resume: dict | None = None, events: Any = None, seed: int = 0, dataset: Any = None,
          progress: bool = False) -> dict:
    """Fit the denoiser on H-step [a, s] segments; writes the checkpoint to `out` and returns it."""
    dev = resolve_device(device)
    if config.execute not in EXECUTE_MODES:
        raise MageError(f"diffuser execute must be one of {EXECUTE_MODES}, not {config.execute!r}")
    if not config.horizon:
        config = replace(config, horizon=task_horizon(task, config))
    normaliser = Normaliser.from_state_dict(resume["normaliser"]) if resume else None
    ds = common.make_segments(episodes, task, horizon=config.horizon, normaliser=normaliser)
    torch.manual_seed(seed)
    diff = GaussianDiffusion(ds.obs_dim, ds.act_dim, config, **diffusion_kwargs(task))
    return common.train_model(ALGO, diff, config, ds, task, episodes, out=out, resume=resume, events=events,
                              seed=seed, device=dev, dataset=dataset, progress=progress)


class DiffuserPolicy:
    """Plan H steps from the current state (goal imposed for mazes), then act from the plan; replan every n steps.

    execute="pd" (default on PointMaze): steer with the D4RL PD controller (mage_core.maze.pd_action) towards the
    planned position `lookahead` steps ahead, and towards the plan's last (goal) position once the plan is used up,
    as Diffuser's maze2d controller does; execute="actions": run the planned (denormalised) actions open-loop.
    replan_every=0 plans once per episode (Diffuser's maze2d protocol). Replanning mid-motion is available but
    scores lower here: dataset episodes start at rest, so plans from a moving state begin with a slow start.
    """

    def __init__(self, diffusion: GaussianDiffusion, normaliser: Normaliser, task: Task, device: torch.device,
                 replan_every: int, execute: str, lookahead: int, seed: int = 0):
        if execute not in EXECUTE_MODES:
            raise MageError(f"diffuser execute must be one of {EXECUTE_MODES}, not {execute!r}")
        if replan_every < 0:
            raise MageError("replan_every must be 0 (plan once per episode) or a positive number of steps")
        self.diff = diffusion.eval()
        self.norm = normaliser
        self.device = device
        self.obs_dim, self.act_dim, self.H = diffusion.obs_dim, diffusion.act_dim, diffusion.cfg.horizon
        self.goal_inpainting = diffusion.goal_inpainting
        if execute == "pd" and not task.suite.has_tracker:
            execute = "actions"  # the PD follower needs a suite with a tracking controller (PointMaze)
        self.task = task
        self.execute, self.replan_every, self.lookahead = execute, replan_every, lookahead
        self.seed = seed
        self.reset(1)

    def reset(self, n_envs: int) -> None:
        self.n = n_envs
        self.k = 0  # steps since the last plan
        self.plan_states_NHD: np.ndarray | None = None  # last plan's states, env units
        self.plan_actions_NHA: np.ndarray | None = None  # last plan's actions, env units
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    @torch.no_grad()
    def plan(self, obs_ND: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample one H-step plan per env -> (states_NHD, actions_NHA) in env units."""
        A = self.act_dim
        sn_ND = (obs_ND - self.norm.x_mean_D[1:]) / self.norm.x_std_D[1:]
        val_NHX = torch.zeros(len(obs_ND), self.H, A + self.obs_dim, device=self.device)
        s_ND = torch.from_numpy(sn_ND.astype(np.float32)).to(self.device)
        val_NHX[:, 0, A:] = s_ND
        if self.goal_inpainting:
            pos, goal = self.diff.pos_slice, self.diff.goal_slice
            val_NHX[:, :, A + goal.start:A + goal.stop] = s_ND[:, None, goal]
            # the goal xy in the position channels' normalisation
            goal_xy = obs_ND[:, goal]
            pos_n = (goal_xy - self.norm.x_mean_D[1 + pos.start:1 + pos.stop]) / self.norm.x_std_D[1 + pos.start:1 + pos.stop]
            val_NHX[:, -1, A + pos.start:A + pos.stop] = torch.from_numpy(pos_n.astype(np.float32)).to(self.device)
        x_NHX = self.diff.sample(self.diff.cond_mask_HX.expand_as(val_NHX), val_NHX, self.generator).cpu().numpy()
        states = self.norm.denorm_x(np.concatenate([np.zeros_like(x_NHX[..., :1]), x_NHX[..., A:]], -1))[..., 1:]
        return states.astype(np.float32), self.norm.denorm_a(x_NHX[..., :A]).astype(np.float32)

    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        obs_ND = common.check_obs(obs_ND, self.obs_dim)
        if len(obs_ND) != self.n:
            raise MageError(f"policy was reset for {self.n} envs but got {len(obs_ND)} observations")
        used_up = self.execute == "actions" and self.k >= self.H  # open-loop actions cannot outlive their plan
        if self.plan_states_NHD is None or (self.replan_every and self.k >= self.replan_every) or used_up:
            self.plan_states_NHD, self.plan_actions_NHA = self.plan(obs_ND)
            self.k = 0
        if self.execute == "pd":
            j = min(self.k + self.lookahead, self.H - 1)
            a_NA = self.task.suite.track_action(self.task, obs_ND, self.plan_states_NHD[:, j])
        else:
            a_NA = self.plan_actions_NHA[:, min(self.k, self.H - 1)]
        self.k += 1
        return np.clip(a_NA, common.ACTION_LOW, common.ACTION_HIGH).astype(np.float32)


def load_model(ckpt_or_path, device: str = "cpu") -> tuple[GaussianDiffusion, dict]:
    ckpt = common.load_ckpt(ckpt_or_path, ALGO)
    cfg = common.config_from_dict(DiffuserConfig, ckpt["config"][ALGO])
    diff = GaussianDiffusion(ckpt["spaces"]["obs_dim"], ckpt["spaces"]["act_dim"], cfg,
                             **diffusion_kwargs(task_from_checkpoint(ckpt)))
    diff.load_state_dict(ckpt["state_dict"])
    return diff.to(resolve_device(device)).eval(), ckpt


def load_policy(ckpt_or_path, rtg_target: float | None = None, device: str = "cpu", *, replan_every: int | None = None,
                execute: str | None = None, lookahead: int | None = None, seed: int = 0, **kw) -> DiffuserPolicy:
    """A DiffuserPolicy (rtg_target is accepted for a uniform interface and ignored: maze Diffuser is goal-inpainted)."""
    diff, ckpt = load_model(ckpt_or_path, device)
    cfg = diff.cfg
    return DiffuserPolicy(diff, Normaliser.from_state_dict(ckpt["normaliser"]), task_from_checkpoint(ckpt),
                          resolve_device(device), cfg.replan_every if replan_every is None else replan_every,
                          execute or cfg.execute,
                          cfg.lookahead if lookahead is None else lookahead, seed)


def preset(name: str, steps: int | None = None) -> DiffuserConfig:
    if name not in PRESETS:
        raise MageError(f"unknown diffuser preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], steps=steps) if steps else replace(PRESETS[name])
