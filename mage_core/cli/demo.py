"""`mage demo`: headless out-of-the-box run — plan and execute the bundled checkpoint, write a PNG, print the score."""
from __future__ import annotations

import time

import numpy as np

from mage_core.bundled import CHECKPOINT_DIR, DEFAULT_TASK, bundled_checkpoint


def register(sub) -> None:
    p = sub.add_parser("demo", help="headless demo: plan and run the bundled checkpoint, write a PNG, print the score",
                       description="Loads the bundled checkpoint (checkpoints/<task>.pt), plans from the evaluation "
                       "start, runs one closed-loop episode with replanning every step, writes a PNG with each "
                       "scale's first plan and the executed path, and prints the episode's score.")
    p.add_argument("--task", default=DEFAULT_TASK, help=f"task of the bundled checkpoint (default {DEFAULT_TASK})")
    p.add_argument("--checkpoint", default=None, help="use this checkpoint instead of the bundled one")
    p.add_argument("--rtg", type=float, default=None, help="RTG target (default: top of the data's range)")
    p.add_argument("--seed", type=int, default=0, help="episode and sampling seed (default 0)")
    p.add_argument("--png", default="mage-demo.png", help="output image (default mage-demo.png)")
    p.add_argument("--pair", default=None, metavar="FILE.gif",
                   help="instead: run a low and a high RTG target from the same start and write them side by side "
                        "as FILE.gif (and its last frame as FILE.png) — the controllability demo for a slide")
    p.add_argument("--low", type=float, default=None, help="--pair: the low target (default: the data's lowest return)")
    p.add_argument("--high", type=float, default=None,
                   help="--pair: the high target (default: the data's highest return)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from mage_core.errors import MageError
    from mage_core.evaluate import EvalResult
    from mage_core.planner import Planner
    from mage_core.render import render_plan_png

    if not args.checkpoint:
        from mage_core.tasks import get_task

        get_task(args.task)  # an unknown task: the error lists the known ones
    ckpt = args.checkpoint or bundled_checkpoint(args.task)
    if ckpt is None:
        raise MageError(f"no bundled checkpoint for {args.task} in {CHECKPOINT_DIR}; train one with "
                        f"`mage train --task {args.task}` and pass --checkpoint")
    t0 = time.perf_counter()
    if args.pair:
        return _demo_pair(args, ckpt, t0)
    import torch

    torch.set_num_threads(1)  # batch-1 planning is latency-bound; more threads only add contention
    planner = Planner.from_checkpoint(ckpt)
    task = planner.task
    target = planner.rtg_range[1] if args.rtg is None else planner.clamp_rtg(args.rtg)
    env = task.make_env(mode="eval")
    obs, _ = env.reset(seed=args.seed)
    o = task.flatten_obs(obs)
    first = planner.plan(o, target, seed=args.seed)
    policy = planner.policy(target, seed=args.seed)
    policy.reset(1)
    suite = task.suite
    floor = suite.draws_floor_path(task)  # the path is an xy trail on the floor (mazes), else a key point's 3-D path
    model = env.unwrapped.model
    track = suite.key_point_names(task)[:1]  # the first key point's executed path (agent xy, palm, torso)

    def where(o_D):
        if floor:
            return suite.agent_point(task, o_D)
        if track and suite.can_pose(task, model, len(o_D)):
            return suite.key_points(task, model, o_D[None])[track[0]][0]
        return None

    path, ret, reward, success, lat = [where(o)], 0.0, 0.0, False, []
    for _ in range(task.eval_steps):
        t1 = time.perf_counter()
        a = policy.act(o[None], np.array([reward]))[0]
        lat.append(1e3 * (time.perf_counter() - t1))
        obs, reward, term, trunc, info = env.step(a)
        o = task.flatten_obs(obs)
        path.append(where(o))
        ret += reward
        success |= bool(info.get("success"))
        if term or trunc:
            break
    env.close()
    from mage_core.policies import checkpoint_ref_scores

    ref = checkpoint_ref_scores(planner.ckpt_meta, task)
    res = EvalResult(task.name, [ret], [args.seed], [success], *(ref or (None, None)), task.eval_steps)
    path = None if path[0] is None else np.array(path)
    start = path[0] if floor else None
    goal = suite.goal_point(task, o) if floor else None
    render_plan_png(task, first, path, start, goal, args.png, start_obs=first.states_KHD[-1, 0])
    print(f"checkpoint {ckpt} ({task.name}, {len(planner.scales)} scales {planner.scales})")
    print(f"RTG target {target:g}; episode return {ret:.0f}" +
          (f" = {res.normalised_mean:.1f} normalised" if res.normalised_mean is not None else "") +
          (f"; reached goal: {'yes' if success else 'no'}" if suite.reports_success(task) else "")
          + f"; median plan+act {np.median(lat):.2f} ms")
    print(f"wrote {args.png} (per-scale first plan, coarse→fine colours, and the executed path) "
          f"in {time.perf_counter() - t0:.1f}s")
    return 0


def _demo_pair(args, ckpt, t0: float) -> int:
    import torch

    from mage_core.progress import ProgressBar
    from mage_core.target_pair import write_target_pair

    torch.set_num_threads(1)
    bar = ProgressBar(1, label="low / high target pair")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done)

    r = write_target_pair(ckpt, args.pair, low=args.low, high=args.high, seed=args.seed, progress=progress)
    bar.close()
    for run, which in zip(r["runs"], ("low", "high")):
        norm = "" if run["normalised"] is None else f" = {run['normalised']:.1f} normalised"
        print(f"{which:4s} target {run['target']:10.1f}: return {run['episode_return']:10.1f}{norm} "
              f"({run['steps']} steps)")
    print(f"wrote {r['gif']} ({r['frames']} frames) and {r['png']} in {time.perf_counter() - t0:.1f}s")
    return 0
