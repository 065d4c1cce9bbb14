"""Issue 14 diagnostic: how hard a checkpoint pushes, against its suite's noise-free expert at the same states.

Runs evaluation episodes of CKPT (its own executor) until the first reward (the goal, on the mazes) and, at every
visited state, asks the suite's reference expert (`Suite.expert_policy`: on PointMaze the data's PD controller without
its noise) what it would do there. Prints the
mean largest action component |a|_inf of each, the share of steps at the action bound, and the cosine between
them. A head fitted by MSE to clipped noisy PD actions pushes softer than the controller that made the data.

usage: python docs/bench_scripts/action_magnitude.py CKPT [EPISODES] [--json OUT]"""
import argparse
import json

import numpy as np
import torch

from mage_core.errors import MageError
from mage_core.policies import load_policy

ap = argparse.ArgumentParser()
ap.add_argument("ckpt")
ap.add_argument("episodes", type=int, nargs="?", default=3)
ap.add_argument("--json", default=None)
a = ap.parse_args()
torch.set_num_threads(1)
try:
    policy, task, _ = load_policy(a.ckpt, device="cpu", seed=0, replan_every=1)
except MageError as exc:
    raise SystemExit(f"action_magnitude.py: {exc}") from None
expert = task.suite.expert_policy(task)
if expert is None:
    raise SystemExit(f"{task.name}: its suite has no reference expert to compare with")
rows = []
for ep in range(a.episodes):
    expert.reset(1)
    env = task.make_env(mode="eval")
    obs, _ = env.reset(seed=ep)
    policy.reset(1)
    acts_TA, expert_TA, reached = [], [], None
    for t in range(task.eval_steps):
        o_1D = task.flatten_obs(obs)[None]
        act = policy.act(o_1D, np.zeros(1))[0]
        acts_TA.append(act)
        expert_TA.append(expert.act(o_1D, np.zeros(1))[0])
        obs, r, *_ = env.step(act)
        if r > 0:
            reached = t + 1
            break
    env.close()
    A, E = np.array(acts_TA), np.array(expert_TA)
    cos = (A * E).sum(1) / (np.linalg.norm(A, axis=1) * np.linalg.norm(E, axis=1) + 1e-9)
    rows.append({"episode": ep, "first_reach": reached, "head_abs_max": float(np.abs(A).max(1).mean()),
                 "expert_abs_max": float(np.abs(E).max(1).mean()),
                 "head_at_bound": float((np.abs(A).max(1) > 0.95).mean()),
                 "expert_at_bound": float((np.abs(E).max(1) > 0.95).mean()), "cosine_median": float(np.median(cos))})
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("episode", "first_reach")}
print("mean  " + "  ".join(f"{k}={v:.3f}" for k, v in mean.items()))
if a.json:
    with open(a.json, "w") as fh:
        json.dump({"checkpoint": a.ckpt, "episodes": rows, "mean": mean}, fh, indent=1)
