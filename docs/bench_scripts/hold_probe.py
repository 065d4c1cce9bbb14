"""Issue 14 diagnostic: what a goal-reaching MAGE checkpoint conditions on and plans once it has reached the goal and
drifted out of it. Runs EPISODES evaluation episodes (env seed = episode index) with the checkpoint's own policy and,
at every step after the first reward that earns none, prints (sampled) the agent's distance to the goal, the RTG
condition the model got, the finest plan's distance to the goal 1 / 4 / 12 / 32 / H-1 steps ahead, and the action.
Works on any goal-reaching suite (the agent's and goal's xy come from Suite.agent_point / goal_point).

usage: python docs/bench_scripts/hold_probe.py CKPT [EPISODES] [--regoal-steps N]"""
import argparse

import numpy as np
import torch

from mage_core.errors import MageError
from mage_core.policies import load_policy

ap = argparse.ArgumentParser()
ap.add_argument("ckpt")
ap.add_argument("episodes", type=int, nargs="?", default=3)
ap.add_argument("--regoal-steps", type=int, default=None, help="the condition cap after leaving the goal (default: "
                "the planner's)")
a = ap.parse_args()
torch.set_num_threads(1)
try:
    policy, task, _ = load_policy(a.ckpt, device="cpu", seed=0, regoal_steps=a.regoal_steps)
except MageError as exc:
    raise SystemExit(f"hold_probe.py: {exc}") from None
suite = task.suite
if not suite.goal_reaching(task):
    raise SystemExit(f"{task.name}: not a goal-reaching task (no agent and goal xy in its observation)")
policy.keep_plan = True
H = policy.planner.horizon
ahead = [k for k in (1, 4, 12, 32, H - 1) if k < H]
for ep in range(a.episodes):
    env = task.make_env(mode="eval")
    obs, _ = env.reset(seed=ep)
    policy.reset(1)
    reward, reached, rows = 0.0, None, []
    for t in range(task.eval_steps):
        o_1D = task.flatten_obs(obs)[None]
        act = policy.act(o_1D, np.array([reward]))[0]
        plan = policy.last_plan
        pos, goal = suite.agent_point(task, o_1D[0]), suite.goal_point(task, o_1D[0])
        obs, reward, *_ = env.step(act)
        reward = float(reward)
        if reward > 0 and reached is None:
            reached = t
        if reached is not None and reward <= 0:
            fin_H2 = suite.agent_point(task, plan.states_KHD[-1])
            rows.append((t, float(np.linalg.norm(pos - goal)), plan.condition_rtg,
                         [float(np.linalg.norm(fin_H2[k] - goal)) for k in ahead], [round(float(x), 2) for x in act]))
    env.close()
    print(f"episode {ep}: first reward at step {reached}, {len(rows)} later steps without reward")
    for t, d, c, dp, act in rows[:: max(1, len(rows) // 6)][:6]:
        print(f"  step {t}: distance {d:.2f}, condition {c:.0f}, plan's distance {ahead} steps ahead "
              f"{np.round(dp, 2).tolist()}, action {act}")
