"""Diagnostic (issue 14): how the inverse-dynamics head of a MAGE checkpoint acts on teacher latents (the autoencoder's
tokens of the data's own future) against the latents the transformer samples for the same condition (R0, s0).

usage: python docs/bench_scripts/inv_head_diag.py CKPT [N_SEGMENTS=1000]
Prints, per latent source, the share of denormalised actions beyond the +-1 bound and the mean |clip(a)|, the same
for the data's actions, and how far the decoded sampled plan is from the data segment (normalised MSE per step)."""
import sys

import numpy as np
import torch

from mage_core.checkpoint import build_model_from_checkpoint, load_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset

torch.set_num_threads(1)
path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
ck = load_checkpoint(path)
model = build_model_from_checkpoint(ck).eval()
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg, nz = MageConfig.from_dict(ck["config"]), Normaliser.from_state_dict(ck["normaliser"])
b = make_segment_dataset(eps[:3000], task, cfg, nz).sample(n, np.random.default_rng(1))
with torch.no_grad():
    cond = b.x_BHD[:, 0]
    f_teacher = model.encode(b.x_BHD).fhat_cum_list[-1]
    f_sampled = model.sample(cond, generator=torch.Generator().manual_seed(0)).fhat_BCT
    for name, f in (("teacher", f_teacher), ("sampled", f_sampled)):
        a = nz.denorm_a(model.inverse_dynamics(f, cond).numpy())
        print(f"{name:8s} share |a| > 1 {(np.abs(a) > 1).mean(0).round(3)}  mean |clip(a)| "
              f"{np.abs(np.clip(a, -1, 1)).mean(0).round(3)}")
    a_data = nz.denorm_a(b.a_BA.numpy())
    print(f"data     share at the bound {(np.abs(a_data) >= 0.999).mean(0).round(3)}  mean |a| "
          f"{np.abs(a_data).mean(0).round(3)}")
    x_s = model.decode(f_sampled, cond)
    steps = [t for t in (1, 4, 16, model.horizon - 1)]
    print("decoded sampled plan vs data segment, normalised MSE at steps", steps, ":",
          [round(float(((x_s[:, t] - b.x_BHD[:, t]) ** 2).mean()), 3) for t in steps])
