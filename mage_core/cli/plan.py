"""`mage plan`: one plan from a start (maze: a start and goal point; robots: an evaluation reset or a dataset state),
drawn per scale over the task's scene — xy paths in a maze, ghost robots and key-point paths elsewhere."""
from __future__ import annotations

import argparse
import json
import os

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
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write the plan (tokens, per-scale states, action) as JSON to FILE, or print it when FILE is "
                   "'-' or left out (then stdout holds the JSON only)")
    p.add_argument("--alternatives", type=int, default=0, metavar="N",
                   help="plan N alternatives whose coarse scales 1..--scale differ (the most likely distinct ones of "
                   "many sampled), each completed to the finest scale; the PNG draws each one's finest plan in its own "
                   "colour and the JSON lists them, most likely first")
    p.add_argument("--scale", type=int, default=2, metavar="K",
                   help="with --alternatives: the scale up to which the alternatives differ (default 2)")
    p.set_defaults(func=cmd_plan)


def start_observation(planner, args) -> tuple[np.ndarray, dict]:
    """The observation to plan from, and the editable points (maze start/goal) it was built from."""
    from mage_core.errors import UsageError

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
        raise UsageError(f"--start/--goal place points in a maze; {task.name} starts from --reset-seed or --state")
    if args.state is not None:
        from mage_core.data.store import load_episodes

        ds_id = (planner.ckpt_meta.get("dataset") or {}).get("id") or task.dataset_id
        _, episodes, _ = load_episodes(ds_id)
        ep, step = args.state
        if not (0 <= ep < len(episodes)) or not (0 <= step <= episodes[ep].length):
            raise UsageError(f"--state {ep}:{step} is outside the dataset ({len(episodes)} episodes)")
        return episodes[ep].obs_TD[step].astype(np.float32), {}
    env = task.make_env(mode="eval")
    try:
        obs, _ = env.reset(seed=args.reset_seed)
    finally:
        env.close()
    return task.flatten_obs(obs), {}


def cmd_plan(args) -> int:
    from mage_core.errors import UsageError
    from mage_core.planner import Planner
    from mage_core.render import scale_colors

    import torch

    torch.set_num_threads(1)  # batch-1 planning is latency-bound; more threads only add contention
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 800x600, got {args.size!r}") from None
    if args.alternatives < 0:
        raise UsageError(f"--alternatives must be 1 or more, got {args.alternatives}")
    planner = Planner.from_checkpoint(args.checkpoint)
    task = planner.task
    obs, pts = start_observation(planner, args)
    rtg = planner.rtg_range[1] if args.rtg is None else args.rtg
    if args.alternatives:
        return _alternatives(args, planner, obs, pts, rtg, (w, h))
    plan = planner.plan(obs, rtg, seed=args.seed)
    note = ""
    if args.rtg is not None and plan.clamped:
        lo, hi = planner.rtg_range
        note = (f"note: RTG target {args.rtg:g} was limited to {plan.condition_rtg:.1f} (data range [{lo:g}, {hi:g}]"
                + (f", feasible from this start ≤ {plan.rtg_ceiling:.1f}" if plan.rtg_ceiling is not None else "") + ")")
    used = f" (used {plan.condition_rtg:.1f})" if plan.clamped else ""
    caption = [f"MAGE plan · {task.name} · {os.path.basename(args.checkpoint)} · sampling seed {args.seed}",
               f"RTG target {rtg:g}{used} · {_start_text(args, pts)} · {len(plan.scales)} scales, coarse to fine · "
               f"{plan.timings_ms['total']:.0f} ms"]
    rows = [(f"scale {k + 1}: {p} token{'s' if p != 1 else ''}", c)
            for k, (p, c) in enumerate(zip(plan.scales, scale_colors(len(plan.scales))))]
    _write_figure(task, plan, pts, obs, args.png, (w, h), caption, rows)
    if args.json is not None:
        _write_json(args.json, plan_record(task, plan))
    if args.json != "-":
        if note:
            print(note)
        where = ""
        if "goal" in pts and task.suite.goal_reaching(task):
            end, goal = task.suite.agent_point(task, plan.states_KHD[-1, -1]), pts["goal"]
            where = f"finest plan ends at ({end[0]:.2f}, {end[1]:.2f}); goal ({goal[0]:.2f}, {goal[1]:.2f}); "
        print(f"plan with {len(plan.scales)} scales {plan.scales}: action {np.round(plan.action_A, 3).tolist()}, "
              f"{where}{plan.timings_ms['total']:.1f} ms; wrote {args.png}" + _json_note(args.json))
    return 0


def plan_record(task, plan) -> dict:
    """One plan as JSON: tokens and decoded states per scale, the agent's xy where the task has one, the action, the
    RTG condition, what was held, timings."""
    xy_KH2 = task.suite.agent_point(task, plan.states_KHD)
    xy = {} if xy_KH2 is None else {"xy": xy_KH2.round(3).tolist()}
    return dict(task=task.name, scales=plan.scales, **xy, tokens=[t.tolist() for t in plan.tokens],
                states=[s.round(4).tolist() for s in plan.states_KHD], rtg=plan.rtg_KH.round(2).tolist(),
                action=plan.action_A.tolist(), condition_rtg=plan.condition_rtg, requested_rtg=plan.requested_rtg,
                rtg_ceiling=plan.rtg_ceiling, held_scales=plan.held_scales, prefix_logprob=plan.prefix_logprob,
                timings_ms=plan.timings_ms)


def _alternatives(args, planner, obs, pts, rtg, size) -> int:
    """`mage plan --alternatives N --scale K`: the alternatives drawn together and listed."""
    from mage_core.errors import UsageError
    from mage_core.render import scale_colors

    task, K = planner.task, len(planner.scales)
    if not 1 <= args.scale <= K:
        raise UsageError(f"--scale must be from 1 to {K} (the checkpoint's scales), got {args.scale}")
    alts = planner.alternatives(obs, rtg, scale=args.scale, n=args.alternatives, seed=args.seed)
    states_NHD = np.stack([a.states_KHD[-1] for a in alts])  # each alternative's finest plan, drawn as one "scale"
    caption = [f"MAGE alternatives · {task.name} · {os.path.basename(args.checkpoint)} · sampling seed {args.seed}",
               f"{len(alts)} plans whose scales 1..{args.scale} differ, each completed to the finest scale · RTG "
               f"target {rtg:g} · {_start_text(args, pts)}"]
    rows = [(f"alternative {i + 1}" + (" (most likely)" if i == 0 else ""), c)
            for i, c in enumerate(scale_colors(len(alts)))]
    _write_figure(task, states_NHD, pts, obs, args.png, size, caption, rows,
                  scales=(planner.scales[-1],) * len(alts), ghost_scales=len(alts))
    goal = pts.get("goal")
    rows = []
    for i, a in enumerate(alts):
        rec = plan_record(task, a)
        rec.update(rank=i + 1, coarse_tokens=[t.tolist() for t in a.tokens[:args.scale]])
        end = task.suite.agent_point(task, a.states_KHD[-1])
        if end is not None and goal is not None:
            rec["closest_to_goal"] = float(np.linalg.norm(end - goal, axis=1).min())
        rows.append(rec)
    if args.json is not None:
        _write_json(args.json, dict(task=task.name, scale=args.scale, asked=args.alternatives, seed=args.seed,
                                    alternatives=rows))
    if args.json != "-":
        print(f"{len(alts)} alternative{'s' if len(alts) != 1 else ''} differing at scales 1..{args.scale} "
              f"(asked for {args.alternatives}), most likely first:")
        for r in rows:
            near = f", closest to the goal {r['closest_to_goal']:.2f}" if "closest_to_goal" in r else ""
            print(f"  {r['rank']}: coarse tokens {r['coarse_tokens']}, log-probability {r['prefix_logprob']:.2f}, "
                  f"action {np.round(r['action'], 3).tolist()}{near}")
        print(f"wrote {args.png}" + _json_note(args.json))
    return 0


def _start_text(args, pts: dict) -> str:
    """Where the plan starts, as the caption says it."""
    if pts:
        return " ".join(f"{k} ({v[0]:.2f}, {v[1]:.2f})" for k, v in pts.items())
    if args.state is not None:
        return f"from dataset state {args.state[0]}:{args.state[1]}"
    return f"from the evaluation reset with seed {args.reset_seed}"


def _write_figure(task, plan_or_states, pts: dict, obs, png: str, size, caption: list, rows: list, **kw) -> None:
    """The plan over the task's scene with a legend (the scales' colours; start and goal; what the robot's lines and
    ghosts are) and a caption band under it, as a PNG."""
    from mage_core.errors import MageError
    from mage_core.render import GHOSTS_PER_SCALE, GOAL_RGBA, START_RGBA, render_plan, write_png
    from mage_core.video import caption_frame, legend_frame

    try:
        rgb = render_plan(task, plan_or_states, None, pts.get("start"), pts.get("goal"), size=size, start_obs=obs,
                          **kw)
    except MageError as exc:
        raise MageError(f"planned, but the scene cannot be drawn for {task.name}: {exc}") from None
    suite = task.suite
    if suite.draws_floor_path(task):
        rows = rows + [(name, rgba) for name, rgba in (("start", START_RGBA), ("goal", GOAL_RGBA)) if name in pts]
    else:
        names = ", ".join(suite.key_point_names(task))
        rows = rows + [(f"lines: the {names} path{'s' if ',' in names else ''}", None)]
        if suite.draws_ghosts:
            rows.append((f"ghosts: {GHOSTS_PER_SCALE} evenly spaced planned steps", None))
    write_png(png, caption_frame(legend_frame(rgb, rows), caption))


def _write_json(dest: str, record: dict) -> None:
    from mage_core.errors import MageError

    text = json.dumps(record)
    if dest == "-":
        print(text)
        return
    try:
        with open(dest, "w") as f:
            f.write(text)
    except OSError as exc:
        raise MageError(f"cannot write {dest}: {exc.strerror}") from None


def _json_note(dest) -> str:
    return f" and {dest}" if dest not in (None, "-") else ""
