"""Diagnostic (issues 13, 14): how precisely a MAGE checkpoint's tokenizer (stage 1) places the agent (the ant's torso,
the point mass) — the xy error of data segments encoded and decoded through the first k scales (teacher latents, no
transformer), against the 0.45 goal radius. A plan cannot be more precise than its tokenizer. Works for any suite
whose observation has an `agent_xy` slice (Suite.obs_slices).

usage: python docs/bench_scripts/xy_reconstruction.py CKPT [N_SEGMENTS]"""
import sys
import numpy as np, torch
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset

ck = load_checkpoint(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
model = build_model_from_checkpoint(ck)
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg = MageConfig.from_dict(ck["config"])
norm = Normaliser.from_state_dict(ck["normaliser"])
b = make_segment_dataset(eps, task, cfg, norm).sample(n, np.random.default_rng(3))
pos = task.suite.obs_slices(task).get("agent_xy")
if pos is None:
    sys.exit(f"{task.name}: its suite names no agent_xy slice in the observation")
cols = slice(1 + pos.start, 1 + pos.stop)  # x = (R, s): R leads
true_NH2 = norm.denorm_x(b.x_BHD).numpy()[:, :, cols]
with torch.no_grad():
    q = model.encode(model.segment_input(b))
    K = len(q.fhat_cum_list)
    for k in sorted({0, K // 4, K // 2, K - 1}):
        x = norm.denorm_x(model.decode(q.fhat_cum_list[k], b.x_BHD[:, 0])).numpy()[:, :, cols]
        e_NH = np.linalg.norm(x - true_NH2, axis=2)
        print(f"scales 1..{k + 1} of {K}: agent xy error median {np.median(e_NH):.2f}, mean {e_NH.mean():.2f}; "
              f"median at plan step 16 {np.median(e_NH[:, 16]):.2f}, 32 {np.median(e_NH[:, 32]):.2f}, "
              f"{e_NH.shape[1] - 1} {np.median(e_NH[:, -1]):.2f}; share of steps within 0.45 {np.mean(e_NH < 0.45):.0%}")
