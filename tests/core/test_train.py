"""Staged training: overfitting a handful of segments, exact resume, events, NaN handling, and the CLI."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from _helpers_model import micro_config, umaze_episodes
from mage_core.checkpoint import load_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import SegmentBatch
from mage_core.errors import MageError
from mage_core.device import resolve_device
from mage_core.progress import EventWriter
from mage_core.training.loop import lr_factor
from mage_core.training.mage_stages import make_segment_dataset, train_mage

torch.set_num_threads(1)


def _steps(cfg, s1, s2, s3, **train):
    cfg.train.stage1_steps, cfg.train.stage2_steps, cfg.train.stage3_steps = s1, s2, s3
    cfg.train.warmup_steps = 5
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


@pytest.mark.slow
def test_tiny_model_overfits_a_handful_of_segments(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(cond_dropout=0.0), 200, 250, 20, batch_size=8, lr_stage2=3e-3, log_every=10)
    ds = make_segment_dataset(list(episodes), task, cfg)
    fixed = ds.get(np.arange(8) * 97)
    events = []
    train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", sink=EventWriter(None, [events.append]),
               progress=False, batch_fn=lambda rng, b: fixed)
    steps = [e for e in events if e["event"] == "step"]
    s1 = [e["losses"] for e in steps if e["stage"] == 1]
    s2 = [e for e in steps if e["stage"] == 2]
    assert s1[-1]["rec"] < s1[0]["rec"] / 10, (s1[0], s1[-1])
    assert s2[-1]["losses"]["ce"] < s2[0]["losses"]["ce"] / 5, (s2[0]["losses"], s2[-1]["losses"])
    assert s2[-1]["losses"]["inv"] < s2[0]["losses"]["inv"] / 5
    assert min(s2[-1]["token_acc"]) > 0.8, s2[-1]["token_acc"]
    assert all(0 < u <= 1 for u in steps[0]["codebook_usage"])


def test_events_follow_the_contract(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 10, 10, 5, log_every=5, ckpt_every=5)
    path = tmp_path / "events.jsonl"
    sink = EventWriter(path)
    train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", sink=sink, progress=False)
    sink.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert events[0]["stages"] == [{"name": "autoencoder", "steps": 10}, {"name": "transformer", "steps": 10},
                                   {"name": "refinement", "steps": 5}]
    assert {"device", "params", "algo", "task"} <= set(events[0])
    steps = [e for e in events if e["event"] == "step"]
    for e in steps:
        assert {"stage", "step", "total", "losses", "segments_per_s", "eta_s"} <= set(e)
        assert ("codebook_usage" in e) == (e["stage"] == 1)
        assert ("token_acc" in e) == (e["stage"] in (2, 3))
        if "token_acc" in e:
            assert len(e["token_acc"]) == 8
    assert kinds.count("stage_end") == 3
    assert any(e["event"] == "checkpoint" and e["stage"] == 2 and e["step"] == 5 for e in events)
    assert events[-1]["checkpoint"] == str(tmp_path / "m.pt") and events[-1]["wall_s"] > 0


def test_resume_continues_exactly(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(dead_code_every=5), 12, 12, 6, ckpt_every=6, log_every=3)
    mid = tmp_path / "mid.pt"

    def keep_mid(e):  # snapshot the periodic checkpoint written in the middle of stage 2
        if e["event"] == "checkpoint" and e["stage"] == 2 and e["step"] == 6:
            shutil.copy(e["path"], mid)

    full = train_mage(cfg, list(episodes), task, out_path=tmp_path / "full.pt",
                      sink=EventWriter(None, [keep_mid]), progress=False)
    assert load_checkpoint(mid)["train_state"]["step"] == 6
    resumed = train_mage(None, list(episodes), task, out_path=tmp_path / "resumed.pt", resume=mid, progress=False)
    for k, v in full["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), f"{k} differs after resume"
    assert full["metrics"]["stage3"] == resumed["metrics"]["stage3"]
    final = load_checkpoint(tmp_path / "resumed.pt")
    assert final["train_state"]["done"] and final["train_state"]["stage"] == 3


def test_resume_with_ema_equals_an_uninterrupted_run(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(dead_code_every=5), 12, 12, 6, ckpt_every=6, log_every=3, ema_decay=0.9)
    mid = tmp_path / "mid.pt"

    def keep_mid(e):
        if e["event"] == "checkpoint" and e["stage"] == 2 and e["step"] == 6:
            shutil.copy(e["path"], mid)

    full = train_mage(cfg, list(episodes), task, out_path=tmp_path / "full.pt",
                      sink=EventWriter(None, [keep_mid]), progress=False)
    saved = load_checkpoint(mid)["train_state"]["ema"]
    assert saved is not None and saved["n"] == 6  # the average travels with the periodic checkpoint
    resumed = train_mage(None, list(episodes), task, out_path=tmp_path / "resumed.pt", resume=mid, progress=False)
    for k, v in full["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), f"{k} differs after resume"


def test_ema_sets_the_averaged_weights_at_stage_end_and_leaves_stage1_alone(tmp_path):
    task, episodes = umaze_episodes()
    plain = train_mage(_steps(micro_config(), 10, 10, 0), list(episodes), task, out_path=tmp_path / "a.pt",
                       progress=False)
    avg = train_mage(_steps(micro_config(), 10, 10, 0, ema_decay=0.9), list(episodes), task,
                     out_path=tmp_path / "b.pt", progress=False)
    enc = [k for k in plain["state_dict"] if k.startswith("mtae.")]
    tr = [k for k in plain["state_dict"] if k.startswith(("transformer.", "inv."))]
    assert enc and tr
    assert all(torch.equal(plain["state_dict"][k], avg["state_dict"][k]) for k in enc)  # stage 1 is not averaged
    assert any(not torch.equal(plain["state_dict"][k], avg["state_dict"][k]) for k in tr)
    assert avg["train_state"]["ema"] is None  # the finished checkpoint carries only the applied weights


@pytest.mark.parametrize("flags, message", [(["--ema", "1.5"], "--ema must be a decay in [0, 1)"),
                                            (["--downsample", "6"], "--downsample must be a power of 2"),
                                            (["--horizon", "0"], "expected a whole number >= 1"),
                                            (["--inv-lookahead", "1,x"], "expected comma-separated step numbers"),
                                            (["--rec-weight", "agent_xy"], "expected NAME=W pairs")])
def test_cli_refuses_bad_model_flags(flags, message, capsys):
    from mage_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "pointmaze-umaze", *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_plan_reading_inverse_dynamics_trains_and_reads_the_decoded_plan(tmp_path):
    from mage_core.model.mage import MAGE

    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(inv_lookahead=(1, 2, 4)), 5, 40, 3, log_every=5)
    events = []
    out = train_mage(cfg, list(episodes), task, out_path=tmp_path / "p.pt", sink=EventWriter(None, [events.append]),
                     progress=False)
    inv = [e["losses"]["inv"] for e in events if e["event"] == "step" and e["stage"] == 2]
    assert inv[-1] < inv[0]
    model = MAGE(MageConfig.from_dict(out["config"]).model).eval()
    model.load_state_dict(out["state_dict"])
    assert model.cfg.inv_lookahead == (1, 2, 4)
    cond = make_segment_dataset(list(episodes), task, cfg).get(np.arange(3)).x_BHD[:, 0]
    f = model.sample(cond, generator=torch.Generator().manual_seed(0)).fhat_BCT
    x = model.decode(f, cond)[:, [1, 2, 4]]  # the head sees exactly the decoded plan's rows at its lookahead steps
    expected = model.inv.net(torch.cat([x.flatten(1), cond], 1))
    torch.testing.assert_close(model.inverse_dynamics(f, cond), expected)
    with pytest.raises(MageError, match="lookahead"):
        MAGE(micro_config(inv_lookahead=(16,)).model)  # H = 16: step 16 is past the plan


def test_task_default_downsample_applies_unless_the_config_sets_one(tmp_path):
    from dataclasses import replace

    task, episodes = umaze_episodes()
    long = replace(task, horizon=64, downsample=8)
    cfg = _steps(micro_config(), 2, 2, 0)
    cfg.model.horizon, cfg.model.downsample = 0, 0  # both from the task
    out = train_mage(cfg, list(episodes), long, out_path=tmp_path / "t.pt", progress=False)
    assert out["config"]["model"]["horizon"] == 64 and out["config"]["model"]["downsample"] == 8
    assert out["spaces"]["scales"][-1] == 8  # T = H / r
    cfg = _steps(micro_config(), 2, 2, 0)  # the config's own r wins
    out = train_mage(cfg, list(episodes), long, out_path=tmp_path / "c.pt", progress=False)
    assert out["config"]["model"]["downsample"] == 2


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 10, 5, 1, ckpt_every=4)
    ds = make_segment_dataset(list(episodes), task, cfg)
    calls = {"n": 0}

    def poisoned(rng, b):
        calls["n"] += 1
        batch = ds.sample(b, rng)
        if calls["n"] >= 7:
            return SegmentBatch(batch.x_BHD * float("nan"), batch.a_BHA, batch.mask_BH)
        return batch

    events = []
    with pytest.raises(MageError, match="NaN"):
        train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", sink=EventWriter(None, [events.append]),
                   progress=False, batch_fn=poisoned)
    assert events[-1]["event"] == "error" and "last good checkpoint" in events[-1]["message"]
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["train_state"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_lr_schedule_and_device():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.1)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(MageError, match="no CUDA"):
            resolve_device("cuda")


def test_cli_trains_tiny_preset_on_a_generated_dataset(tmp_path, monkeypatch, capsys):
    from mage_core.cli import main
    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.tasks import get_task

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    make_dataset(get_task("pointmaze-umaze"), GenerateConfig(steps=1500, ref_episodes=1))
    out = tmp_path / "ckpts"
    rc = main(["train", "--task", "pointmaze-umaze", "--preset", "tiny", "--out", str(out), "--events",
               str(tmp_path / "ev.jsonl"), "--steps-scale", "0.1", "--no-progress", "--threads", "1",
               "--scales", "4", "--no-cond-loss", "--inv-batch-size", "48"])
    assert rc == 0
    ckpt_path = out / "pointmaze-umaze-mage.pt"
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["config"]["train"]["inv_batch_size"] == 48
    assert ckpt["config"]["model"]["n_scales"] == 4 and ckpt["config"]["model"]["use_cond_loss"] is False
    assert len(ckpt["spaces"]["scales"]) == 4 and ckpt["train_state"]["done"]
    assert json.loads((tmp_path / "ev.jsonl").read_text().splitlines()[-1])["event"] == "done"
    capsys.readouterr()
    assert main(["ckpt", "info", str(ckpt_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["task"] == "pointmaze-umaze" and info["spaces"]["obs_dim"] == 6
    assert main(["ckpt", "info", str(ckpt_path)]) == 0
    assert "pointmaze-umaze" in capsys.readouterr().out
    # a corrupt or missing file gets a one-line error and exit code 1 (the work failed; usage errors are 2)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["ckpt", "info", str(tmp_path / "bad.pt")]) == 1
    assert main(["train", "--dataset", "no/such/dataset-v0", "--preset", "tiny"]) == 1
    assert "mage: error:" in capsys.readouterr().err


def test_stage2_fits_inverse_dynamics_on_its_larger_batch(tmp_path):
    """Stage 2 samples inv_batch_size segments: the transformer sees the first batch_size, L_inv all of them."""
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 2, 3, 2, batch_size=4, inv_batch_size=12)
    ds = make_segment_dataset(list(episodes), task, cfg)
    requested = []

    def batch_fn(rng, b):
        requested.append(b)
        return ds.sample(b, rng)

    train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", progress=False, batch_fn=batch_fn)
    assert requested == [4, 4, 12, 12, 12, 4, 4]

    from mage_core.model.mage import MAGE

    model = MAGE(cfg.model)
    model.ce_batch = 4
    seen = {}
    model.transformer.register_forward_hook(lambda m, args, out: seen.__setitem__("transformer", len(args[0])))
    model.inv.register_forward_hook(lambda m, args, out: seen.__setitem__("inv", len(args[0])))
    out = model(ds.sample(12, np.random.default_rng(0)), 2)
    assert seen == {"transformer": 4, "inv": 12} and torch.isfinite(out["loss"])


class _OutOfMemoryInStage(torch.nn.Module):
    """Trains in stage 1, runs out of GPU memory in stage `oom_stage`."""

    def __init__(self, oom_stage: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.oom_stage = oom_stage

    def forward(self, batch, stage: int) -> dict:
        if stage == self.oom_stage:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return {"loss": (self.w ** 2).sum()}


class _NoBatch:
    def to(self, device):
        return self


@pytest.mark.parametrize("batch_size, inv_batch_size, oom_stage, hint", [
    (32, 256, 2, "in stage 2 (transformer) with batch size 256; try a smaller batch size, e.g. --inv-batch-size 128"),
    (64, 16, 2, "in stage 2 (transformer) with batch size 64; try a smaller batch size, e.g. --batch-size 32"),
    (32, 256, 1, "in stage 1 (autoencoder) with batch size 32; try a smaller batch size, e.g. --batch-size 16")])
def test_out_of_memory_names_the_option_that_sets_the_stage_batch(tmp_path, batch_size, inv_batch_size, oom_stage,
                                                                  hint):
    from mage_core.config import TrainConfig
    from mage_core.training.loop import run_training
    from mage_core.training.mage_stages import mage_stages

    tcfg = TrainConfig(stage1_steps=2, stage2_steps=2, stage3_steps=0, batch_size=batch_size,
                       inv_batch_size=inv_batch_size, warmup_steps=1, log_every=1, amp=False)
    events = []
    with pytest.raises(MageError, match="CUDA ran out of memory") as exc:
        run_training(_OutOfMemoryInStage(oom_stage), mage_stages(tcfg), None, tcfg, ckpt_path=tmp_path / "m.pt",
                     static_payload={"algo": "mage"}, sink=EventWriter(None, [events.append]), progress=False,
                     batch_fn=lambda rng, b: _NoBatch())
    assert hint in str(exc.value) and events[-1] == {**events[-1], "event": "error", "message": str(exc.value)}


def test_stage3_can_be_skipped(tmp_path):
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 3, 3, 0)
    events = []
    train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", sink=EventWriter(None, [events.append]),
               progress=False)
    ends = [e["stage"] for e in events if e["event"] == "stage_end"]
    assert ends == [1, 2] and not [e for e in events if e["event"] == "step" and e["stage"] == 3]
    ck = load_checkpoint(tmp_path / "m.pt")
    assert ck["train_state"]["done"] and ck["config"]["train"]["stage3_steps"] == 0


def test_cli_refuses_negative_step_counts(capsys):
    from mage_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "pointmaze-umaze", "--stage3-steps", "-5"])
    assert exc.value.code == 2 and "cannot be negative" in capsys.readouterr().err


def test_inv_loss_l1_fits_the_median_action_and_reaches_the_model(tmp_path):
    """--inv-loss l1: stage 2's L_inv is the mean absolute error (the median action); the config carries it into the
    checkpoint, the training loop into the model, and unknown names are refused."""
    from mage_core.model.mage import MAGE

    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 2, 3, 0, inv_loss="l1")
    ds = make_segment_dataset(list(episodes), task, cfg)
    out = train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", progress=False)
    assert MageConfig.from_dict(out["config"]).train.inv_loss == "l1"
    model = MAGE(cfg.model)
    batch = ds.sample(8, np.random.default_rng(0))
    q = model.encode(model.segment_input(batch))
    pred = model.inverse_dynamics(q.fhat_cum_list[-1], batch.x_BHD[:, 0])
    for name, fn in (("mse", torch.nn.functional.mse_loss), ("l1", torch.nn.functional.l1_loss)):
        model.inv_loss = name
        torch.testing.assert_close(model(batch, 2)["inv"], fn(pred, batch.a_BA))
    model.inv_loss = "huber"
    with pytest.raises(MageError, match="inverse-dynamics loss"):
        model(batch, 2)
    bad = MageConfig().to_dict()
    bad["train"]["inv_loss"] = "huber"
    with pytest.raises(MageError, match="inv_loss"):
        MageConfig.from_dict(bad)


def test_reconstruction_weights_weight_the_named_columns_of_stage_one():
    """--rec-weight agent_xy=W: the suite's slice maps to its (R, s) columns, the stage-1 loss is the column-weighted
    MSE with weights rescaled to mean 1, and bad names or lengths are clear errors."""
    from mage_core.train_command import rec_weights_for
    from mage_core.model.mage import MAGE
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")  # obs (6,): agent xy, agent velocity, goal xy
    w = rec_weights_for(task, 6, 2, False, {"agent_xy": 4.0})
    assert w == (1.0, 4.0, 4.0, 1.0, 1.0, 1.0, 1.0)
    assert len(rec_weights_for(task, 6, 2, True, {"rtg": 0.0})) == 9 and rec_weights_for(task, 6, 2, True, {"rtg": 0.0})[0] == 0
    with pytest.raises(MageError, match="known: rtg, agent_xy, agent_vel, goal_xy"):
        rec_weights_for(task, 6, 2, False, {"xy": 2.0})
    torch.manual_seed(0)
    plain, weighted = MAGE(micro_config().model), MAGE(micro_config(rec_weights=w).model)
    weighted.load_state_dict(plain.state_dict())
    _, episodes = umaze_episodes()
    b = make_segment_dataset(list(episodes), task, micro_config()).get(np.arange(6))
    x = plain.segment_input(b)
    with torch.no_grad():
        xdec = plain.mtae.decoder(plain.mtae.quantiser(plain.mtae.encoder(x)).fhat_BCT)
        sq_D = ((xdec - x) ** 2).mean((0, 1))
        r_plain, r_w = plain._stage1(x, x[:, 0])["rec"], weighted._stage1(x, x[:, 0])["rec"]
    torch.testing.assert_close(r_plain, sq_D.mean())
    wt = torch.tensor(w) * 7 / sum(w)
    torch.testing.assert_close(r_w, (sq_D * wt).mean())
    assert not torch.isclose(r_w, r_plain)
    with pytest.raises(MageError, match="reconstruction weights need 7 values"):
        MAGE(micro_config(rec_weights=(1.0, 2.0)).model)


def test_scale_prefix_reconstruction_adds_the_coarse_plans_error_and_trains_the_decoder():
    """--scale-rec-weight W: stage 1 adds W x the mean reconstruction error of decode(z_1 + ... + z_k), k < K, to the
    loss (the same number the plain decoder gives on the quantiser's detached prefixes), its gradient reaches the
    codebook and the decoder, and W = 0 leaves the paper's loss unchanged."""
    from mage_core.model.mage import MAGE
    from mage_core.tasks import get_task

    torch.manual_seed(0)
    plain, prefixed = MAGE(micro_config().model), MAGE(micro_config(scale_rec_weight=0.5).model)
    prefixed.load_state_dict(plain.state_dict())
    _, episodes = umaze_episodes()
    b = make_segment_dataset(list(episodes), get_task("pointmaze-umaze"), micro_config()).get(np.arange(6))
    x = plain.segment_input(b)
    out_plain, out_pre = plain._stage1(x, x[:, 0]), prefixed._stage1(x, x[:, 0])
    assert "rec_prefix" not in out_plain
    with torch.no_grad():
        q = plain.mtae.quantiser(plain.mtae.encoder(x), update_stats=False)
        want = torch.stack([((plain.mtae.decoder(f) - x) ** 2).mean() for f in q.fhat_cum_list[:-1]]).mean()
    torch.testing.assert_close(out_pre["rec_prefix"], want)
    torch.testing.assert_close(out_pre["loss"] - out_plain["loss"], 0.5 * want, rtol=1e-4, atol=1e-6)
    assert want > out_pre["rec"]  # the coarse prefixes reconstruct worse than the full sum
    out_plain["loss"].backward()
    out_pre["loss"].backward()
    for name in ("mtae.quantiser.codebook.weight", "mtae.decoder.net.0.weight"):
        g_plain, g_pre = plain.get_parameter(name).grad, prefixed.get_parameter(name).grad
        assert not torch.allclose(g_plain, g_pre), name  # the prefix term trains the codebook and the decoder
    g_enc = [(a.grad, b.grad) for a, b in zip(plain.mtae.encoder.parameters(), prefixed.mtae.encoder.parameters())]
    assert all(torch.allclose(a, b) for a, b in g_enc)  # and leaves the encoder to the full reconstruction


def test_coarse_scales_cross_entropy_on_the_rest_of_the_batch_is_a_mean_over_every_predicted_token():
    """With --coarse-ce-scales n the other L_inv segments add their first n scales' tokens to the cross-entropy; with
    n = K that is plain cross-entropy over the whole batch, and with n = 0 only the first ce_batch segments count."""
    import torch.nn.functional as F

    from mage_core.model.mage import MAGE

    task, episodes = umaze_episodes()
    cfg = micro_config()
    cfg.model.cond_dropout = 0.0
    ds = make_segment_dataset(list(episodes), task, cfg)
    batch = ds.sample(12, np.random.default_rng(0))
    torch.manual_seed(0)
    model = MAGE(cfg.model)
    model.ce_batch = 4
    K = len(model.scales)
    with torch.no_grad():
        q = model.encode(model.segment_input(batch))
        logits_BLV = model.transformer(batch.x_BHD[:, 0], q.fhat_cum_list)
        target_BL = torch.cat(q.idx_list, dim=1)
        tok_BL = F.cross_entropy(logits_BLV.transpose(1, 2), target_BL, reduction="none")
        n = 3
        Lc = model.transformer.begins[n]
        expected = {0: tok_BL[:4].mean(), K: tok_BL.mean(),
                    n: (tok_BL[:4].sum() + tok_BL[4:, :Lc].sum()) / (4 * tok_BL.shape[1] + 8 * Lc)}
        for coarse, want in expected.items():
            model.coarse_ce_scales = coarse
            got = model(batch, 2)["ce"]
            assert torch.allclose(got, want, atol=1e-5), (coarse, got, want)
    assert not torch.allclose(expected[0], expected[n])


def test_cli_takes_coarse_ce_scales_and_refuses_more_than_the_model_has(umaze_dataset, tmp_path, capsys):
    from mage_core.checkpoint import load_checkpoint
    from mage_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", umaze_dataset, "--coarse-ce-scales", "-1"])
    assert exc.value.code == 2 and "whole number >= 0" in capsys.readouterr().err
    assert main(["train", "--dataset", umaze_dataset, "--coarse-ce-scales", "9", "--out", str(tmp_path / "x.pt")]) == 2
    assert "more than the model's 8 scales" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    out = tmp_path / "c.pt"
    assert main(["train", "--dataset", umaze_dataset, "--preset", "tiny", "--steps-scale", "0.05", "--coarse-ce-scales",
                 "2", "--no-progress", "--out", str(out)]) == 0
    assert load_checkpoint(out)["config"]["train"]["coarse_ce_scales"] == 2


def test_ceiling_steps_sets_the_return_ceiling_fit_and_a_longer_fit_fits_better(umaze_dataset, tmp_path):
    from mage_core.checkpoint import load_checkpoint
    from mage_core.cli import main
    from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling

    out = tmp_path / "c.pt"
    assert main(["train", "--dataset", umaze_dataset, "--preset", "tiny", "--steps-scale", "0.05", "--ceiling-steps",
                 "150", "--no-progress", "--out", str(out)]) == 0
    assert load_checkpoint(out)["ceiling"]["config"]["steps"] == 150
    out2 = tmp_path / "d.pt"
    assert main(["train", "--dataset", umaze_dataset, "--preset", "tiny", "--steps-scale", "0.05", "--no-progress",
                 "--out", str(out2)]) == 0
    assert load_checkpoint(out2)["ceiling"]["config"]["steps"] == 100  # the default: min(1500, stage-2 steps), >= 100
    rng = np.random.default_rng(0)
    s_N2 = rng.uniform(-1, 1, (4000, 2)).astype(np.float32)
    r_N = np.sin(3 * s_N2[:, 0]) * np.cos(3 * s_N2[:, 1])  # a bumpy return surface
    xn = np.concatenate([r_N[:, None], s_N2], 1).astype(np.float32)
    losses = [fit_return_ceiling(xn, CeilingConfig(steps=n, hidden=32))[1]["ceiling_loss_last"] for n in (100, 2000)]
    assert losses[1] < 0.5 * losses[0]


def test_the_return_ceiling_is_fitted_with_the_requested_cpu_threads(monkeypatch, tmp_path):
    """--threads must hold before the ceiling fit too (an oversubscribed default pool ran it ~8x slower)."""
    import mage_core.training.mage_stages as mage_stages

    seen = []
    real_fit = mage_stages.fit_return_ceiling

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(mage_stages, "fit_return_ceiling", spy)
    task, episodes = umaze_episodes()
    cfg = _steps(micro_config(), 2, 2, 0)
    cfg.train.num_threads = 1
    torch.set_num_threads(2)
    try:
        train_mage(cfg, list(episodes), task, out_path=tmp_path / "m.pt", progress=False)
    finally:
        torch.set_num_threads(1)
    assert seen == [1]
