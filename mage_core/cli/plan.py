"""`mage plan`: one plan from a start and goal, drawn per scale over a top-down render of the maze."""
from __future__ import annotations

import json

import numpy as np


def _xy(v: str):
    try:
        x, y = (float(t) for t in v.split(","))
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"expected x,y (two numbers), got {v!r}") from None
    return np.array([x, y])


def register(sub) -> None:
    p = sub.add_parser("plan", help="plan once and draw each scale's plan to a PNG",
                       description="Plans from a start position (at rest) towards a goal with a MAGE checkpoint and "
                       "draws the trajectory decoded after each scale (coarse to fine, one colour per scale) over a "
                       "top-down render of the maze.")
    p.add_argument("--checkpoint", required=True, help="MAGE checkpoint (.pt)")
    p.add_argument("--start", type=_xy, help="start x,y in world units, e.g. --start=-1,-1 (default: the evaluation start)")
    p.add_argument("--goal", type=_xy, help="goal x,y in world units (default: the evaluation goal)")
    p.add_argument("--rtg", type=float, default=None, help="RTG target (default: top of the data's range; clamped)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--png", default="plan.png", help="output image (default plan.png)")
    p.add_argument("--size", default="800x600", help="image size WxH (default 800x600)")
    p.add_argument("--json", action="store_true", help="print the plan (tokens, per-scale xy, action) as JSON")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from mage_core.errors import MageError
    from mage_core.planner import Planner
    from mage_core.render import render_plan_png

    import torch

    torch.set_num_threads(1)  # batch-1 planning is latency-bound; more threads only add contention
    planner = Planner.from_checkpoint(args.checkpoint)
    task = planner.task
    if not task.is_maze:
        raise MageError(f"`mage plan` draws maze tasks; {task.name} is not one")
    g = task.geometry
    start = args.start if args.start is not None else g.cell_to_xy(task.eval_start_cell)
    goal = args.goal if args.goal is not None else g.cell_to_xy(task.eval_goal_cell)
    g.check_free(start, "start")
    g.check_free(goal, "goal")
    obs = np.array([start[0], start[1], 0.0, 0.0, goal[0], goal[1]], np.float32)
    rtg = planner.rtg_range[1] if args.rtg is None else args.rtg
    plan = planner.plan(obs, rtg, seed=args.seed)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise MageError(f"--size must look like 800x600, got {args.size!r}") from None
    render_plan_png(task, plan, None, start, goal, args.png, size=(w, h))
    if args.json:
        print(json.dumps(dict(scales=plan.scales, tokens=[t.tolist() for t in plan.tokens],
                              xy=[s[:, :2].round(3).tolist() for s in plan.states_KHD], rtg=plan.rtg_KH.round(2).tolist(),
                              action=plan.action_A.tolist(), condition_rtg=plan.condition_rtg, timings_ms=plan.timings_ms)))
    else:
        end = plan.states_KHD[-1, -1, :2]
        print(f"plan with {len(plan.scales)} scales {plan.scales}: action {np.round(plan.action_A, 3).tolist()}, "
              f"finest plan ends at ({end[0]:.2f}, {end[1]:.2f}); goal ({goal[0]:.2f}, {goal[1]:.2f}); "
              f"{plan.timings_ms['total']:.1f} ms; wrote {args.png}")
    return 0
