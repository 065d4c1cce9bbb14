"""Which scales choose an infeasible route (issue 14): from states along the reference expert's route, force the first j
scales to the tokens of the expert's own next H steps, sample the rest, and report the share of full-resolution plans
that run more than 0.25 cell into a wall, for j = 0 (all sampled) .. K (all forced).

usage: python docs/bench_scripts/route_forcing.py CKPT [--samples 16] [--every 10] [--episodes 3] [--json OUT]"""
import argparse
import json

import numpy as np
import torch

from mage_core.evaluate import ExpertPolicy, evaluate
from mage_core.model.transformer import sample_tokens
from mage_core.planner import Planner
from mage_core.rtg import condition_rtg

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("--samples", type=int, default=16)
ap.add_argument("--every", type=int, default=10)
ap.add_argument("--episodes", type=int, default=3)
ap.add_argument("--threshold", type=float, default=0.25)
ap.add_argument("--json", default=None)
a = ap.parse_args()
torch.set_num_threads(1)
p = Planner.from_checkpoint(a.checkpoint)
task, m = p.task, p.model
tr, q = m.transformer, m.mtae.quantiser
H, W, S, K = p.horizon, task.eval_steps, a.samples, len(p.scales)
target = p.rtg_range[1]
# the expert's episodes once, every state kept, so each planned-from state has its true next H steps
res = evaluate(task, ExpertPolicy(task), episodes=a.episodes, seeds=(0,), record=True)
gen = torch.Generator().manual_seed(0)
depth = {j: [] for j in range(K + 1)}
with torch.inference_mode():
    for ep in res.extra["episodes"]:
        obs_TD, r_T = ep["obs_TD"], np.asarray(ep["rewards_T"])
        first = int(np.nonzero(r_T > 0)[0][0])
        R_T = np.clip(W - np.maximum(first - np.arange(len(obs_TD)), 0), 0, W).astype(np.float32)  # window relabel
        for t in range(0, min(first, len(obs_TD) - H), a.every):
            x_1HD = np.concatenate([R_T[t:t + H, None], obs_TD[t:t + H]], 1)[None]
            true_idx = m.encode(torch.as_tensor(p.normaliser.norm_x(x_1HD), dtype=torch.float32)).idx_list
            cond_N = p.feasible(obs_TD[t][None], condition_rtg(target, 0.0, t, task.rtg_mode)[None])
            c_SD = p._cond(np.repeat(obs_TD[t][None], S, 0), np.repeat(cond_N, S))
            for j in range(K + 1):
                c_Sd = tr.embed_condition(c_SD)
                state, w, fhat = tr.prepare_sampling(c_Sd), q.sampling_weights(), None
                for k in range(K):
                    logits = tr.step(k, c_Sd, fhat, state)
                    idx = true_idx[k].expand(S, -1) if k < j else sample_tokens(logits, 1.0, generator=gen)
                    z = q.embed_idx_fast(k, idx, w)
                    fhat = z if fhat is None else fhat + z
                x = p.normaliser.denorm_x(m.decode(fhat, c_SD)[..., : 1 + p.obs_dim]).float().numpy()
                depth[j].append(task.suite.wall_depth(task, x[..., 1:]).max(-1))
rows = [dict(forced_scales=j, forced_tokens=int(sum(p.scales[:j])),
             share_infeasible=float((np.concatenate(depth[j]) > a.threshold).mean())) for j in range(K + 1)]
for r in rows:
    print(f"first {r['forced_scales']} scales ({r['forced_tokens']:2d} tokens) forced: "
          f"{100 * r['share_infeasible']:5.1f}% of plans run > {a.threshold:g} cell into a wall")
if a.json:
    with open(a.json, "w") as fh:
        json.dump(dict(checkpoint=a.checkpoint, samples=S, every=a.every, episodes=a.episodes, rows=rows), fh, indent=2)
