"""Where a maze agent ends its evaluation episodes relative to the goal point and the goal's cell centre (issue 13).

The evaluation goal is its cell's centre plus the protocol's noise; an agent that parks at the centre instead of the
goal point misses a small success radius. Prints, per episode, the goal's offset from its cell centre and the mean
distance of the last 100 steps to the goal and to the centre.

usage: python docs/bench_scripts/goal_parking.py CHECKPOINT EVAL_SEED [EPISODES]"""
import argparse
import sys

import numpy as np

from mage_core.cli import evaluate as ev
from mage_core.policies import load_policy
from mage_core.suites.pointmaze import geometry

ck, seed = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
args = argparse.Namespace(checkpoint=ck, episodes=n, seeds=seed, envs=10, device="cpu", replan_every=None,
                          executor="inverse", regoal_steps=None, temperature=None, top_k=None, cfg_scale=None,
                          threads=1, quiet=True, rtg=None, json_out=None, plans=False)
res = ev._run(args, None, label="parking", record=True)  # the same episodes as `mage eval` / `mage diagnose`
task = load_policy(ck)[1]
sl, g = task.suite.obs_slices(task), geometry(task)
print("episode  return  goal-centre  last100->goal  last100->centre")
for i, e in enumerate(res.extra.pop("episodes")):
    o = e["obs_TD"]
    xy_T2, goal = o[1:, sl["agent_xy"]], o[0, sl["goal_xy"]]
    centre = g.cell_to_xy(g.xy_to_cell(goal))
    tail = xy_T2[-100:]
    print(f"{i:7d}  {e['rewards_T'].sum():6.0f}  {np.linalg.norm(goal - centre):11.2f}  "
          f"{np.linalg.norm(tail - goal, axis=1).mean():13.2f}  {np.linalg.norm(tail - centre, axis=1).mean():15.2f}")
