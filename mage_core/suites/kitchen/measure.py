"""Measure the kitchen's scripted controller: per sub-task (and for a sequence), the share of episodes the env counts
done, from jittered starts with noisy actions (`python -m mage_core.suites.kitchen.measure`)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from mage_core.suites.kitchen.tasks import D4RL_TARGETS, EVAL_STEPS, SUBTASKS, check_subtasks, make_task


def run_episode(sequence, seed: int, jitter: float, noise: float, steps: int = EVAL_STEPS) -> dict:
    """One episode of the controller performing `sequence` (the env's targets), env seed `seed`: which sub-tasks the
    env counted done, in how many steps, and the controller's retries."""
    from mage_core.suites.kitchen import SUITE
    from mage_core.suites.kitchen.controller import ScriptedKitchen
    from mage_core.suites.kitchen.env import jitter_start

    task = make_task(sequence, name="kitchen-measure")
    env = SUITE.make_env(task, mode="eval", max_episode_steps=steps)
    try:
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        if jitter > 0:
            obs = jitter_start(env, rng, jitter)
        ctl = ScriptedKitchen(env.unwrapped.model, sequence, targets=sequence, noise=noise, rng=rng)
        info, t = {"episode_task_completions": []}, 0
        for t in range(1, steps + 1):
            obs, _, term, trunc, info = env.step(ctl.act(obs))
            if term or trunc:
                break
        return {"done": list(info["episode_task_completions"]), "steps": t,
                "retries": sum(1 for e in ctl.log if e[2] == "retry")}
    finally:
        env.close()


def measure(names, episodes: int, jitter: float, noise: float, sequence: bool = False) -> list[dict]:
    """Per sub-task (or, with `sequence`, for the names performed in order in one episode): episodes the env counted
    done, mean and most steps, retries."""
    runs = [tuple(names)] if sequence else [(n,) for n in names]
    rows = []
    for seq in runs:
        res = [run_episode(seq, s, jitter, noise) for s in range(episodes)]
        rows.append({"sub-tasks": ", ".join(seq), "episodes": episodes,
                     "done": sum(len(r["done"]) == len(seq) for r in res),
                     "mean_steps": float(np.mean([r["steps"] for r in res])),
                     "max_steps": int(max(r["steps"] for r in res)), "retries": sum(r["retries"] for r in res)})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m mage_core.suites.kitchen.measure", description=__doc__)
    p.add_argument("--episodes", type=int, default=20, help="episodes per sub-task (default 20)")
    p.add_argument("--jitter", type=float, default=0.1, help="rad: uniform +- start jitter on the arm's joints")
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian action noise")
    p.add_argument("--subtasks", default=",".join(SUBTASKS), help="comma-separated sub-tasks (default: all seven)")
    p.add_argument("--sequence", action="store_true",
                   help="perform the sub-tasks in order in one episode (default with no --subtasks: D4RL's four)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the table as JSON (the form of docs/results: table, command, machine, results)")
    a = p.parse_args(argv)
    names = check_subtasks(s.strip() for s in a.subtasks.split(","))
    if a.sequence and a.subtasks == p.get_default("subtasks"):
        names = D4RL_TARGETS
    t0 = time.perf_counter()
    rows = measure(names, a.episodes, a.jitter, a.noise, a.sequence)
    print(f"{'sub-tasks':48s} {'done':>8s} {'steps':>11s} {'retries':>8s}")
    for r in rows:
        print(f"{r['sub-tasks']:48s} {r['done']:>3d}/{r['episodes']:<4d} {r['mean_steps']:5.0f} ({r['max_steps']:3d}) "
              f"{r['retries']:>8d}")
    print(f"jitter +-{a.jitter} rad, action noise N(0, {a.noise}), {time.perf_counter() - t0:.0f} s")
    if a.json:
        record = {"table": "kitchen scripted controller: episodes the env counted done per sub-task",
                  "command": "python -m mage_core.suites.kitchen.measure " + " ".join(argv if argv is not None
                                                                                       else sys.argv[1:]),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "results": {r["sub-tasks"]: {"controller": {k: v for k, v in r.items() if k != "sub-tasks"}}
                              for r in rows},
                  "notes": f"start jitter +-{a.jitter} rad on the arm's joints, action noise N(0, {a.noise}); "
                           f"'done' counts episodes whose env task-completion signal listed every sub-task"}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
