"""Which of the kitchen's seven sub-tasks (rewarded or not) a checkpoint's closed loop completes at each RTG target.

    python docs/results/kitchen/subtasks_by_target.py checkpoints/kitchen.pt --targets 0,0.8,1.6,2.4,3.2,4 --episodes 10
"""
import argparse
import json
from pathlib import Path

import numpy as np

from mage_core.evaluate import evaluate
from mage_core.policies import load_policy
from mage_core.suites.kitchen.tasks import COMPLETION_THRESHOLD, GOAL_QPOS, GOALS, OBS_OF_QPOS


def completed(obs_TD: np.ndarray) -> list[str]:
    """The sub-tasks whose joints came within the env's threshold of their goal at any step of an episode."""
    out = []
    for name, idx in GOAL_QPOS.items():
        q_TJ = obs_TD[:, [i + OBS_OF_QPOS for i in idx]]
        if (np.linalg.norm(q_TJ - np.array(GOALS[name]), axis=1) < COMPLETION_THRESHOLD).any():
            out.append(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--targets", default="0,0.8,1.6,2.4,3.2,4")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).with_name("subtasks-by-target.json")))
    args = ap.parse_args()
    out = Path(args.out)
    table = json.loads(out.read_text()) if out.is_file() else {}
    table.update(checkpoint=args.checkpoint, episodes=args.episodes, seed=args.seed,
                 command=f"python docs/results/kitchen/subtasks_by_target.py {args.checkpoint} --targets {args.targets} "
                         f"--episodes {args.episodes}")
    rows = table.setdefault("rows", {})
    for rtg in [float(t) for t in args.targets.split(",")]:
        policy, task, _ = load_policy(args.checkpoint, rtg_target=rtg, seed=args.seed)
        res = evaluate(task, policy, episodes=args.episodes, seeds=(args.seed,), record=True)
        per_episode = [completed(ep["obs_TD"]) for ep in res.extra["episodes"]]
        counts = {name: sum(name in ep for ep in per_episode) for name in GOALS}
        rows[f"{rtg:g}"] = {"return_mean": float(np.mean(res.returns)), "episodes_completing": counts,
                           "per_episode": per_episode}
        print(f"target {rtg:g}: return {np.mean(res.returns):.2f}; episodes completing each sub-task {counts}",
              flush=True)
        out.write_text(json.dumps(table, indent=1) + "\n")  # each target kept as it finishes


if __name__ == "__main__":
    main()
