"""Refit a MAGE checkpoint's return ceiling R_hi(s) with more steps and save a copy (issue 13).

The ceiling is fitted on its own before stage 2 and only limits the RTG condition at planning time, so a checkpoint
trained with the default short fit (min(1500, stage-2 steps)) can be given the fit `--ceiling-steps N` would have made,
without retraining. Prints the ceiling's prediction against the data's RTG labels on states near the goal.

usage: python docs/bench_scripts/refit_ceiling.py CHECKPOINT OUT.pt STEPS"""
import sys

import numpy as np
import torch

from mage_core.checkpoint import load_checkpoint, save_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling, load_return_ceiling
from mage_core.train import make_segment_dataset

src, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
ck = load_checkpoint(src)
cfg = MageConfig.from_dict(ck["config"])
task, eps, _ = load_episodes(ck["dataset"]["id"])
ds = make_segment_dataset(eps, task, cfg, Normaliser.from_state_dict(ck["normaliser"]))
real = ds.m_N > 0
xn_ND = ds.xn_ND[real]
old = load_return_ceiling(ck["ceiling"])
new_payload, metrics = fit_return_ceiling(xn_ND, CeilingConfig(steps=steps, seed=cfg.train.seed))
new = load_return_ceiling(new_payload)
rng = np.random.default_rng(0)
idx = rng.choice(len(xn_ND), size=min(20000, len(xn_ND)), replace=False)
x = torch.as_tensor(xn_ND[idx], dtype=torch.float32)
with torch.no_grad():
    p_old, p_new = old(x[:, 1:]).numpy(), new(x[:, 1:]).numpy()
lab = x[:, 0].numpy()
for name, p in (("old", p_old), ("new", p_new)):
    err = p - lab
    print(f"{name} ceiling ({ck['ceiling']['config']['steps'] if name == 'old' else steps} steps): "
          f"mean(pred - label) {err.mean():+.3f}, share of labels above the ceiling {np.mean(lab > p):.3f} "
          f"(normalised RTG units)")
ck["ceiling"] = new_payload
ck["config"]["train"]["ceiling_steps"] = steps
save_checkpoint(out, ck)
print(f"wrote {out} ({metrics})")
