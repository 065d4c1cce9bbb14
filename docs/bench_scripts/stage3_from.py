"""Ablation: run stage 3 (refinement) for N steps from a checkpoint whose stage 2 is complete.

usage: python docs/bench_scripts/stage3_from.py SRC.pt DST.pt N [--freeze-inv]
  --freeze-inv keeps the inverse-dynamics head fixed, so L_inv reaches only the transformer."""
import sys, copy, torch
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint
from mage_core.data.store import load_episodes
from mage_core.train import train_mage
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if "--freeze-inv" in sys.argv:
    from mage_core.model import mage as M

    _orig = M.MAGE.stage_parameters

    def _without_inv(self, stage):
        if stage != 3:
            return _orig(self, stage)
        mods = [self.transformer] + ([self.mtae.adapter] if self.mtae.adapter is not None else [])
        return [p for m in mods for p in m.parameters()]

    M.MAGE.stage_parameters = _without_inv
ck = load_checkpoint(src)
ck["config"]["train"]["stage3_steps"] = n
ts = ck["train_state"]
ck["train_state"] = dict(stage=3, step=0, done=False, wall_s=ts["wall_s"], optimizer=None, scheduler=None, rng=ts["rng"])
task, eps, _ = load_episodes(ck["dataset"]["id"])
train_mage(None, eps, task, out_path=dst, dataset_id=ck["dataset"]["id"], resume=ck, progress=False)
