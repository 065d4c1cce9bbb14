"""Refit a MAGE checkpoint's return ceiling R_hi(s) with another fit (issue 14): longer, wider, another expectile.
The ceiling limits the RTG condition to what the data supports from a state; an optimistic one asks the model for a
return no route can give, and the model answers with a plan through a wall (docs/BENCHMARKS.md, eighth session).

usage: python docs/bench_scripts/refit_ceiling.py CKPT OUT.pt [--steps N] [--hidden W] [--expectile TAU] [--seed S]"""
import argparse
import time
from dataclasses import asdict

import numpy as np
import torch

from mage_core.checkpoint import load_checkpoint, save_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling, load_return_ceiling
from mage_core.train import make_segment_dataset

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("out")
ap.add_argument("--steps", type=int, default=1500)
ap.add_argument("--hidden", type=int, default=128)
ap.add_argument("--expectile", type=float, default=0.9)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--seed", type=int, default=None, help="fit seed (default: the checkpoint's training seed, as mage train)")
a = ap.parse_args()
torch.set_num_threads(1)
ck = load_checkpoint(a.checkpoint)
cfg = MageConfig.from_dict(ck["config"])
task, episodes, _ = load_episodes(ck["dataset"]["id"])
ds = make_segment_dataset(episodes, task, cfg, Normaliser.from_state_dict(ck["normaliser"]))
t0 = time.perf_counter()
seed = cfg.train.seed if a.seed is None else a.seed
ccfg = CeilingConfig(hidden=a.hidden, expectile=a.expectile, steps=a.steps, lr=a.lr, seed=seed)
old = ck.get("ceiling")
ck["ceiling"], metrics = fit_return_ceiling(ds.xn_ND[ds.m_N > 0], ccfg)
print(f"ceiling {asdict(ccfg)} fitted in {time.perf_counter() - t0:.1f}s: {metrics}")
rows_ND = ds.xn_ND[ds.m_N > 0]  # how tight each ceiling is: the share of the data's RTG labels above it
x_ND = torch.as_tensor(rows_ND[np.random.default_rng(0).choice(len(rows_ND), min(20000, len(rows_ND)), replace=False)],
                       dtype=torch.float32)
for name, payload in (("old", old), ("new", ck["ceiling"])):
    if payload:
        with torch.no_grad():
            pred_N = load_return_ceiling(payload)(x_ND[:, 1:]).numpy()
        print(f"{name} ceiling ({payload['config']['steps']} steps): share of RTG labels above it "
              f"{np.mean(x_ND[:, 0].numpy() > pred_N):.3f}")
save_checkpoint(a.out, ck)
