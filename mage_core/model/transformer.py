"""Multi-scale (next-scale prediction) transformer with condition start tokens, adaptive LayerNorm, a block-causal
attention mask and a KV cache for one-forward-per-scale sampling."""
from __future__ import annotations

from dataclasses import dataclass

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
    """Keys and values of the tokens seen so far, one buffer per block preallocated for all L tokens; each call
    writes one scale's keys and values after the previous ones (no re-allocation, no concatenation)."""

    def __init__(self, n_layers: int, L: int):
        self.L = L
        self.kv: list = [None] * n_layers  # per block: (2, B, h, L, dh) keys and values
        self.n: list = [0] * n_layers  # per block: tokens written so far

    def update(self, layer: int, kv_2Bhpd: torch.Tensor) -> tuple:
        """Append the new tokens' keys and values (stacked on dim 0); returns (k_BhLd, v_BhLd) of every token so far."""
        buf = self.kv[layer]
        if buf is None:
            _, B, h, _, dh = kv_2Bhpd.shape
            buf = self.kv[layer] = kv_2Bhpd.new_empty(2, B, h, self.L, dh)
        n0 = self.n[layer]
        n1 = n0 + kv_2Bhpd.shape[3]
        if n1 > self.L:
            raise ValueError(f"KV cache holds {self.L} tokens; cannot append up to {n1}")
        buf[:, :, :, n0:n1] = kv_2Bhpd
        self.n[layer] = n1
        return buf[0, :, :, :n1], buf[1, :, :, :n1]


def modulated_ln(x_BLd: torch.Tensor, shift_B1d: torch.Tensor, scale_B1d: torch.Tensor) -> torch.Tensor:
    """LayerNorm(x) * scale + shift; one fused layer_norm call when the batch holds a single condition."""
    if shift_B1d.shape[0] == 1:
        d = x_BLd.shape[-1]
        return F.layer_norm(x_BLd, (d,), scale_B1d.reshape(d), shift_B1d.reshape(d))
    return torch.addcmul(shift_B1d, F.layer_norm(x_BLd, x_BLd.shape[-1:]), scale_B1d)


class SelfAttention(nn.Module):
    """Multi-head self-attention with an optional additive bias and an optional KV cache."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.h, self.dh = n_heads, d // n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x_BLd: torch.Tensor, bias_LL: torch.Tensor | None = None) -> torch.Tensor:
        B, L, d = x_BLd.shape
        q, k, v = self.qkv(x_BLd).view(B, L, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # each (B, h, L, dh)
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

    def forward(self, x_BLd, c_Bd, bias_LL=None, mod=None):
        sh1, sc1, g1, sh2, sc2, g2 = self.modulation(c_Bd) if mod is None else mod
        x_BLd = torch.addcmul(x_BLd, g1, self.attn(torch.addcmul(sh1, self.ln1(x_BLd), sc1), bias_LL))
        return torch.addcmul(x_BLd, g2, self.mlp(torch.addcmul(sh2, self.ln2(x_BLd), sc2)))

    def step(self, x_Bpd: torch.Tensor, cache: KVCache, layer: int, mod: tuple) -> torch.Tensor:
        """The block on one new scale's tokens against the cached coarser scales: the same function as forward, written
        with functional calls (sampling is a chain of small ops, where module overhead dominates at batch 1).
        Every cached token is on a coarser scale or the same one, so no mask is needed. No dropout (sampling)."""
        sh1, sc1, g1, sh2, sc2, g2 = mod
        B, p, d = x_Bpd.shape
        a = self.attn
        qkv_3Bhpd = F.linear(modulated_ln(x_Bpd, sh1, sc1), a.qkv.weight, a.qkv.bias).view(
            B, p, 3, a.h, a.dh).permute(2, 0, 3, 1, 4)
        k_BhLd, v_BhLd = cache.update(layer, qkv_3Bhpd[1:])
        o_Bhpd = F.scaled_dot_product_attention(qkv_3Bhpd[0], k_BhLd, v_BhLd)
        x_Bpd = torch.addcmul(x_Bpd, g1, F.linear(o_Bhpd.transpose(1, 2).reshape(B, p, d), a.proj.weight, a.proj.bias))
        fc1, fc2 = self.mlp[0], self.mlp[2]
        h_Bph = F.gelu(F.linear(modulated_ln(x_Bpd, sh2, sc2), fc1.weight, fc1.bias), approximate="tanh")
        return torch.addcmul(x_Bpd, g2, F.linear(h_Bph, fc2.weight, fc2.bias))


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
        for k, p in enumerate(self.scales[1:], start=1):  # adaptive average pooling T -> p_k as a (T, p_k) matrix
            self.register_buffer(f"pool_TP{k}", adaptive_pool_matrix(self.scales[-1], p), persistent=False)
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
    def forward(self, cond_BD: torch.Tensor, fhat_cum_list: list, drop_B: torch.Tensor | None = None,
                n_scales: int | None = None) -> torch.Tensor:
        """Teacher-forced logits_BLV. fhat_cum_list holds (at least) the cumulative f_hat after scales 1..K-1.
        n_scales < K: only the first n scales' tokens (L = p_1 + ... + p_n); attention is block-causal, so their
        logits equal the full pass's first L."""
        n = self.K if n_scales is None else int(n_scales)
        c_Bd = self.embed_condition(cond_BD, drop_B)
        x_BLd = torch.cat([self.scale_inputs(k, c_Bd, fhat_cum_list[k - 1] if k else None) for k in range(n)], dim=1)
        L = self.begins[n]
        for blk in self.blocks:
            x_BLd = blk(x_BLd, c_Bd, self.attn_bias_LL[:L, :L])
        return self.logits(x_BLd, c_Bd)

    def random_drop(self, B: int, device) -> torch.Tensor | None:
        """Condition-dropout mask for a training batch (None when dropout is off or in eval mode)."""
        if not self.training or self.cond_dropout <= 0:
            return None
        return torch.rand(B, device=device) < self.cond_dropout

    # ---- sampling: one forward per scale with a KV cache -----------------------------------------------------------
    def prepare_sampling(self, c_Bd: torch.Tensor) -> "SamplingState":
        """What every scale's sampling step reuses: the per-block modulations of c, the position + scale embeddings
        of all L positions with the word-embedding bias folded in, and an empty KV cache."""
        pe_1Ld = self.pos_emb + self.lvl_emb.weight[self.level_L]
        return SamplingState(self.modulations(c_Bd), pe_1Ld, pe_1Ld + self.word_embed.bias, KVCache(len(self.blocks),
                                                                                                    self.L))

    def step(self, k: int, c_Bd: torch.Tensor, fhat_prev_BCT: torch.Tensor | None, state: "SamplingState") -> torch.Tensor:
        """Logits (B, p_k, V) of scale k given the state's cache holding scales < k (state: prepare_sampling(c_Bd))."""
        b0, b1 = self.begins[k], self.begins[k + 1]
        if k == 0:
            x_Bpd = c_Bd[:, None, :] + state.pe_1Ld[:, b0:b1]
        else:  # pooled cumulative latent -> word embedding (the pooling as one matmul)
            pooled_BpC = torch.matmul(fhat_prev_BCT, getattr(self, f"pool_TP{k}")).transpose(1, 2)
            x_Bpd = torch.matmul(pooled_BpC, self.word_embed.weight.t()) + state.pe_bias_1Ld[:, b0:b1]
        mods = state.mods
        for i, blk in enumerate(self.blocks):
            x_Bpd = blk.step(x_Bpd, state.cache, i, mods[i])
        sh, sc = mods[-1]
        return F.linear(modulated_ln(x_Bpd, sh, sc), self.head.weight, self.head.bias)


@dataclass
class SamplingState:
    """Per-call state of MultiScaleTransformer sampling (built by prepare_sampling)."""

    mods: list  # per-block adaLN modulations of the condition, then the head's (shift, scale)
    pe_1Ld: torch.Tensor  # position + scale embedding of every position (scale 1's start tokens add it to c)
    pe_bias_1Ld: torch.Tensor  # the same plus the word-embedding bias (scales 2..K)
    cache: KVCache  # keys and values of the scales sampled so far


def adaptive_pool_matrix(T: int, p: int) -> torch.Tensor:
    """(T, p) matrix M with f_BCT @ M == adaptive_avg_pool1d(f_BCT, p)."""
    M = torch.zeros(T, p)
    for i in range(p):
        lo, hi = (i * T) // p, -((-(i + 1) * T) // p)  # floor(i T / p), ceil((i + 1) T / p): PyTorch's bins
        M[lo:hi, i] = 1.0 / (hi - lo)
    return M


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
    if logits_BpV.dtype != torch.float32:
        logits_BpV = logits_BpV.float()
    if temperature != 1.0:
        logits_BpV = logits_BpV / temperature
    if top_k > 0 or top_p < 1.0:
        logits_BpV = filter_logits(logits_BpV, top_k, top_p)
    B, p, V = logits_BpV.shape
    cdf_NV = logits_BpV.reshape(-1, V).softmax(-1).cumsum(-1)
    u_N1 = torch.rand(B * p, 1, generator=generator, device=cdf_NV.device) * cdf_NV[:, -1:]
    # inverse-CDF sampling (cheaper than multinomial): the first index whose cumulative probability reaches u
    return torch.searchsorted(cdf_NV, u_N1).clamp_(max=V - 1).view(B, p)
