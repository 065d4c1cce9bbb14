"""Multi-scale (next-scale prediction) transformer with condition start tokens, adaptive LayerNorm, a block-causal
attention mask and a KV cache for one-forward-per-scale sampling."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def block_causal_bias(scales: tuple) -> torch.Tensor:
    """(L, L) additive attention bias: 0 where key j is on the same or a coarser scale than query i, else -inf."""
    level_L = level_index(scales)
    allowed_LL = level_L[None, :] <= level_L[:, None]
    return torch.zeros(allowed_LL.shape).masked_fill(~allowed_LL, float("-inf"))


def level_index(scales: tuple) -> torch.Tensor:
    """(L,) scale index of every token position, L = sum(scales)."""
    return torch.cat([torch.full((p,), k, dtype=torch.long) for k, p in enumerate(scales)])


class KVCache:
    """Keys and values of the tokens seen so far, one (k, v) pair per block; grows by one scale per call."""

    def __init__(self, n_layers: int):
        self.kv: list = [None] * n_layers

    def update(self, layer: int, k_BhLd: torch.Tensor, v_BhLd: torch.Tensor):
        prev = self.kv[layer]
        if prev is not None:
            k_BhLd = torch.cat([prev[0], k_BhLd], dim=2)
            v_BhLd = torch.cat([prev[1], v_BhLd], dim=2)
        self.kv[layer] = (k_BhLd, v_BhLd)
        return k_BhLd, v_BhLd


class SelfAttention(nn.Module):
    """Multi-head self-attention with an optional additive bias and an optional KV cache."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.h, self.dh = n_heads, d // n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x_BLd: torch.Tensor, bias_LL: torch.Tensor | None = None, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        B, L, d = x_BLd.shape
        q, k, v = self.qkv(x_BLd).view(B, L, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # each (B, h, L, dh)
        if cache is not None:  # every cached token is on a coarser scale or the same one: no mask needed
            k, v = cache.update(layer, k, v)
        if bias_LL is not None:
            bias_LL = bias_LL.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias_LL,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(B, L, d))


class AdaLNBlock(nn.Module):
    """Transformer block whose LayerNorms are shifted/scaled and whose branches are gated by the condition."""

    def __init__(self, d: int, n_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, elementwise_affine=False)
        self.ln2 = nn.LayerNorm(d, elementwise_affine=False)
        self.attn = SelfAttention(d, n_heads, dropout)
        hidden = int(d * mlp_ratio)
        layers = [nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d)]
        self.mlp = nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout > 0 else []))
        self.ada = nn.Linear(d, 6 * d)  # condition -> (shift, scale, gate) x (attention, MLP); zero-initialised

    def modulation(self, c_Bd: torch.Tensor) -> tuple:
        """(shift1, 1+scale1, 1+gate1, shift2, 1+scale2, 1+gate2), each (B, 1, d), for condition c (computed once
        per sample and reused for every scale)."""
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c_Bd)).unsqueeze(1).chunk(6, dim=-1)
        return sh1, 1 + sc1, 1 + g1, sh2, 1 + sc2, 1 + g2

    def forward(self, x_BLd, c_Bd, bias_LL=None, cache=None, layer=0, mod=None):
        sh1, sc1, g1, sh2, sc2, g2 = self.modulation(c_Bd) if mod is None else mod
        x_BLd = torch.addcmul(x_BLd, g1, self.attn(torch.addcmul(sh1, self.ln1(x_BLd), sc1), bias_LL, cache, layer))
        return torch.addcmul(x_BLd, g2, self.mlp(torch.addcmul(sh2, self.ln2(x_BLd), sc2)))


class MultiScaleTransformer(nn.Module):
    """Predicts the token maps m_1..m_K coarse to fine given the condition c = (R0, s0).

    Input positions of scale 1 are p_1 copies of the condition embedding (the start tokens); input positions of
    scale k+1 are the cumulative f_hat after scale k pooled to p_{k+1} positions and projected to d_model. Every
    position predicts the token of its own scale. A learned null condition replaces c with probability
    cond_dropout during training (classifier-free guidance at sampling time).
    """

    def __init__(self, cond_dim: int, latent_dim: int, codebook_size: int, scales: tuple, d_model: int,
                 n_layers: int, n_heads: int, mlp_ratio: float, dropout: float, cond_dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.scales = tuple(scales)
        self.K, self.L, self.V = len(scales), sum(scales), codebook_size
        self.cond_dropout = cond_dropout
        self.cond_embed = nn.Sequential(nn.Linear(cond_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.null_cond = nn.Parameter(torch.zeros(1, d_model))  # learned "no condition" embedding (CFG)
        self.word_embed = nn.Linear(latent_dim, d_model)
        self.pos_emb = nn.Parameter(torch.zeros(1, self.L, d_model))
        self.lvl_emb = nn.Embedding(self.K, d_model)
        self.blocks = nn.ModuleList(AdaLNBlock(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers))
        self.head_ln = nn.LayerNorm(d_model, elementwise_affine=False)
        self.head_ada = nn.Linear(d_model, 2 * d_model)  # final shift / scale; zero-initialised
        self.head = nn.Linear(d_model, codebook_size)
        self.register_buffer("level_L", level_index(self.scales), persistent=False)
        self.register_buffer("attn_bias_LL", block_causal_bias(self.scales), persistent=False)
        begins = [0]
        for p in self.scales:
            begins.append(begins[-1] + p)
        self.begins = tuple(begins)  # token slice of scale k is begins[k]:begins[k+1]

    # ---- pieces --------------------------------------------------------------------------------------------------
    def embed_condition(self, cond_BD: torch.Tensor, drop_B: torch.Tensor | None = None) -> torch.Tensor:
        """c_Bd; rows where drop_B is True get the learned null condition."""
        c_Bd = self.cond_embed(cond_BD)
        if drop_B is not None:
            c_Bd = torch.where(drop_B[:, None], self.null_cond.to(c_Bd.dtype).expand_as(c_Bd), c_Bd)
        return c_Bd

    def null_condition(self, B: int) -> torch.Tensor:
        return self.null_cond.expand(B, -1)

    def scale_inputs(self, k: int, c_Bd: torch.Tensor, fhat_prev_BCT: torch.Tensor | None) -> torch.Tensor:
        """Input tokens (B, p_k, d) of scale k (0-based), position and scale embeddings included."""
        p = self.scales[k]
        if k == 0:
            x_Bpd = c_Bd[:, None, :].expand(-1, p, -1)
        else:
            pooled_BCp = fhat_prev_BCT if fhat_prev_BCT.shape[-1] == p else F.adaptive_avg_pool1d(fhat_prev_BCT, p)
            x_Bpd = self.word_embed(pooled_BCp.transpose(1, 2))
        return x_Bpd + (self.pos_emb[:, self.begins[k]:self.begins[k + 1]] + self.lvl_emb.weight[k])

    def modulations(self, c_Bd: torch.Tensor) -> list:
        """Per-block adaLN modulations followed by the head's (shift, scale): all depend on c only."""
        return [blk.modulation(c_Bd) for blk in self.blocks] + [self.head_modulation(c_Bd)]

    def head_modulation(self, c_Bd: torch.Tensor) -> tuple:
        sh, sc = self.head_ada(F.silu(c_Bd)).unsqueeze(1).chunk(2, dim=-1)
        return sh, 1 + sc

    def logits(self, x_BLd: torch.Tensor, c_Bd: torch.Tensor, mod=None) -> torch.Tensor:
        sh, sc = self.head_modulation(c_Bd) if mod is None else mod
        return self.head(torch.addcmul(sh, self.head_ln(x_BLd), sc))

    # ---- training: all scales in one teacher-forced pass ------------------------------------------------------------
    def forward(self, cond_BD: torch.Tensor, fhat_cum_list: list, drop_B: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits_BLV. fhat_cum_list holds (at least) the cumulative f_hat after scales 1..K-1."""
        c_Bd = self.embed_condition(cond_BD, drop_B)
        x_BLd = torch.cat([self.scale_inputs(k, c_Bd, fhat_cum_list[k - 1] if k else None) for k in range(self.K)],
                          dim=1)
        for blk in self.blocks:
            x_BLd = blk(x_BLd, c_Bd, self.attn_bias_LL)
        return self.logits(x_BLd, c_Bd)

    def random_drop(self, B: int, device) -> torch.Tensor | None:
        """Condition-dropout mask for a training batch (None when dropout is off or in eval mode)."""
        if not self.training or self.cond_dropout <= 0:
            return None
        return torch.rand(B, device=device) < self.cond_dropout

    # ---- sampling: one forward per scale with a KV cache -----------------------------------------------------------
    def step(self, k: int, c_Bd: torch.Tensor, fhat_prev_BCT: torch.Tensor | None, cache: KVCache,
             mods: list | None = None) -> torch.Tensor:
        """Logits (B, p_k, V) of scale k given the cache holding scales < k (mods: from modulations(c_Bd))."""
        mods = self.modulations(c_Bd) if mods is None else mods
        x_Bpd = self.scale_inputs(k, c_Bd, fhat_prev_BCT)
        for i, blk in enumerate(self.blocks):
            x_Bpd = blk(x_Bpd, c_Bd, None, cache, i, mods[i])
        return self.logits(x_Bpd, c_Bd, mods[-1])


def filter_logits(logits_BpV: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k / nucleus top-p set to -inf (0 / 1.0 = off)."""
    V = logits_BpV.shape[-1]
    if 0 < top_k < V:
        kth = torch.topk(logits_BpV, top_k, dim=-1).values[..., -1:]
        logits_BpV = logits_BpV.masked_fill(logits_BpV < kth, float("-inf"))
    if top_p < 1.0:
        sorted_l, order = torch.sort(logits_BpV, dim=-1, descending=True)
        cum = sorted_l.softmax(-1).cumsum(-1)
        remove = cum - sorted_l.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        remove_sorted = torch.zeros_like(remove).scatter(-1, order, remove)
        logits_BpV = logits_BpV.masked_fill(remove_sorted, float("-inf"))
    return logits_BpV


def sample_tokens(logits_BpV: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Token indices (B, p) from logits; temperature <= 0 means greedy."""
    if temperature <= 0:
        return logits_BpV.argmax(-1)
    logits_BpV = filter_logits(logits_BpV.float() / temperature, top_k, top_p)
    B, p, V = logits_BpV.shape
    cdf_NV = logits_BpV.softmax(-1).reshape(-1, V).cumsum(-1)
    u_N1 = torch.rand(B * p, 1, generator=generator, device=cdf_NV.device) * cdf_NV[:, -1:]
    return (cdf_NV < u_N1).sum(-1).clamp_(max=V - 1).view(B, p)  # inverse-CDF sampling (cheaper than multinomial)
