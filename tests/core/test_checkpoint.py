"""Checkpoints: atomic save, safe load, clear errors for bad files and mismatched spaces, rebuild from the file."""
from __future__ import annotations

import os

import pytest
import torch

from _helpers_model import micro_config
from mage_core.checkpoint import FORMAT_VERSION, check_compatible, checkpoint_info, load_checkpoint, save_checkpoint
from mage_core.config import MageConfig, preset
from mage_core.errors import MageError
from mage_core.factory import build_model_from_checkpoint
from mage_core.model.mage import MAGE

torch.set_num_threads(1)


def _payload(model: MAGE, cfg: MageConfig) -> dict:
    return {"algo": "mage", "config": cfg.to_dict(), "state_dict": model.state_dict(), "task": "pointmaze-umaze",
            "spaces": {"obs_dim": 6, "act_dim": 2}, "normaliser": {}, "metrics": {"last": {"losses": {"loss": 1.0}}},
            "train_state": {"stage": 2, "step": 10, "done": False}}


@pytest.fixture()
def saved(tmp_path):
    cfg = micro_config()
    torch.manual_seed(0)
    model = MAGE(cfg.model)
    path = save_checkpoint(tmp_path / "m.pt", _payload(model, cfg))
    return path, model, cfg


def test_round_trip_rebuilds_the_same_model(saved):
    path, model, cfg = saved
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp file left behind
    ckpt = load_checkpoint(path)
    assert ckpt["format_version"] == FORMAT_VERSION and set(ckpt["versions"]) >= {"python", "torch", "numpy", "mage"}
    rebuilt = build_model_from_checkpoint(ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, rebuilt.state_dict()[k])
    assert rebuilt.scales == model.scales
    cond = torch.randn(2, 7)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = model.eval().sample(cond, generator=g1)
    b = rebuilt.sample(cond, generator=g2)
    assert all(torch.equal(x, y) for x, y in zip(a.idx_list, b.idx_list))
    assert MageConfig.from_dict(ckpt["config"]) == cfg


def test_config_dict_round_trip_for_every_preset():
    for name in ("tiny", "small", "paper"):
        cfg = preset(name)
        assert MageConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(MageError):
        MageConfig.from_dict({"model": {"no_such_field": 1}})


def test_truncated_and_corrupt_files_give_mage_error(saved, tmp_path):
    path, _, _ = saved
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(MageError, match="truncated or corrupt"):
        load_checkpoint(trunc)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(MageError):
        load_checkpoint(junk)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(MageError, match="empty"):
        load_checkpoint(empty)
    with pytest.raises(MageError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_not_a_checkpoint_and_wrong_version(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(MageError, match="not a mage checkpoint"):
        load_checkpoint(other)
    old = tmp_path / "old.pt"
    torch.save({"format": "mage-ckpt", "format_version": 999}, old)
    with pytest.raises(MageError, match="format version"):
        load_checkpoint(old)


def test_pickled_objects_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "mage-ckpt", "obj": MageError("x")}, evil)
    with pytest.raises(MageError):
        load_checkpoint(evil)


def test_mismatched_spaces(saved):
    path, _, _ = saved
    ckpt = load_checkpoint(path)
    check_compatible(ckpt, 6, 2)
    with pytest.raises(MageError, match="obs_dim=6, act_dim=2"):
        check_compatible(ckpt, 29, 8)


def test_weights_not_matching_config(saved):
    path, _, _ = saved
    ckpt = load_checkpoint(path)
    ckpt["config"]["model"]["d_model"] = 48
    with pytest.raises(MageError, match="do not match"):
        build_model_from_checkpoint(ckpt)


def test_info_summarises_the_checkpoint(saved):
    path, model, _ = saved
    info = checkpoint_info(path)
    assert info["algo"] == "mage" and info["task"] == "pointmaze-umaze"
    assert info["params"] == sum(v.numel() for v in model.state_dict().values())
    assert info["progress"] == {"stage": 2, "step": 10, "done": False}
    import json

    json.dumps(info)  # JSON-friendly
