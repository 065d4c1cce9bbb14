"""Where the plans lead from the states where a maze agent parked near its goal (issue 13).

Runs `mage eval`'s episodes of one evaluation seed, takes the last state of every episode that ended 0.45-2 m from
the goal point, and samples 24 plans there for the true goal and for the goal moved 0.8 m along +-x and +-y (the
condition as the executor computes it: target 700 limited by the return ceiling). Prints one JSON line per parked
episode: the condition, and per goal the mean planned torso xy at plan steps 8, 16, 32 and the last, as distances
to the goal and to the agent, with the spread of the 24 plans. Plans that follow the goal point end near it for
every shifted goal; plans that creep move little in 64 steps.

usage: python docs/bench_scripts/goal_plan_probe.py CHECKPOINT EVAL_SEED"""
import argparse, sys, json
import numpy as np, torch
from mage_core.cli import evaluate as ev
from mage_core.policies import load_policy
from mage_core.planner import Planner
torch.set_num_threads(1)
ck = sys.argv[1]; seed = int(sys.argv[2])
args = argparse.Namespace(checkpoint=ck, episodes=10, seeds=(seed,), envs=10, device="cpu", replan_every=None,
                          executor="inverse", regoal_steps=None, temperature=None, top_k=None, cfg_scale=None,
                          threads=1, quiet=True, rtg=None, json_out=None, plans=False)
res = ev._run(args, None, label="probe", record=True)
eps = res.extra.pop("episodes")
task = load_policy(ck)[1]
pl = Planner.from_checkpoint(ck)
sl = task.suite.obs_slices(task)
P, G = sl["agent_xy"], sl["goal_xy"]
out = []
for i, e in enumerate(eps):
    d = task.suite.episode_diagnostics(task, e["obs_TD"], e["rewards_T"])
    o = np.asarray(e["obs_TD"][-1], np.float32)
    dist = float(np.linalg.norm(o[P] - o[G]))
    if dist < 0.45 or dist > 2.0:
        continue
    row = dict(ep=i, final_to_goal=dist)
    for name, off in [("true", (0, 0)), ("+x", (0.8, 0)), ("-x", (-0.8, 0)), ("+y", (0, 0.8)), ("-y", (0, -0.8))]:
        oo = o.copy(); oo[G] = o[G] + np.array(off, np.float32)
        N = 24
        obs_N = np.repeat(oo[None], N, 0)
        rtg_N = pl.feasible(obs_N, np.full(N, 700.0))
        g = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            act, outp, cond = pl.act_batch(obs_N, rtg_N, g, return_sample=True)
            x = pl.normaliser.denorm_x(pl.model.decode(outp.fhat_BCT, cond)[..., : 1 + pl.obs_dim]).float().numpy()
        xy_NHD = x[..., 1:][..., P]
        H = xy_NHD.shape[1]
        rel = {}
        for h in (8, 16, 32, H - 1):
            m = xy_NHD[:, h].mean(0)
            rel[h] = dict(to_goal=float(np.linalg.norm(m - oo[G])), to_agent=float(np.linalg.norm(m - oo[P])),
                          spread=float(np.linalg.norm(xy_NHD[:, h].std(0))))
        row[name] = dict(rtg=float(rtg_N[0]), end_xy_minus_agent=(xy_NHD[:, H - 1].mean(0) - oo[P]).round(2).tolist(),
                         goal_minus_agent=(oo[G] - oo[P]).round(2).tolist(), steps=rel)
    out.append(row)
    print(json.dumps(row))
