"""`mage plan`: one plan from a start (maze: a start and goal point; robots: an evaluation reset or a dataset state),
drawn per scale over the task's scene — xy paths in a maze, ghost robots and key-point paths elsewhere."""
from __future__ import annotations

import argparse
import json

import numpy as np


def _xy(v: str):
    try:
        x, y = (float(t) for t in v.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y (two numbers), got {v!r}") from None
    return np.array([x, y])


def _state(v: str):
    try:
        ep, step = (int(t) for t in v.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EPISODE:STEP (two integers), got {v!r}") from None
    return ep, step


def split_negative_points(argv: list[str], flags=("--start", "--goal")) -> list[str]:
    """'--goal -1,-1' -> '--goal=-1,-1': argparse takes a value starting with '-' for an option, not for a flag's value."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags and i + 1 < len(argv) and argv[i + 1].startswith("-") and "," in argv[i + 1]:
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def register(sub) -> None:
    p = sub.add_parser("plan", help="plan once and draw each scale's plan to a PNG",
                       description="Plans once with a MAGE checkpoint and draws the trajectory decoded after each "
                       "scale (coarse to fine, one colour per scale). Maze tasks: from a start position (at rest) "
                       "towards a goal, over a top-down render of the maze. Other MuJoCo tasks: from an evaluation "
                       "reset (--reset-seed) or a dataset state (--state EPISODE:STEP), as translucent ghost robots "
                       "along each scale's plan with its key-point paths (palm, object, torso).")
    p.add_argument("--checkpoint", required=True, help="MAGE checkpoint (.pt)")
    p.add_argument("--start", type=_xy, help="maze: start x,y in world units, e.g. --start -1,-1 (default: the "
                   "evaluation start)")
    p.add_argument("--goal", type=_xy, help="maze: goal x,y in world units (default: the evaluation goal)")
    p.add_argument("--reset-seed", type=int, default=0, help="robots: plan from the evaluation env reset with this "
                   "seed (default 0)")
    p.add_argument("--state", type=_state, default=None, help="robots: plan from this dataset state, EPISODE:STEP "
                   "(needs the checkpoint's dataset locally)")
    p.add_argument("--rtg", type=float, default=None, help="RTG target (default: top of the data's range; targets "
                   "outside it, or above what the data supports from the start, are limited and the limit is printed)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--png", default="plan.png", help="output image (default plan.png)")
    p.add_argument("--size", default="800x600", help="image size WxH (default 800x600)")
    p.add_argument("--json", action="store_true", help="print the plan (tokens, per-scale states, action) as JSON")
    p.set_defaults(func=cmd_plan)


def start_observation(planner, args) -> tuple[np.ndarray, dict]:
    """The observation to plan from, and the editable points (maze start/goal) it was built from."""
    from mage_core.errors import MageError

    task, suite = planner.task, planner.task.suite
    if suite.editable(task).points:
        pts = suite.default_points(task)
        if args.start is not None:
            pts["start"] = args.start
        if args.goal is not None:
            pts["goal"] = args.goal
        for k, v in pts.items():
            suite.check_point(task, k, v)
        return suite.condition_obs(task, pts, planner.obs_dim), pts
    if args.start is not None or args.goal is not None:
        raise MageError(f"--start/--goal place points in a maze; {task.name} starts from --reset-seed or --state")
    if args.state is not None:
        from mage_core.data.store import load_episodes

        ds_id = (planner.ckpt_meta.get("dataset") or {}).get("id") or task.dataset_id
        _, episodes, _ = load_episodes(ds_id)
        ep, step = args.state
        if not (0 <= ep < len(episodes)) or not (0 <= step <= episodes[ep].length):
            raise MageError(f"--state {ep}:{step} is outside the dataset ({len(episodes)} episodes)")
        return episodes[ep].obs_TD[step].astype(np.float32), {}
    env = task.make_env(mode="eval")
    try:
        obs, _ = env.reset(seed=args.reset_seed)
    finally:
        env.close()
    return task.flatten_obs(obs), {}


def cmd_plan(args) -> int:
    from mage_core.errors import MageError
    from mage_core.planner import Planner
    from mage_core.render import render_plan_png

    import torch

    torch.set_num_threads(1)  # batch-1 planning is latency-bound; more threads only add contention
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise MageError(f"--size must look like 800x600, got {args.size!r}") from None
    planner = Planner.from_checkpoint(args.checkpoint)
    task = planner.task
    obs, pts = start_observation(planner, args)
    rtg = planner.rtg_range[1] if args.rtg is None else args.rtg
    plan = planner.plan(obs, rtg, seed=args.seed)
    note = ""
    if args.rtg is not None and plan.clamped:
        lo, hi = planner.rtg_range
        note = (f"note: RTG target {args.rtg:g} was limited to {plan.condition_rtg:.1f} (data range [{lo:g}, {hi:g}]"
                + (f", feasible from this start ≤ {plan.rtg_ceiling:.1f}" if plan.rtg_ceiling is not None else "") + ")")
    try:
        render_plan_png(task, plan, None, pts.get("start"), pts.get("goal"), args.png, size=(w, h), start_obs=obs)
    except MageError as exc:
        raise MageError(f"planned, but the scene cannot be drawn for {task.name}: {exc}") from None
    if args.json:
        xy_KH2 = task.suite.agent_point(task, plan.states_KHD)
        xy = {} if xy_KH2 is None else {"xy": xy_KH2.round(3).tolist()}
        print(json.dumps(dict(task=task.name, scales=plan.scales, **xy, tokens=[t.tolist() for t in plan.tokens],
                              states=[s.round(4).tolist() for s in plan.states_KHD], rtg=plan.rtg_KH.round(2).tolist(),
                              action=plan.action_A.tolist(), condition_rtg=plan.condition_rtg,
                              requested_rtg=plan.requested_rtg, rtg_ceiling=plan.rtg_ceiling, timings_ms=plan.timings_ms)))
    else:
        if note:
            print(note)
        where = ""
        if "goal" in pts and task.suite.goal_reaching(task):
            end, goal = task.suite.agent_point(task, plan.states_KHD[-1, -1]), pts["goal"]
            where = f"finest plan ends at ({end[0]:.2f}, {end[1]:.2f}); goal ({goal[0]:.2f}, {goal[1]:.2f}); "
        print(f"plan with {len(plan.scales)} scales {plan.scales}: action {np.round(plan.action_A, 3).tolist()}, "
              f"{where}{plan.timings_ms['total']:.1f} ms; wrote {args.png}")
    return 0
