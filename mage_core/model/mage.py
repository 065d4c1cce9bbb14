"""The MAGE model: MTAE + multi-scale transformer + latent inverse dynamics, with stage losses and fast sampling."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mage_core.config import ModelConfig
from mage_core.errors import MageError
from mage_core.model.mtae import MTAE, check_schedule, make_scale_schedule
from mage_core.model.transformer import MultiScaleTransformer, sample_tokens

STAGE_NAMES = {1: "autoencoder", 2: "transformer", 3: "refinement"}


@dataclass
class SampleOut:
    """Result of MAGE.sample."""

    idx_list: list  # K LongTensors (B, p_k): sampled token maps, coarse to fine
    fhat_cum_list: list  # K tensors (B, C, T): cumulative latent after each scale (the last one is sum_k z_k)

    @property
    def fhat_BCT(self) -> torch.Tensor:
        return self.fhat_cum_list[-1]


class InverseDynamics(nn.Module):
    """a_0 = I(sum_k z_k, c): an MLP on the flattened cumulative latent concatenated with the condition (R0, s0).

    The condition is fed too because the first action depends on the current velocity as much as on the plan.
    With `lookahead` steps (ModelConfig.inv_lookahead) the head reads the latent through the frozen decoder instead:
    the decoded plan's (R, s) rows at those steps, a_0 = g(D(sum_k z_k, c)[lookahead], c) — still a function of the
    generated latent alone, but in the units the data's actions were taken in. With a suite's `frame` as well
    (ModelConfig.inv_frame) those rows and the condition are de-normalised, mapped by the frame and standardised with
    statistics fitted on the data (fit_frame) before the MLP, a_0 = g(frame(D(sum_k z_k, c)[lookahead], c))."""

    def __init__(self, latent_dim: int, T: int, cond_dim: int, act_dim: int, hidden: int,
                 lookahead: tuple = (), x_dim: int = 0, frame=None):  # frame: a suite's HeadFrame (suites/base.py) or None
        super().__init__()
        self.lookahead = tuple(int(t) for t in lookahead)
        self.frame = frame
        self.cond_dim = cond_dim
        if frame is not None:
            d_in = frame.dim(self.lookahead)
            self.register_buffer("x_mean_D", torch.zeros(cond_dim))  # the normaliser's (R, s) mean and std
            self.register_buffer("x_std_D", torch.ones(cond_dim))
            self.register_buffer("f_mean_F", torch.zeros(d_in))  # the frame features' mean and std on the data
            self.register_buffer("f_std_F", torch.ones(d_in))
        else:
            d_in = (x_dim * len(self.lookahead) if self.lookahead else latent_dim * T) + cond_dim
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, act_dim))

    def frame_features(self, rows_BLD: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        """Standardised frame features of normalised plan rows and condition."""
        raw_c_BD = cond_BD * self.x_std_D + self.x_mean_D
        raw_BLD = rows_BLD[..., :self.cond_dim] * self.x_std_D + self.x_mean_D
        return (self.frame.features(raw_c_BD[:, 1:], raw_BLD, self.lookahead) - self.f_mean_F) / self.f_std_F

    @torch.no_grad()
    def fit_frame(self, x_mean_D, x_std_D, x_BHD: torch.Tensor) -> None:
        """Set the de-normalisation and the feature standardisation from the normaliser and a batch of data segments."""
        self.x_mean_D.copy_(torch.as_tensor(x_mean_D))
        self.x_std_D.copy_(torch.as_tensor(x_std_D))
        self.f_mean_F.zero_()
        self.f_std_F.fill_(1.0)
        f_BF = self.frame_features(x_BHD[:, list(self.lookahead)], x_BHD[:, 0])
        self.f_mean_F.copy_(f_BF.mean(0))
        self.f_std_F.copy_(f_BF.std(0).clamp_min(1e-3))

    def forward(self, fhat_BCT: torch.Tensor, cond_BD: torch.Tensor, decode=None) -> torch.Tensor:
        if self.lookahead:
            x_BLD = decode(fhat_BCT, cond_BD)[:, list(self.lookahead)]
            if self.frame is not None:
                return self.net(self.frame_features(x_BLD, cond_BD))
            return self.net(torch.cat([x_BLD.flatten(1), cond_BD], dim=1))
        return self.net(torch.cat([fhat_BCT.flatten(1), cond_BD], dim=1))


class MAGE(nn.Module):
    """Multi-scale autoregressive trajectory generator.

    Planner API: sample(cond_BD) -> SampleOut, decode(fhat_BCT, cond_BD) -> x_BHD, inverse_dynamics(fhat_BCT,
    cond_BD) -> a_BA, act(cond_BD) -> a_BA (sample + inverse dynamics). All tensors are normalised; cond_BD is
    the normalised (R0, s0), shape (B, 1 + obs_dim). Training API: forward(batch, stage) -> dict of losses
    (key "loss" is optimised) and stage_parameters(stage).
    """

    def __init__(self, cfg: ModelConfig, frame=None):
        """frame: the suite's HeadFrame named by cfg.inv_frame (whoever builds the model looks it up:
        mage_core.factory.build_mage), None when cfg.inv_frame is empty."""
        super().__init__()
        if cfg.obs_dim <= 0 or cfg.act_dim <= 0 or cfg.horizon <= 0:
            raise MageError(f"model config needs obs_dim, act_dim and horizon > 0 (got {cfg.obs_dim}, "
                            f"{cfg.act_dim}, {cfg.horizon})")
        if cfg.downsample <= 0:
            raise MageError("model config has no downsampling r (0 means 'the task's'; train_mage resolves it)")
        self.cfg = cfg
        self.horizon = cfg.horizon
        self.T = cfg.horizon // cfg.downsample
        self.scales = check_schedule(cfg.scales, self.T) if cfg.scales else make_scale_schedule(self.T, cfg.n_scales)
        self.cond_dim = 1 + cfg.obs_dim
        self.x_dim = self.cond_dim + (cfg.act_dim if cfg.model_actions else 0)
        self.mtae = MTAE(self.x_dim, self.cond_dim, cfg.horizon, cfg.downsample, cfg.latent_dim, cfg.codebook_size,
                         self.scales, cfg.enc_channels, cfg.enc_blocks, cfg.beta_commit, cfg.refine_kernel,
                         cfg.adapter_hidden, cfg.use_cond_loss)
        self.transformer = MultiScaleTransformer(self.cond_dim, cfg.latent_dim, cfg.codebook_size, self.scales,
                                                 cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_ratio, cfg.dropout,
                                                 cfg.cond_dropout)
        look = tuple(getattr(cfg, "inv_lookahead", ()) or ())
        if any(not 0 <= t < cfg.horizon for t in look):
            raise MageError(f"inverse-dynamics lookahead steps {look} must lie in [0, H = {cfg.horizon})")
        if getattr(cfg, "inv_frame", "") and frame is None:
            raise MageError(f"the model config names the inverse-dynamics frame {cfg.inv_frame!r} but no frame was "
                            f"given; build the model with mage_core.factory.build_mage, which looks it up")
        if frame is not None and not getattr(cfg, "inv_frame", ""):
            raise MageError("an inverse-dynamics frame was given but the model config names none (inv_frame)")
        if frame is not None:
            if not look:
                raise MageError(f"the inverse-dynamics frame {cfg.inv_frame!r} reads plan steps: give --inv-lookahead too")
            if frame.obs_dim != cfg.obs_dim:
                raise MageError(f"the inverse-dynamics frame {cfg.inv_frame!r} is written for {frame.obs_dim}-dim "
                                f"observations; this data has {cfg.obs_dim}")
        self.inv = InverseDynamics(cfg.latent_dim, self.T, self.cond_dim, cfg.act_dim, cfg.inv_hidden, look, self.x_dim,
                                   frame)
        w = tuple(getattr(cfg, "rec_weights", ()) or ())
        if w and (len(w) != self.x_dim or min(w) < 0 or sum(w) <= 0):
            raise MageError(f"reconstruction weights need {self.x_dim} values >= 0, not all 0 (got {len(w)})")
        w_D = torch.tensor(w, dtype=torch.float32) if w else torch.ones(self.x_dim)
        self.register_buffer("rec_w_D", w_D * (self.x_dim / w_D.sum()), persistent=False)  # mean 1
        self.gumbel_tau = 1.0  # Gumbel-Softmax temperature of stage 3 (set by the training loop)
        self.train_weights = {"w_cond": 1.0, "w_inv": 1.0, "w_ce": 1.0}  # loss weights (set by the training loop)
        self.ce_batch = 0  # stage 2: the transformer trains on the first ce_batch segments, L_inv on all (0 = all)
        self.coarse_ce_scales = 0  # stage 2: the first n scales' CE also on the other segments (TrainConfig)
        self.inv_loss = "mse"  # L_inv's distance, "mse" or "l1" (TrainConfig.inv_loss; set by the training loop)
        self.init_weights()

    def init_weights(self):
        """Transformer/MLP linears ~ N(0, 0.02); convs keep PyTorch's default; every module that must start as an
        identity or no-op (condition adapter output, per-scale refinements, adaLN modulations) starts at zero."""
        for m in list(self.transformer.modules()) + list(self.inv.modules()):
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.transformer.pos_emb, std=0.02)
        nn.init.trunc_normal_(self.transformer.lvl_emb.weight, std=0.02)
        nn.init.trunc_normal_(self.transformer.null_cond, std=0.02)
        zero = [blk.ada for blk in self.transformer.blocks] + [self.transformer.head_ada]
        zero += list(self.mtae.quantiser.refine)
        if self.mtae.adapter is not None:
            zero.append(self.mtae.adapter.out)
        for m in zero:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.uniform_(self.mtae.quantiser.codebook.weight, -1.0 / self.cfg.codebook_size,
                         1.0 / self.cfg.codebook_size)

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def segment_input(self, batch) -> torch.Tensor:
        """The modelled segment: (R, s) or, for the (R, s, a) ablation, (R, s, a)."""
        if self.cfg.model_actions:
            return torch.cat([batch.x_BHD, batch.a_BHA], dim=-1)
        return batch.x_BHD

    def stage_parameters(self, stage: int) -> list:
        """Parameters optimised in a stage: 1 = autoencoder (+ adapter), 2 = transformer + inverse dynamics,
        3 = transformer + inverse dynamics + condition adapter (refined end to end)."""
        if stage == 1:
            mods = [self.mtae]
        elif stage == 2:
            mods = [self.transformer, self.inv]
        elif stage == 3:
            mods = [self.transformer, self.inv] + ([self.mtae.adapter] if self.mtae.adapter is not None else [])
        else:
            raise MageError(f"unknown training stage {stage}")
        return [p for m in mods for p in m.parameters()]

    def set_stage(self, stage: int) -> list:
        """Freeze everything except the stage's parameters; returns them."""
        params = self.stage_parameters(stage)
        keep = {id(p) for p in params}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        return params

    def after_step(self, stage: int, step: int) -> bool:
        """Hook run after each optimizer step: dead-code restarts in stage 1. True when parameters changed."""
        every = self.cfg.dead_code_every
        if stage == 1 and every and step % every == 0:
            return self.mtae.quantiser.restart_dead_codes(self.cfg.dead_code_threshold) > 0
        return False

    # ---- training losses -------------------------------------------------------------------------------------------
    def forward(self, batch, stage: int) -> dict:
        """Losses of one stage for a SegmentBatch: {"loss": total, <named terms>..., "token_acc_K" / "usage_K"}."""
        x_BHD = self.segment_input(batch)
        cond_BD = batch.x_BHD[:, 0]
        if stage == 1:
            return self._stage1(x_BHD, cond_BD)
        with torch.no_grad():  # frozen tokenizer
            q = self.mtae.quantiser(self.mtae.encoder(x_BHD), update_stats=False)
        # stage 2 may get more segments than the transformer needs: L_inv uses all of them (its latents are cheap)
        nb = self.ce_batch if stage == 2 and 0 < self.ce_batch < len(x_BHD) else len(x_BHD)
        fcum_list = [f[:nb] for f in q.fhat_cum_list]
        target_BL = torch.cat(q.idx_list, dim=1)[:nb]
        tr = self.transformer
        logits_BLV = tr(cond_BD[:nb], fcum_list, tr.random_drop(nb, x_BHD.device))
        ce = F.cross_entropy(logits_BLV.float().reshape(-1, tr.V), target_BL.reshape(-1))
        acc_K = self.token_accuracy(logits_BLV.detach(), target_BL)
        n_coarse = min(self.coarse_ce_scales, len(self.scales))
        if stage == 2 and n_coarse > 0 and nb < len(x_BHD):
            # the coarse scales' tokens of the other segments too: every predicted token weighs the same in the mean
            Lc, nr = tr.begins[n_coarse], len(x_BHD) - nb
            rest_BLV = tr(cond_BD[nb:], [f[nb:] for f in q.fhat_cum_list], tr.random_drop(nr, x_BHD.device), n_coarse)
            ce_rest = F.cross_entropy(rest_BLV.float().reshape(-1, tr.V),
                                      torch.cat(q.idx_list, dim=1)[nb:, :Lc].reshape(-1), reduction="sum")
            ce = (ce * target_BL.numel() + ce_rest) / (target_BL.numel() + nr * Lc)
        if stage == 2:
            inv = self._inv_loss(self._inv(q.fhat_cum_list[-1], cond_BD).float(), batch.a_BA)
            return {"loss": ce + inv, "ce": ce.detach(), "inv": inv.detach(), "token_acc_K": acc_K}
        if stage == 3:
            return self._stage3(logits_BLV, ce, acc_K, cond_BD, batch.a_BA)
        raise MageError(f"unknown training stage {stage}")

    def _stage1(self, x_BHD, cond_BD) -> dict:
        """Reconstruction of the plain decoder (it must work on its own) + VQ terms; with the adapter on, also the
        adapted segment's reconstruction (so D' does not disturb later steps) and L_cond on its first step."""
        q = self.mtae.quantiser(self.mtae.encoder(x_BHD))
        xdec_BHD = self.mtae.decoder(q.fhat_BCT)
        rec = self._rec_loss(xdec_BHD, x_BHD)
        out = {"rec": rec.detach(), "vq": q.vq_loss.detach(), "usage_K": q.usage_K}
        loss = rec + q.vq_loss
        w_prefix = self.cfg.scale_rec_weight
        if w_prefix > 0 and len(self.scales) > 1:
            # the coarser prefixes' plans, rebuilt from the tokens with gradient into the codebook, the per-scale
            # refinements and the decoder (the encoder learns from the full reconstruction only)
            prefix = self.mtae.quantiser.fhat_from_idx(q.idx_list[:-1])
            rec_prefix = torch.stack([self._rec_loss(self.mtae.decoder(f_BCT), x_BHD) for f_BCT in prefix]).mean()
            loss = loss + w_prefix * rec_prefix
            out["rec_prefix"] = rec_prefix.detach()
        if self.mtae.adapter is not None:
            xad_BHD = self.mtae.adapter(xdec_BHD, q.fhat_BCT, cond_BD)
            rec_ad = self._rec_loss(xad_BHD, x_BHD)
            cond_loss = F.mse_loss(xad_BHD[:, 0, : self.cond_dim].float(), cond_BD)
            loss = loss + rec_ad + self.train_weights.get("w_cond", 1.0) * cond_loss
            out["rec_adapted"], out["cond"] = rec_ad.detach(), cond_loss.detach()
        out["loss"] = loss
        return out

    def _rec_loss(self, xdec_BHD: torch.Tensor, x_BHD: torch.Tensor) -> torch.Tensor:
        """Column-weighted MSE (ModelConfig.rec_weights; uniform weights give plain MSE)."""
        return ((xdec_BHD.float() - x_BHD) ** 2 * self.rec_w_D).mean()

    def _stage3(self, logits_BLV, ce, acc_K, cond_BD, a_BA) -> dict:
        """Gumbel-Softmax (straight-through) tokens -> latent -> L_inv and L_cond flow into the transformer."""
        w = self.train_weights
        onehot_BLV = F.gumbel_softmax(logits_BLV.float(), tau=self.gumbel_tau, hard=True, dim=-1)
        q = self.mtae.quantiser
        fhat_BCT = 0
        for k in range(len(self.scales)):
            sl = slice(self.transformer.begins[k], self.transformer.begins[k + 1])
            fhat_BCT = fhat_BCT + q.embed_onehot(k, onehot_BLV[:, sl])
        inv = self._inv_loss(self._inv(fhat_BCT, cond_BD).float(), a_BA)
        loss = w.get("w_ce", 1.0) * ce + w.get("w_inv", 1.0) * inv
        out = {"ce": ce.detach(), "inv": inv.detach(), "token_acc_K": acc_K}
        if self.mtae.adapter is not None:
            xdec_BHD = self.mtae.decode(fhat_BCT, cond_BD)
            cond_loss = F.mse_loss(xdec_BHD[:, 0, : self.cond_dim].float(), cond_BD)
            loss = loss + w.get("w_cond", 1.0) * cond_loss
            out["cond"] = cond_loss.detach()
        out["loss"] = loss
        return out

    def _inv_loss(self, pred_BA: torch.Tensor, a_BA: torch.Tensor) -> torch.Tensor:
        """L_inv: mean squared error (the paper's) or, with inv_loss "l1", mean absolute error."""
        if self.inv_loss == "l1":
            return F.l1_loss(pred_BA, a_BA)
        if self.inv_loss != "mse":
            raise MageError(f"unknown inverse-dynamics loss {self.inv_loss!r}; choose mse or l1")
        return F.mse_loss(pred_BA, a_BA)

    def token_accuracy(self, logits_BLV: torch.Tensor, target_BL: torch.Tensor) -> torch.Tensor:
        """(K,) fraction of tokens of each scale predicted exactly (argmax)."""
        hit_BL = (logits_BLV.argmax(-1) == target_BL).float()
        return torch.stack([hit_BL[:, self.transformer.begins[k]:self.transformer.begins[k + 1]].mean()
                            for k in range(len(self.scales))])

    # ---- planner API -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond_BD: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               cfg_scale: float = 1.0, generator: torch.Generator | None = None,
               return_logits: bool = False) -> SampleOut:
        """Sample the K token maps coarse to fine, one transformer forward per scale with a KV cache.

        cfg_scale = 1 is plain conditional sampling; s != 1 uses logits_u + s (logits_c - logits_u) with the learned
        null condition. temperature <= 0 is greedy. return_logits keeps the (guided) logits per scale in
        out.logits_list (for tests/debugging)."""
        tr, q = self.transformer, self.mtae.quantiser
        B = cond_BD.shape[0]
        guided = cfg_scale != 1.0
        c_Bd = tr.embed_condition(cond_BD)
        if guided:
            c_Bd = torch.cat([c_Bd, tr.null_condition(B).to(c_Bd.dtype)])
        state = tr.prepare_sampling(c_Bd)
        embed_w = q.sampling_weights()
        fhat_BCT, idx_list, cum_list, logits_list = None, [], [], []
        for k in range(len(self.scales)):
            prev = None if fhat_BCT is None else (torch.cat([fhat_BCT, fhat_BCT]) if guided else fhat_BCT)
            logits = tr.step(k, c_Bd, prev, state)
            if guided:
                logits = logits[B:] + cfg_scale * (logits[:B] - logits[B:])
            if return_logits:
                logits_list.append(logits)
            idx_Bp = sample_tokens(logits, temperature, top_k, top_p, generator)
            z_BCT = q.embed_idx_fast(k, idx_Bp, embed_w)
            fhat_BCT = z_BCT if fhat_BCT is None else fhat_BCT + z_BCT
            idx_list.append(idx_Bp)
            cum_list.append(fhat_BCT)
        out = SampleOut(idx_list, cum_list)
        if return_logits:
            out.logits_list = logits_list
        return out

    @torch.no_grad()
    def decode(self, fhat_BCT: torch.Tensor, cond_BD: torch.Tensor | None = None) -> torch.Tensor:
        """Latent -> normalised segment x_BHD (B, H, x_dim); the condition adapter applies when cond_BD is given.
        Columns are (R, s) or (R, s, a) for the model_actions ablation."""
        return self.mtae.decode(fhat_BCT, cond_BD)

    @torch.no_grad()
    def inverse_dynamics(self, fhat_BCT: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        """Normalised first action a_BA from the cumulative latent and the condition."""
        return self._inv(fhat_BCT, cond_BD)

    def _inv(self, fhat_BCT: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        return self.inv(fhat_BCT, cond_BD, self.mtae.decode)

    @torch.no_grad()
    def act(self, cond_BD: torch.Tensor, **sample_kw) -> torch.Tensor:
        """Fast acting path: sample the K scales and read the normalised action off the final latent."""
        return self._inv(self.sample(cond_BD, **sample_kw).fhat_BCT, cond_BD)

    def encode(self, x_BHD: torch.Tensor):
        """Ground-truth tokens of normalised segments: QuantOut (idx_list, fhat_cum_list, ...)."""
        return self.mtae.quantiser(self.mtae.encoder(x_BHD), update_stats=False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
