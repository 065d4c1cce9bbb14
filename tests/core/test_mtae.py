"""MTAE: scale schedule, residual multi-scale quantisation, condition adapter, dead-code restarts, ablations."""
from __future__ import annotations

import pytest
import torch

from _helpers_model import micro_config, umaze_episodes
from mage_core.data.segments import SegmentBatch
from mage_core.errors import MageError
from mage_core.model.mage import MAGE
from mage_core.model.mtae import make_scale_schedule
from mage_core.training.loop import sampler_rng
from mage_core.training.mage_stages import make_segment_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained_ae():
    """A micro MAGE whose autoencoder was trained for a short while on UMaze segments."""
    task, episodes = umaze_episodes()
    cfg = micro_config()
    ds = make_segment_dataset(list(episodes), task, cfg)
    torch.manual_seed(0)
    model = MAGE(cfg.model)
    params = model.set_stage(1)
    opt = torch.optim.Adam(params, lr=3e-3)
    rng = sampler_rng(0)
    model.train()
    for step in range(1, 151):
        out = model(ds.sample(32, rng), 1)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.after_step(1, step)
    return model.eval(), ds


@pytest.mark.parametrize("T,K", [(32, 8), (16, 8), (8, 8), (64, 8), (32, 4), (32, 2), (7, 3)])
def test_scale_schedule_is_increasing_from_one_to_T(T, K):
    s = make_scale_schedule(T, K)
    assert len(s) == K and s[0] == 1 and s[-1] == T
    assert all(b > a for a, b in zip(s, s[1:]))


def test_scale_schedule_edge_cases():
    assert make_scale_schedule(32, 1) == (32,)
    assert make_scale_schedule(32, 8) == (1, 2, 3, 4, 7, 12, 20, 32)
    with pytest.raises(MageError):
        make_scale_schedule(4, 8)


def test_scale_contributions_sum_to_features(trained_ae):
    model, ds = trained_ae
    x_BHD = ds.get(torch.arange(64).numpy() * 7).x_BHD
    with torch.no_grad():
        f_BCT = model.mtae.encoder(x_BHD)
        q = model.mtae.quantiser(f_BCT, update_stats=False)
    assert q.idx_list[0].shape == (64, 1)  # scale 1 is one token for the whole segment
    assert [i.shape[1] for i in q.idx_list] == list(model.scales)
    # per-scale contributions z_k = cum_k - cum_{k-1} add up to the final f_hat, which equals the ST output
    z = [q.fhat_cum_list[0]] + [b - a for a, b in zip(q.fhat_cum_list, q.fhat_cum_list[1:])]
    assert torch.allclose(sum(z), q.fhat_BCT, atol=1e-5)
    assert torch.allclose(q.fhat_cum_list[-1], q.fhat_BCT, atol=1e-5)
    err = [((f_BCT - c).pow(2).mean() / f_BCT.pow(2).mean()).item() for c in q.fhat_cum_list]
    assert err[-1] < 0.2, f"relative quantisation error after all scales too large: {err}"
    assert err[-1] < 0.5 * err[0], f"fine scales do not refine the coarse one: {err}"
    # scale 1 is really coarse: its contribution is constant over time before the refinement conv
    z1 = model.mtae.quantiser.codebook(q.idx_list[0]).transpose(1, 2)
    assert z1.shape[-1] == 1


def test_straight_through_gradient_reaches_encoder():
    cfg = micro_config()
    model = MAGE(cfg.model)
    x = torch.randn(4, cfg.model.horizon, 7)
    f = model.mtae.encoder(x)
    q = model.mtae.quantiser(f)
    q.fhat_BCT.sum().backward()
    g = model.mtae.encoder.net[0].weight.grad
    assert g is not None and g.abs().sum() > 0
    assert torch.allclose(q.fhat_BCT, q.fhat_cum_list[-1], atol=1e-6)


def test_reconstruction_and_condition_adapter(trained_ae):
    model, ds = trained_ae
    b = ds.get(torch.arange(64).numpy() * 5)
    with torch.no_grad():
        q = model.encode(b.x_BHD)
        plain = model.decode(q.fhat_BCT)
        adapted = model.decode(q.fhat_BCT, b.x_BHD[:, 0])
    rec = (plain - b.x_BHD).pow(2).mean().item()
    assert rec < 0.3, f"autoencoder reconstruction too poor: {rec}"
    err_plain = (plain[:, 0] - b.x_BHD[:, 0]).pow(2).mean().item()
    err_adapted = (adapted[:, 0] - b.x_BHD[:, 0]).pow(2).mean().item()
    assert err_adapted < err_plain, (err_adapted, err_plain)


def test_adapter_starts_as_identity():
    model = MAGE(micro_config().model)
    f = torch.randn(3, model.cfg.latent_dim, model.T)
    cond = torch.randn(3, model.cond_dim)
    assert torch.equal(model.decode(f), model.decode(f, cond))


def test_dead_codes_are_restarted():
    model = MAGE(micro_config().model).train()
    q = model.mtae.quantiser
    model.mtae.quantiser(model.mtae.encoder(torch.randn(8, model.horizon, 7)))
    q.usage_KV.zero_()
    q.usage_KV[:, :4] = 1.0  # only codes 0..3 alive
    before = q.codebook.weight.detach().clone()
    n = q.restart_dead_codes(threshold=0.02)
    assert n == q.V - 4
    assert torch.equal(q.codebook.weight[:4], before[:4])
    moved = q.codebook.weight[4:]
    pool = q._restart_pool_NC
    dist = torch.cdist(moved, pool).min(1).values
    assert dist.max() < 0.01  # each restarted code sits on a residual vector of the batch


def test_ablation_switches_change_the_model():
    base = MAGE(micro_config().model)
    assert base.x_dim == 7 and base.mtae.adapter is not None and len(base.scales) == 8

    acts = MAGE(micro_config(model_actions=True).model)
    assert acts.x_dim == 1 + 6 + 2 and acts.mtae.encoder.net[0].in_channels == 9
    b = SegmentBatch(torch.randn(4, 16, 7), torch.randn(4, 16, 2), torch.ones(4, 16))
    assert acts.segment_input(b).shape == (4, 16, 9)
    assert set(acts(b, 1)) >= {"loss", "rec", "vq", "cond"}

    nocond = MAGE(micro_config(use_cond_loss=False).model)
    assert nocond.mtae.adapter is None
    assert "cond" not in nocond(b, 1) and "cond" not in nocond(b, 3)

    flat = MAGE(micro_config(n_scales=1).model)
    assert flat.scales == (flat.T,) and flat.transformer.L == flat.T
    out = flat.sample(torch.randn(2, 7))
    assert len(out.idx_list) == 1 and out.idx_list[0].shape == (2, flat.T)
