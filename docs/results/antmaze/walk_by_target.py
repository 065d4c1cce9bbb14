"""How far and how soon an AntMaze checkpoint's closed loop walks at each RTG target: return, closest approach to
the goal, the step of the first reward, the torso's path length, per target (10 evaluation episodes of seed 0).

    python docs/results/antmaze/walk_by_target.py CKPT [CKPT ...] --targets 0,150,300,450,700 --out FILE.json
"""
import argparse
import json
from pathlib import Path

import numpy as np

from mage_core.evaluate import evaluate
from mage_core.policies import load_policy


def walk(checkpoint: str, target: float, episodes: int) -> dict:
    """One target's closed-loop episodes, summarised from their recorded observations."""
    policy, task, _ = load_policy(checkpoint, rtg_target=target, seed=0)
    res = evaluate(task, policy, episodes=episodes, seeds=(0,), record=True)
    suite = task.suite
    closest, first, path = [], [], []
    for ep in res.extra["episodes"]:
        xy_T2 = suite.agent_point(task, ep["obs_TD"])
        goal_2 = suite.goal_point(task, ep["obs_TD"][0])
        closest.append(float(np.linalg.norm(xy_T2 - goal_2, axis=1).min()))
        hits = np.flatnonzero(ep["rewards_T"] > 0)
        first.append(int(hits[0]) + 1 if len(hits) else None)
        path.append(float(np.linalg.norm(np.diff(xy_T2, axis=0), axis=1).sum()))
    return {"target": target, "return_mean": float(np.mean(res.returns)), "closest_to_goal_mean": float(np.mean(closest)),
            "first_reward_step": first, "path_mean": float(np.mean(path)), "episodes": episodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--targets", default="0,150,300,450,700")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = {"command": "python docs/results/antmaze/walk_by_target.py " + " ".join(a.checkpoints)
           + f" --targets {a.targets} --episodes {a.episodes} --out {a.out}", "rows": []}
    for ck in a.checkpoints:
        for t in (float(x) for x in a.targets.split(",")):
            row = dict(checkpoint=ck, **walk(ck, t, a.episodes))
            out["rows"].append(row)
            print(f"{Path(ck).name} target {t:g}: return {row['return_mean']:.0f}, path {row['path_mean']:.1f}, "
                  f"closest {row['closest_to_goal_mean']:.2f}, first reward {row['first_reward_step']}", flush=True)
            Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
