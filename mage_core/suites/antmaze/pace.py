"""How the data controller's gait speed (its actions scaled) changes arrival, flips and return on the evaluation route.

    python -m mage_core.suites.antmaze.pace [--size umaze] [--scales 1,0.8,0.6,0.4,0.3] [--episodes 6] [--out FILE]

The measurement behind the 'paced' data variant (AntMazeRecipe.pace_range): per action scale, episodes of the
evaluation protocol (fixed start and goal cells, the continuing task's full length) walked by the waypoint follower,
noise-free and with the data recipe's action noise and waypoint jitter.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mage_core.errors import MageError


def walk(task, scale: float, seed: int, noise: float = 0.0, jitter: float = 0.0, steps: int | None = None) -> dict:
    """One evaluation episode at one gait speed: return, first step inside the goal radius, first step upside down,
    mean torso speed (m per step) until that first reward (or the end)."""
    from mage_core.suites.antmaze.expert import WaypointFollower
    from mage_core.suites.antmaze.tasks import up_z
    from mage_core.suites.pointmaze import geometry

    follower = WaypointFollower(geometry(task), task.suite.controller(), jitter, noise, np.random.default_rng(seed))
    env = task.make_env(mode="eval")
    try:
        obs, _ = env.reset(seed=seed, options={"reset_cell": np.array(task.params["eval_start_cell"]),
                                               "goal_cell": np.array(task.params["eval_goal_cell"])})
        total, first_hit, flip, moved = 0.0, None, None, 0.0
        n = int(steps or task.eval_steps)
        for t in range(n):
            qpos = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
            xy = obs["achieved_goal"].copy()
            a = follower(qpos, obs["observation"][13:27], obs["desired_goal"]) * np.float32(scale)
            obs, r, *_ = env.step(a)
            total += float(r)
            if first_hit is None:
                moved += float(np.linalg.norm(obs["achieved_goal"] - xy))
            if r > 0 and first_hit is None:
                first_hit = t
            if flip is None and up_z(obs["observation"][:13]) < 0:
                flip = t
    finally:
        env.close()
    way = n if first_hit is None else first_hit + 1
    return {"return": total, "first_hit": first_hit, "flip": flip, "speed": moved / way}


def measure(task, scales, episodes: int, noise: float, jitter: float, steps: int | None = None) -> list[dict]:
    """One row per scale: the episodes and their summary (mean return, flips, median first hit, mean speed)."""
    rows = []
    for s in scales:
        eps = [walk(task, s, seed, noise, jitter, steps) for seed in range(episodes)]
        hits = [e["first_hit"] for e in eps if e["first_hit"] is not None]
        rows.append({"scale": float(s), "mean_return": float(np.mean([e["return"] for e in eps])),
                     "flips": sum(e["flip"] is not None for e in eps), "reached": len(hits),
                     "median_first_hit": float(np.median(hits)) if hits else None,
                     "mean_speed": float(np.mean([e["speed"] for e in eps])), "episodes": eps})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mage_core.suites.antmaze.pace", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="umaze", help="maze: umaze, medium or large (default umaze)")
    p.add_argument("--scales", default="1,0.8,0.6,0.4,0.3", help="comma-separated action scales in (0, 1]")
    p.add_argument("--episodes", type=int, default=6, help="episodes per scale and noise setting (seeds 0..n-1)")
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    from mage_core.suites.antmaze.data import AntMazeRecipe
    from mage_core.tasks import get_task

    try:
        scales = [float(x) for x in args.scales.split(",")]
        if not scales or not all(0 < s <= 1 for s in scales) or args.episodes < 1:
            raise ValueError
        task = get_task(f"antmaze-{args.size}")
    except ValueError:
        print("error: --scales must be numbers in (0, 1] and --episodes at least 1", file=sys.stderr)
        return 2
    except MageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rc = AntMazeRecipe()
    out = {"task": task.name, "episode_steps": task.eval_steps, "settings": {}}
    for name, noise, jitter in (("noise-free", 0.0, 0.0), ("data recipe", rc.action_noise, rc.waypoint_jitter)):
        rows = measure(task, scales, args.episodes, noise, jitter)
        out["settings"][name] = {"action_noise": noise, "waypoint_jitter": jitter, "rows": rows}
        print(f"{task.name}, {name} (action noise {noise}, jitter {jitter} m), {args.episodes} episodes per scale:")
        for r in rows:
            hit = "-" if r["median_first_hit"] is None else f"{r['median_first_hit']:.0f}"
            print(f"  scale {r['scale']:.2f}: return {r['mean_return']:6.1f}, reached {r['reached']}/{args.episodes}, "
                  f"flipped {r['flips']}/{args.episodes}, first reward at step {hit} (median), "
                  f"speed on the way {r['mean_speed']:.3f} m/step")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
