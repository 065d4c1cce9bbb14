"""Multi-scale trajectory autoencoder (MTAE): conv encoder, residual multi-scale quantiser with one shared codebook,
conv decoder and the zero-initialised condition adapter D'."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mage_core.errors import MageError


def make_scale_schedule(T: int, K: int) -> tuple[int, ...]:
    """K strictly increasing scales from 1 to T, roughly geometric (K = 1 gives (T,)).

    Example: T=32, K=8 -> (1, 2, 3, 4, 7, 12, 20, 32); T=16, K=8 -> (1, 2, 3, 4, 5, 7, 11, 16).
    """
    if T < 1 or K < 1:
        raise MageError(f"scale schedule needs T >= 1 and K >= 1, got T={T}, K={K}")
    if K > T:
        raise MageError(f"cannot fit {K} distinct scales into T={T} latent positions; use fewer scales")
    if K == 1:
        return (T,)
    out: list[int] = []
    for k in range(K):
        p = int(round(T ** (k / (K - 1))))
        lo = out[-1] + 1 if out else 1
        hi = T - (K - 1 - k)  # leave room for the remaining scales
        out.append(min(max(p, lo), hi))
    return tuple(out)


def check_schedule(scales: tuple, T: int) -> tuple[int, ...]:
    scales = tuple(int(p) for p in scales)
    if not scales or scales[-1] != T or any(b <= a for a, b in zip(scales, scales[1:])) or scales[0] < 1:
        raise MageError(f"scale schedule {scales} must be strictly increasing, start >= 1 and end at T={T}")
    return scales


def interp_matrix(p: int, T: int) -> torch.Tensor:
    """(p, T) matrix M with z_BCp @ M == F.interpolate(z_BCp, size=T, mode="linear", align_corners=False)."""
    if p == T:
        return torch.eye(T)
    return F.interpolate(torch.eye(p)[None], size=T, mode="linear", align_corners=False)[0]


def shifted_interp_matrix(p: int, T: int, kernel: int) -> torch.Tensor:
    """(p, kernel * T): the interpolation matrix's columns shifted by each tap of a zero-padded 'same' conv, so that
    (z_BCp @ M).view(B, C * kernel, T) holds, for channel c and tap j, the upsampled input at t + j - kernel // 2."""
    M_pT = interp_matrix(p, T)
    out = torch.zeros(p, kernel, T)
    for j in range(kernel):
        s = j - kernel // 2
        lo, hi = max(0, -s), min(T, T - s)  # output steps t whose input t + s lies inside [0, T)
        out[:, j, lo:hi] = M_pT[:, lo + s:hi + s]
    return out.reshape(p, kernel * T)


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


class ResBlock1d(nn.Module):
    """Pre-norm residual block: GroupNorm -> SiLU -> Conv1d, twice."""

    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv1d(ch, ch, 3, padding=1),
                                 nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv1d(ch, ch, 3, padding=1))

    def forward(self, h_BCT: torch.Tensor) -> torch.Tensor:
        return h_BCT + self.net(h_BCT)


class Encoder(nn.Module):
    """(B, H, Din) -> f_BCT with T = H / 2**n_down."""

    def __init__(self, d_in: int, channels: int, latent_dim: int, n_down: int, n_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(d_in, channels, 3, padding=1)]
        for _ in range(n_down):
            layers += [ResBlock1d(channels) for _ in range(n_blocks)]
            layers.append(nn.Conv1d(channels, channels, 4, stride=2, padding=1))
        layers += [ResBlock1d(channels) for _ in range(n_blocks)]
        layers += [nn.GroupNorm(_groups(channels), channels), nn.SiLU(), nn.Conv1d(channels, latent_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x_BHD: torch.Tensor) -> torch.Tensor:
        return self.net(x_BHD.transpose(1, 2))


class Decoder(nn.Module):
    """f_BCT -> (B, H, Dout), mirroring the encoder with nearest upsampling + conv."""

    def __init__(self, d_out: int, channels: int, latent_dim: int, n_up: int, n_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(latent_dim, channels, 3, padding=1)]
        layers += [ResBlock1d(channels) for _ in range(n_blocks)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(channels, channels, 3, padding=1)]
            layers += [ResBlock1d(channels) for _ in range(n_blocks)]
        layers += [nn.GroupNorm(_groups(channels), channels), nn.SiLU(), nn.Conv1d(channels, d_out, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, f_BCT: torch.Tensor) -> torch.Tensor:
        return self.net(f_BCT).transpose(1, 2)


class ConditionAdapter(nn.Module):
    """D': a small conv net that sees the decoded segment, the latent and the step-0 mismatch with the condition
    (R0, s0) and adds a correction to the whole segment. Its output layer starts at zero, so a fresh adapter
    leaves the decoder's output unchanged."""

    def __init__(self, d_x: int, d_cond: int, latent_dim: int, hidden: int):
        super().__init__()
        self.d_cond = d_cond
        self.net = nn.Sequential(nn.Conv1d(d_x + latent_dim + d_cond, hidden, 3, padding=1), nn.SiLU(),
                                 nn.Conv1d(hidden, hidden, 3, padding=1), nn.SiLU(),
                                 nn.Conv1d(hidden, d_x, 3, padding=1))
        self.out = self.net[-1]

    def forward(self, x_BHD: torch.Tensor, f_BCT: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        H = x_BHD.shape[1]
        f_BCH = F.interpolate(f_BCT, size=H, mode="linear", align_corners=False) if f_BCT.shape[-1] != H else f_BCT
        err_BD = cond_BD - x_BHD[:, 0, : self.d_cond]  # how far the decoded first step is from the condition
        inp = torch.cat([x_BHD.transpose(1, 2), f_BCH, err_BD[:, :, None].expand(-1, -1, H)], dim=1)
        return x_BHD + self.net(inp).transpose(1, 2)


@dataclass
class QuantOut:
    """What the quantiser returns for one batch of features."""

    fhat_BCT: torch.Tensor  # quantised features with straight-through gradient to the encoder
    idx_list: list  # K LongTensors (B, p_k): the token maps
    fhat_cum_list: list  # K tensors (B, C, T): cumulative f_hat after each scale (detached)
    vq_loss: torch.Tensor  # codebook + commitment loss averaged over scales
    usage_K: torch.Tensor  # fraction of the codebook used at each scale in this batch


class MultiScaleQuantiser(nn.Module):
    """Residual multi-scale VQ over one shared codebook: scale k pools the residual to p_k positions, picks the
    nearest codes, upsamples them to T, refines them with a per-scale conv, and adds them to the running f_hat."""

    def __init__(self, latent_dim: int, codebook_size: int, scales: tuple, beta: float, refine_kernel: int = 3,
                 usage_decay: float = 0.99):
        super().__init__()
        self.scales = tuple(scales)
        self.T = self.scales[-1]
        self.C, self.V = latent_dim, codebook_size
        self.beta = beta
        self.usage_decay = usage_decay
        self.codebook = nn.Embedding(codebook_size, latent_dim)
        self.refine = nn.ModuleList(nn.Conv1d(latent_dim, latent_dim, refine_kernel, padding=refine_kernel // 2)
                                    for _ in self.scales)
        self.register_buffer("usage_KV", torch.full((len(self.scales), codebook_size), 1.0 / codebook_size))
        for k, p in enumerate(self.scales):  # sampling: upsampling p_k -> T and the refinement's taps as one matrix
            self.register_buffer(f"taps_PJ{k}", shifted_interp_matrix(p, self.T, refine_kernel), persistent=False)
        centre_CCJ = torch.zeros(latent_dim, latent_dim, refine_kernel)
        centre_CCJ[:, :, refine_kernel // 2] = torch.eye(latent_dim)
        self.register_buffer("residual_CCJ", centre_CCJ, persistent=False)  # the refinement's residual as conv taps
        self._restart_pool_NC: torch.Tensor | None = None  # residual vectors of the last training batch

    # ---- pieces shared by encoding, sampling and the Gumbel relaxation ------------------------------------------
    def nearest(self, r_BCp: torch.Tensor) -> torch.Tensor:
        """Indices (B, p) of the nearest codes to each position of r_BCp (distances in float32)."""
        B, C, p = r_BCp.shape
        r_NC = r_BCp.transpose(1, 2).reshape(-1, C).float()
        cb_VC = self.codebook.weight.float()
        d_NV = r_NC.pow(2).sum(1, keepdim=True) - 2 * r_NC @ cb_VC.t() + cb_VC.pow(2).sum(1)[None]
        return d_NV.argmin(1).view(B, p)

    def upsample_refine(self, k: int, z_BCp: torch.Tensor) -> torch.Tensor:
        """Scale-k code map (B, C, p_k) -> its contribution z_k (B, C, T): linear upsampling + residual conv."""
        z_BCT = F.interpolate(z_BCp, size=self.T, mode="linear", align_corners=False) if z_BCp.shape[-1] != self.T \
            else z_BCp
        return z_BCT + self.refine[k](z_BCT)

    def embed_idx(self, k: int, idx_Bp: torch.Tensor) -> torch.Tensor:
        """Token map of scale k -> its contribution z_k (B, C, T)."""
        return self.upsample_refine(k, self.codebook(idx_Bp).transpose(1, 2))

    def sampling_weights(self) -> list:
        """Per scale, the refinement conv as one (C, kernel * C) matrix with its residual folded into the centre tap,
        and its bias (C, 1): what embed_idx_fast needs (rebuilt per sampling call, so it follows training)."""
        res_CCJ = self.residual_CCJ.to(self.codebook.weight.dtype)
        return [((conv.weight + res_CCJ).reshape(self.C, -1), conv.bias[:, None]) for conv in self.refine]

    def embed_idx_fast(self, k: int, idx_Bp: torch.Tensor, weights: list) -> torch.Tensor:
        """embed_idx by two matmuls (weights: sampling_weights()): the codes' upsampled and shifted copies, one per
        conv tap, then the refinement with its residual. Equal to embed_idx up to float rounding; sampling only."""
        B = idx_Bp.shape[0]
        z_BCp = F.embedding(idx_Bp, self.codebook.weight).transpose(1, 2)
        taps_BCJT = torch.matmul(z_BCp, getattr(self, f"taps_PJ{k}")).view(B, -1, self.T)  # (B, C * kernel, T)
        w_CX, b_C1 = weights[k]
        return torch.matmul(w_CX, taps_BCJT) + b_C1

    def embed_onehot(self, k: int, onehot_BpV: torch.Tensor) -> torch.Tensor:
        """Soft / straight-through one-hot tokens of scale k -> contribution z_k (B, C, T) (differentiable)."""
        z_BpC = onehot_BpV.to(self.codebook.weight.dtype) @ self.codebook.weight
        return self.upsample_refine(k, z_BpC.transpose(1, 2))

    def pool(self, f_BCT: torch.Tensor, p: int) -> torch.Tensor:
        return f_BCT if p == f_BCT.shape[-1] else F.adaptive_avg_pool1d(f_BCT, p)

    def fhat_from_idx(self, idx_list: list) -> list:
        """Cumulative f_hat after each scale for given token maps."""
        out, fhat = [], 0
        for k, idx in enumerate(idx_list):
            fhat = fhat + self.embed_idx(k, idx)
            out.append(fhat)
        return out

    # ---- encoding --------------------------------------------------------------------------------------------------
    def forward(self, f_BCT: torch.Tensor, update_stats: bool = True) -> QuantOut:
        B, C, T = f_BCT.shape
        if T != self.T:
            raise MageError(f"quantiser expects {self.T} latent positions, got {T}")
        f_nograd = f_BCT.detach()
        residual = f_nograd.clone()
        fhat = torch.zeros_like(f_BCT)
        vq_loss = f_BCT.new_zeros(())
        idx_list, cum_list, usage, pool_vecs = [], [], [], []
        for k, p in enumerate(self.scales):
            r_BCp = self.pool(residual, p)
            idx_Bp = self.nearest(r_BCp)
            z_BCT = self.embed_idx(k, idx_Bp)
            fhat = fhat + z_BCT
            residual = residual - z_BCT.detach()
            # codebook/refinement pulled to the features; encoder committed to the running f_hat
            vq_loss = vq_loss + F.mse_loss(fhat, f_nograd) + self.beta * F.mse_loss(fhat.detach(), f_BCT)
            idx_list.append(idx_Bp)
            cum_list.append(fhat.detach())
            hist_V = torch.bincount(idx_Bp.reshape(-1), minlength=self.V).float()
            usage.append((hist_V > 0).float().mean())
            if self.training and update_stats:
                self.usage_KV[k].mul_(self.usage_decay).add_(hist_V / hist_V.sum(), alpha=1 - self.usage_decay)
                pool_vecs.append(r_BCp.detach().transpose(1, 2).reshape(-1, C))
        if self.training and update_stats:
            self._restart_pool_NC = torch.cat(pool_vecs).float()
        fhat_st = f_BCT + (fhat - f_BCT).detach()  # straight-through: values of f_hat, gradient of f
        return QuantOut(fhat_st, idx_list, cum_list, vq_loss / len(self.scales), torch.stack(usage))

    @torch.no_grad()
    def restart_dead_codes(self, threshold: float, generator: torch.Generator | None = None) -> int:
        """Move codes whose usage share (max over scales) is below threshold / V onto residual vectors of the
        last training batch. Returns how many codes were restarted."""
        if self._restart_pool_NC is None:
            return 0
        dead_V = self.usage_KV.max(0).values < threshold / self.V
        n = int(dead_V.sum())
        if n == 0:
            return 0
        pool = self._restart_pool_NC
        pick = torch.randint(0, len(pool), (n,), generator=generator, device=pool.device)
        noise = torch.randn(n, self.C, generator=generator, device=pool.device) * 1e-3
        self.codebook.weight.data[dead_V] = (pool[pick] + noise).to(self.codebook.weight.dtype)
        self.usage_KV[:, dead_V] = 1.0 / self.V
        return n


class MTAE(nn.Module):
    """Encoder -> multi-scale quantiser -> decoder (+ condition adapter D' when use_cond_loss)."""

    def __init__(self, d_x: int, d_cond: int, horizon: int, downsample: int, latent_dim: int, codebook_size: int,
                 scales: tuple, channels: int, n_blocks: int, beta: float, refine_kernel: int, adapter_hidden: int,
                 use_adapter: bool):
        super().__init__()
        n_down = int(round(math.log2(downsample)))
        if 2 ** n_down != downsample or horizon % downsample:
            raise MageError(f"downsample {downsample} must be a power of 2 dividing the horizon {horizon}")
        self.d_x, self.d_cond, self.horizon = d_x, d_cond, horizon
        self.encoder = Encoder(d_x, channels, latent_dim, n_down, n_blocks)
        self.quantiser = MultiScaleQuantiser(latent_dim, codebook_size, scales, beta, refine_kernel)
        self.decoder = Decoder(d_x, channels, latent_dim, n_down, n_blocks)
        self.adapter = ConditionAdapter(d_x, d_cond, latent_dim, adapter_hidden) if use_adapter else None

    def decode(self, fhat_BCT: torch.Tensor, cond_BD: torch.Tensor | None = None) -> torch.Tensor:
        x_BHD = self.decoder(fhat_BCT)
        if cond_BD is not None and self.adapter is not None:
            x_BHD = self.adapter(x_BHD, fhat_BCT, cond_BD)
        return x_BHD

    def forward(self, x_BHD: torch.Tensor, cond_BD: torch.Tensor | None = None):
        """Returns (decoded x_BHD, QuantOut)."""
        q = self.quantiser(self.encoder(x_BHD))
        return self.decode(q.fhat_BCT, cond_BD), q
