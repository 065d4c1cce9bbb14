"""Data parallel training: 2 CPU processes (gloo) average gradients exactly like one process on the joint batch."""
from __future__ import annotations

import pytest

import json
import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from _helpers_model import micro_config, umaze_episodes
from mage_core.checkpoint import load_checkpoint
from mage_core.data.segments import SegmentBatch
from mage_core.progress import EventWriter
from mage_core.training.mage_stages import make_segment_dataset, train_mage

B = 8  # segments per process


def _config(steps: tuple):
    cfg = micro_config(dead_code_every=0, cond_dropout=0.0)  # no rank-local randomness in the model
    cfg.train.stage1_steps, cfg.train.stage2_steps, cfg.train.stage3_steps = steps
    cfg.train.warmup_steps, cfg.train.log_every, cfg.train.ckpt_every = 2, 2, 100
    cfg.train.batch_size = B
    return cfg


def _fixed_batches(task, episodes, cfg) -> list:
    ds = make_segment_dataset(list(episodes), task, cfg)
    return [ds.get(np.arange(B) * 53 + 11 * r) for r in range(2)]


def _worker(rank: int, port: int, out_dir: str, steps: tuple, fixed: bool):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    task, episodes = umaze_episodes(1500)
    cfg = _config(steps)
    batches = _fixed_batches(task, episodes, cfg)
    sink = EventWriter(os.path.join(out_dir, f"events{rank}.jsonl"))
    train_mage(cfg, list(episodes), task, out_path=os.path.join(out_dir, "ddp.pt"), sink=sink, progress=False,
               batch_fn=(lambda rng, b: batches[rank]) if fixed else None)
    sink.close()
    from mage_core.device import shutdown_distributed

    shutdown_distributed()  # barrier, then leave: no rank tears gloo down while the other still uses it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(tmp_path, steps, fixed):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), steps, fixed), nprocs=2, join=True)


@pytest.mark.slow
def test_two_processes_average_gradients_like_one_process_on_the_joint_batch(tmp_path, monkeypatch):
    steps = (3, 3, 0)  # few steps: later, tiny float differences flip nearest-code choices and runs drift apart
    _spawn(tmp_path, steps, fixed=True)
    ddp = load_checkpoint(tmp_path / "ddp.pt")
    # only rank 0 writes events and checkpoints
    assert not (tmp_path / "events1.jsonl").exists() or (tmp_path / "events1.jsonl").read_text() == ""
    start = json.loads((tmp_path / "events0.jsonl").read_text().splitlines()[0])
    assert start["world_size"] == 2

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.set_num_threads(1)
    task, episodes = umaze_episodes(1500)
    cfg = _config(steps)
    b0, b1 = _fixed_batches(task, episodes, cfg)
    joint = SegmentBatch(*(torch.cat([getattr(b0, f), getattr(b1, f)]) for f in ("x_BHD", "a_BHA", "mask_BH")))
    cfg.train.batch_size = 2 * B
    single = train_mage(cfg, list(episodes), task, out_path=tmp_path / "single.pt", progress=False,
                        batch_fn=lambda rng, b: joint)
    from mage_core.model.mage import MAGE

    params = {k for k, _ in MAGE(cfg.model).named_parameters()}  # buffers (codebook usage stats) are per rank
    worst = max((ddp["state_dict"][k] - single["state_dict"][k]).abs().max().item() for k in params)
    assert worst < 2e-4, f"DDP parameters differ from the joint-batch run by {worst}"
    for stage in ("stage1", "stage2"):
        a, b = ddp["metrics"][stage]["losses"], single["metrics"][stage]["losses"]
        # DDP logs rank 0's half-batch losses; they are of the same size as the joint-batch ones
        assert abs(a["loss"] - b["loss"]) < 0.5 * abs(b["loss"]) + 0.05, (stage, a, b)


@pytest.mark.slow
def test_two_process_training_decreases_the_loss_like_one_process(tmp_path, monkeypatch):
    steps = (60, 30, 2)
    _spawn(tmp_path, steps, fixed=False)
    events = [json.loads(x) for x in (tmp_path / "events0.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "done" and load_checkpoint(tmp_path / "ddp.pt")["train_state"]["done"]

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    task, episodes = umaze_episodes(1500)
    cfg = _config(steps)
    cfg.train.batch_size = 2 * B  # the same number of segments per optimiser step as the 2-process run
    single = []
    train_mage(cfg, list(episodes), task, out_path=tmp_path / "single.pt", sink=EventWriter(None, [single.append]),
               progress=False)

    def curve(evs, stage, key):
        return [e["losses"][key] for e in evs if e["event"] == "step" and e["stage"] == stage]

    for stage, key, factor in ((1, "rec", 0.8), (2, "ce", 0.97)):
        d, s = curve(events, stage, key), curve(single, stage, key)
        d_end, s_end = np.mean(d[-4:]), np.mean(s[-4:])  # smooth the per-batch noise
        assert d_end < factor * d[0] and s_end < factor * s[0], (stage, d, s)
        assert 0.5 < d_end / s_end < 2.0, (stage, d_end, s_end)
