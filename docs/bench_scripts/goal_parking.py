"""Where a maze agent ends its evaluation episodes relative to the goal point and the goal's cell centre (issue 13).

The evaluation goal is its cell's centre plus the protocol's noise; an agent that parks at the centre instead of the
goal point misses a small success radius. Prints, per episode, the suite's diagnostics for it (`mage diagnose` shows
the same columns): the goal's offset from its cell centre and the final distance to the goal and to the centre.

usage: python docs/bench_scripts/goal_parking.py CHECKPOINT EVAL_SEED [EPISODES]"""
import argparse
import sys

from mage_core.cli import evaluate as ev
from mage_core.policies import load_policy

ck, seed = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
args = argparse.Namespace(checkpoint=ck, episodes=n, seeds=seed, envs=10, device="cpu", replan_every=None,
                          executor="inverse", regoal_steps=None, temperature=None, top_k=None, cfg_scale=None,
                          threads=1, quiet=True, rtg=None, json_out=None, plans=False)
res = ev._run(args, None, label="parking", record=True)  # the same episodes as `mage eval` / `mage diagnose`
task = load_policy(ck)[1]
print("episode  return  goal-centre  final->goal  final->centre")
for i, e in enumerate(res.extra.pop("episodes")):
    d = task.suite.episode_diagnostics(task, e["obs_TD"], e["rewards_T"])
    if "goal_off_centre" not in d:
        sys.exit(f"{task.name}: its suite has no goal cells to compare with")
    print(f"{i:7d}  {d['return']:6.0f}  {d['goal_off_centre']:11.2f}  {d['final_distance']:11.2f}  "
          f"{d['final_to_centre']:13.2f}")
