"""Multi-scale transformer: block-causal mask, KV-cache sampling == full masked forward, sampling options, CFG."""
from __future__ import annotations

import pytest
import torch

from _helpers_model import micro_config
from mage_core.model.mage import MAGE
import torch.nn.functional as F

from mage_core.model.mtae import MultiScaleQuantiser
from mage_core.model.transformer import KVCache, adaptive_pool_matrix, block_causal_bias, filter_logits, sample_tokens

torch.set_num_threads(1)


def _scrambled_model(**overrides) -> MAGE:
    """A micro model with every weight randomised (zero-initialised modulations would hide bugs)."""
    torch.manual_seed(1)
    model = MAGE(micro_config(**overrides).model).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_attention_mask_is_block_causal():
    bias = block_causal_bias((1, 2, 3))
    allowed = bias == 0
    expected = torch.tensor([[1, 0, 0, 0, 0, 0],
                             [1, 1, 1, 0, 0, 0],
                             [1, 1, 1, 0, 0, 0],
                             [1, 1, 1, 1, 1, 1],
                             [1, 1, 1, 1, 1, 1],
                             [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(allowed, expected)
    assert not torch.equal(allowed, torch.tril(torch.ones(6, 6, dtype=torch.bool)))  # not plain causal
    assert torch.isinf(bias[~allowed]).all()


def test_model_mask_buffer_matches_schedule():
    model = MAGE(micro_config().model)
    tr = model.transformer
    assert tr.attn_bias_LL.shape == (tr.L, tr.L)
    lvl = tr.level_L
    for i in (0, 5, tr.L - 1):
        assert torch.equal(tr.attn_bias_LL[i] == 0, lvl <= lvl[i])


@pytest.mark.parametrize("cfg_scale,batch", [(1.0, 3), (2.5, 3), (1.0, 1), (2.5, 1)])
def test_kv_cache_sampling_matches_full_masked_forward(cfg_scale, batch):
    """The sampling path (functional blocks, fused LayerNorm at batch 1, pooling / upsampling as matmuls, the
    refinement folded into one matrix) computes exactly what the teacher-forced training forward computes."""
    model = _scrambled_model()
    cond = torch.randn(batch, model.cond_dim)
    g = torch.Generator().manual_seed(0)
    out = model.sample(cond, temperature=1.0, cfg_scale=cfg_scale, generator=g, return_logits=True)
    tr = model.transformer
    with torch.no_grad():
        full_c = tr(cond, out.fhat_cum_list)
        full_u = tr(cond, out.fhat_cum_list, drop_B=torch.ones(batch, dtype=torch.bool))
    full = full_u + cfg_scale * (full_c - full_u) if cfg_scale != 1.0 else full_c
    for k in range(len(model.scales)):
        sl = slice(tr.begins[k], tr.begins[k + 1])
        assert torch.allclose(out.logits_list[k], full[:, sl], atol=1e-4), f"scale {k} logits differ"
    # the cumulative latents are consistent with the sampled tokens
    re = model.mtae.quantiser.fhat_from_idx(out.idx_list)
    for a, b in zip(re, out.fhat_cum_list):
        assert torch.allclose(a, b, atol=1e-5)


def test_sample_api_shapes_and_determinism():
    model = _scrambled_model()
    cond = torch.randn(2, model.cond_dim)
    out = model.sample(cond, generator=torch.Generator().manual_seed(3))
    assert [tuple(i.shape) for i in out.idx_list] == [(2, p) for p in model.scales]
    assert all(f.shape == (2, model.cfg.latent_dim, model.T) for f in out.fhat_cum_list)
    again = model.sample(cond, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(out.idx_list, again.idx_list))
    greedy = model.sample(cond, temperature=0)
    top1 = model.sample(cond, top_k=1, generator=torch.Generator().manual_seed(9))
    assert all(torch.equal(a, b) for a, b in zip(greedy.idx_list, top1.idx_list))
    x = model.decode(out.fhat_BCT, cond)
    assert x.shape == (2, model.horizon, model.x_dim)
    a = model.inverse_dynamics(out.fhat_BCT, cond)
    assert a.shape == (2, 2) and torch.isfinite(a).all()
    assert model.act(cond, temperature=0).shape == (2, 2)


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.15, 0.05]]]))
    k2 = filter_logits(logits, top_k=2)
    assert torch.isinf(k2[0, 0, 2:]).all() and torch.isfinite(k2[0, 0, :2]).all()
    p = filter_logits(logits, top_p=0.7)  # 0.5 + 0.3 reaches 0.7: keep two
    assert torch.isfinite(p[0, 0, :2]).all() and torch.isinf(p[0, 0, 2:]).all()
    g = torch.Generator().manual_seed(0)
    draws = sample_tokens(logits.expand(1, 2000, 4), generator=g)
    freq = torch.bincount(draws.flatten(), minlength=4).float() / draws.numel()
    assert torch.allclose(freq, logits.exp()[0, 0], atol=0.04)


def test_condition_dropout_uses_learned_null_condition():
    model = _scrambled_model()
    tr = model.transformer
    cond = torch.randn(4, model.cond_dim)
    c = tr.embed_condition(cond, torch.tensor([True, False, True, False]))
    assert torch.equal(c[0], tr.null_cond[0]) and torch.equal(c[2], tr.null_cond[0])
    assert not torch.equal(c[1], tr.null_cond[0])
    tr.train()
    tr.cond_dropout = 0.5
    torch.manual_seed(0)
    drop = tr.random_drop(1000, "cpu")
    assert 0.4 < drop.float().mean() < 0.6
    tr.eval()
    assert tr.random_drop(10, "cpu") is None


@pytest.mark.parametrize("T,p", [(16, 1), (16, 3), (16, 7), (16, 11), (16, 16), (32, 20), (5, 3)])
def test_pool_matrix_equals_adaptive_average_pooling(T, p):
    f = torch.randn(2, 4, T)
    assert torch.allclose(f @ adaptive_pool_matrix(T, p), F.adaptive_avg_pool1d(f, p), atol=1e-6)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_fast_code_embedding_equals_upsample_and_refine(kernel):
    torch.manual_seed(0)
    q = MultiScaleQuantiser(8, 16, (1, 2, 5, 12), beta=0.25, refine_kernel=kernel)
    with torch.no_grad():
        for prm in q.parameters():
            prm.normal_(0, 0.5)
    w = q.sampling_weights()
    for k, p in enumerate(q.scales):
        idx = torch.randint(0, 16, (3, p))
        assert torch.allclose(q.embed_idx_fast(k, idx, w), q.embed_idx(k, idx), atol=1e-5), f"scale {k}"


def test_inverse_cdf_sampling_picks_the_first_bin_reaching_u():
    """searchsorted gives the same draws as counting the bins whose cumulative probability is below u."""
    logits = torch.randn(2, 50, 7)
    got = sample_tokens(logits, generator=torch.Generator().manual_seed(4))
    cdf = logits.reshape(-1, 7).softmax(-1).cumsum(-1)
    u = torch.rand(100, 1, generator=torch.Generator().manual_seed(4)) * cdf[:, -1:]
    assert torch.equal(got, (cdf < u).sum(-1).clamp(max=6).view(2, 50))


def test_kv_cache_appends_in_place_and_refuses_overflow():
    cache = KVCache(1, L=3)
    k1, v1 = cache.update(0, torch.ones(2, 1, 1, 2, 4))
    assert k1.shape == (1, 1, 2, 4)
    k2, v2 = cache.update(0, torch.full((2, 1, 1, 1, 4), 2.0))
    assert k2.shape == (1, 1, 3, 4) and torch.equal(k2[0, 0, :, 0], torch.tensor([1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="holds 3 tokens"):
        cache.update(0, torch.ones(2, 1, 1, 1, 4))


def test_a_prefix_of_scales_gives_the_full_passes_first_logits():
    model = _scrambled_model()
    tr = model.transformer
    torch.manual_seed(2)
    cond = torch.randn(3, model.cond_dim)
    fcum = [torch.randn(3, model.cfg.latent_dim, tr.scales[-1]) for _ in tr.scales]
    full_BLV = tr(cond, fcum)
    for n in (1, 3, tr.K):
        part = tr(cond, fcum, n_scales=n)
        assert part.shape[1] == tr.begins[n]
        assert torch.allclose(part, full_BLV[:, : tr.begins[n]], atol=1e-5)
