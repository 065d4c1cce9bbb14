"""Probe (issue 12, pen): execute the mean of I(sum z) over M plans sampled for the same condition instead of one
plan's action, to test whether averaging out the sampling noise the head copies into the action helps.

usage: python docs/bench_scripts/mean_action_probe.py CHECKPOINT EVAL_SEEDS M [EPISODES]"""
import argparse, sys, json
import numpy as np, torch
from mage_core import planner as P
from mage_core.cli import evaluate as ev
ck, seeds, M = sys.argv[1], sys.argv[2], int(sys.argv[3])
episodes = int(sys.argv[4]) if len(sys.argv) > 4 else 10
orig = P.Planner.act_batch
def act_batch(self, obs_ND, rtg_N, generator=None, return_fhat=False, return_sample=False):
    if M <= 1:
        return orig(self, obs_ND, rtg_N, generator, return_fhat, return_sample)
    N = len(obs_ND)
    a = orig(self, np.repeat(obs_ND, M, 0), np.repeat(np.asarray(rtg_N), M, 0), generator)
    a = a.reshape(N, M, -1).mean(1).astype(np.float32)
    return (a, None, None) if return_sample else a
P.Planner.act_batch = act_batch
args = argparse.Namespace(checkpoint=ck, episodes=episodes, seeds=tuple(int(x) for x in seeds.split(",")), envs=10,
                          device="cpu",
                          replan_every=None, executor="inverse", regoal_steps=None, temperature=None, top_k=None,
                          cfg_scale=None, threads=1, quiet=True, rtg=None, json_out=None, plans=False)
res = ev._run(args, None, label="mean-action", record=False)
n = res.normalise(res.returns)
se = float(np.std(n, ddof=1) / np.sqrt(len(n)))
print(json.dumps(dict(ck=ck, seeds=seeds, M=M, n=len(n), normalised=float(np.mean(n)), se=se,
                      success=float(np.mean(res.successes)))))
