"""The bundled checkpoint works out of the box and reproduces its card's score (checkpoint alone, no dataset)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "checkpoints" / "pointmaze-umaze.card.json"


@pytest.mark.skipif(not CARD.is_file(), reason="no bundled umaze checkpoint in this checkout")
@pytest.mark.slow
def test_bundled_umaze_checkpoint_reproduces_its_card(minari_root):
    import torch

    from mage_core.evaluate import evaluate
    from mage_core.policies import load_policy

    torch.set_num_threads(1)
    card = json.loads(CARD.read_text())
    policy, task, meta = load_policy(str(ROOT / "checkpoints" / "pointmaze-umaze.pt"), seed=0)
    ev = card["eval"]
    res = evaluate(task, policy, episodes=ev["episodes"] // len(ev["seeds"]), seeds=tuple(ev["seeds"]),
                   ref_scores=tuple(meta["dataset"]["ref_scores"]))
    assert res.normalised_mean == pytest.approx(ev["normalised_mean"], abs=max(ev["normalised_se"], 1e-6))
    assert res.normalised_mean > 50  # a usable checkpoint, not a broken file
