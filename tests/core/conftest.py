"""Fixtures for engine tests: a micro MAGE checkpoint trained on the session's generated UMaze dataset."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def micro_checkpoint(umaze_dataset, tmp_path_factory):
    """Path of a MAGE checkpoint trained for a few dozen steps (seconds) on the generated dataset."""
    from _helpers_model import micro_config
    from mage_core.data.store import load_episodes
    from mage_core.training.mage_stages import train_mage

    task, episodes, _ = load_episodes(umaze_dataset)
    cfg = micro_config()
    cfg.train.stage1_steps, cfg.train.stage2_steps, cfg.train.stage3_steps = 30, 30, 5
    cfg.train.warmup_steps = 2
    path = tmp_path_factory.mktemp("micro") / "micro.pt"
    train_mage(cfg, episodes, task, out_path=path, dataset_id=umaze_dataset, progress=False)
    return path
