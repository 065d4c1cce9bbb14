"""Per-episode AntMaze diagnostics of a checkpoint: first reach, flips, stall cell, cells left, path length, distance
to the goal point at the end and at the closest approach."""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from mage_core.policies import load_policy
from mage_core.evaluate import evaluate
from mage_core.suites.antmaze import _up_z, SUITE
from mage_core.suites.pointmaze import geometry
ck = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
rtg = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
pol, task, meta = load_policy(ck, rtg_target=rtg)
t0 = time.time()
res = evaluate(task, pol, episodes=n, seeds=(0,), record=True)
g = geometry(task)
rows = []
for ep in res.extra["episodes"]:
    o, r = ep["obs_TD"], ep["rewards_T"]
    hit = np.flatnonzero(r > 0)
    flip = next((t for t in range(len(o)) if _up_z(o[t, :13]) < 0), None)
    xy = o[:, 27:29]
    goal = o[0, 29:31]
    best = min(g.cell_distance(p, goal) for p in xy[::10])
    rows.append(dict(ret=float(r.sum()), first=int(hit[0]) if len(hit) else None, flip=flip,
                     end_cell=list(g.xy_to_cell(xy[-1])), cells_left=float(g.cell_distance(xy[-1], goal)), best_cells_left=float(best),
                     path_m=float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()), min_z=float(o[:, 0].min()),
                     end_goal_m=round(float(np.linalg.norm(xy[-1] - goal)), 2), min_goal_m=round(float(np.linalg.norm(xy - goal, axis=1).min()), 2)))
for r_ in rows: print(json.dumps(r_))
print("success", np.mean(res.successes), "mean", res.mean, "wall", round(time.time() - t0, 1), "rtg", getattr(pol, "target", rtg))
