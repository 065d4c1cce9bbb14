"""`mage eval` and `mage sweep-rtg`: score a checkpoint on the evaluation protocol and measure RTG controllability."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mage_core.cli.argtypes import non_negative_int, positive_int, seed_list
from mage_core.cli.output import add_json_option, human, write_json_output


def register(sub) -> None:
    e = sub.add_parser("eval", help="score a checkpoint on the task's evaluation protocol",
                       description="Runs the checkpoint closed-loop on its task's evaluation protocol (the suite's episode "
                       "length and start/goal rules, e.g. 300/600/800 steps on pointmaze umaze/medium/large, 700 on "
                       "antmaze-umaze, 200 on adroit-door) and prints the raw and normalised score with its standard "
                       "error over all episodes and seeds.")
    _common(e)
    e.add_argument("--rtg", type=float, default=None,
                   help="episode return target G (default: the top of the data's RTG range); conditions are limited "
                   "to the data's range and to what the data supports from each state")
    add_json_option(e)
    e.add_argument("--record", metavar="DIR", default=None,
                   help="also write one video per episode to DIR (episode-<seed>-<n>.mp4): the scene at every step "
                   "with the path so far and a caption (MP4 needs the video extra: pip install \"mage-studio[video]\"; "
                   "--record-format gif needs nothing more)")
    e.add_argument("--record-format", choices=("mp4", "gif"), default="mp4", help="--record: video format (default mp4)")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("diagnose", help="how evaluation episodes fail: time to the goal, time inside it, stalls",
                       description="Runs the evaluation protocol like `mage eval` and reports per episode, through the "
                       "task's suite, how it went beyond the return: for goal-reaching mazes the step the goal was "
                       "first reached, the share of the later steps spent inside the goal radius, how often the agent "
                       "left it, and for episodes that never arrived the maze cell where they stalled and how many "
                       "cells were left on the route.")
    _common(d)
    d.add_argument("--rtg", type=float, default=None, help="episode return target G (default: as `mage eval`)")
    add_json_option(d, "write the per-episode table (with --plans: the plan check) as JSON to FILE, or to stdout with "
                    "- (then pure JSON: the table goes to stderr)")
    d.add_argument("--plans", action="store_true",
                   help="instead of running episodes, check the plans themselves (seconds, mazes): sample plans from "
                   "states along the reference expert's route and report, per scale, the share that run into a wall")
    d.add_argument("--plan-samples", type=positive_int, default=16, help="--plans: plans sampled per route state (default 16)")
    d.add_argument("--plan-every", type=positive_int, default=10, help="--plans: plan from every n-th route state (default 10)")
    d.add_argument("--plan-episodes", type=positive_int, default=3,
                   help="--plans: expert episodes (evaluation seed --seeds' first) whose routes are used (default 3)")
    d.add_argument("--plan-threshold", type=float, default=0.25,
                   help="--plans: a plan is infeasible where it runs deeper than this into a wall, in cells "
                   "(default 0.25; the tokenizer's own reconstruction error is ~0.1)")
    d.set_defaults(func=cmd_diagnose)

    s = sub.add_parser("sweep-rtg", help="achieved return against the RTG target (controllability)",
                       description="Evaluates the checkpoint at several RTG targets spread over the data's range and "
                       "judges whether the return follows the target: the achieved span from the lowest to the highest "
                       "target (normalised points), the slope and the Spearman rank correlation, never rank alone "
                       "(a flat line can rank perfectly). Writes JSON and a PNG plot.")
    _common(s)
    s.add_argument("--targets", type=int, default=8, help="number of RTG targets spread over the data range (default 8)")
    s.add_argument("--rtgs", type=lambda v: [float(x) for x in v.split(",")], help="explicit comma-separated targets")
    s.add_argument("--range", choices=("feasible", "data"), default="feasible",
                   help="targets spread over the data's return range ('data') or up to the highest return the data "
                        "support from the evaluation starts ('feasible', the default where the checkpoint has a "
                        "ceiling model: above it every target is limited to it when acting)")
    s.add_argument("--out", default="sweep", help="where to write: NAME or NAME.json gives NAME.json and NAME.png "
                   "(default ./sweep)")
    add_json_option(s, "write the sweep's JSON to FILE instead of NAME.json, or to stdout with - (then pure JSON: "
                    "the rows and the verdict go to stderr)")
    s.set_defaults(func=cmd_sweep)


def _common(p) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint file (.pt) from `mage train`")
    p.add_argument("--episodes", type=positive_int, default=10, help="episodes per seed (default 10)")
    p.add_argument("--seeds", type=seed_list, default=[0],
                   help="comma-separated evaluation seeds (default 0)")
    p.add_argument("--envs", type=positive_int, default=10, help="environments run in parallel (batched planning; default 10)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--replan-every", type=positive_int, default=None,
                   help="replan every n steps (default: the method's own — MAGE every step, Diffuser once per episode)")
    p.add_argument("--executor", choices=("inverse", "track"), default="inverse",
                   help="MAGE: execute I(sum z) (default, as in the paper) or 'track' the plan's positions with the "
                   "maze PD controller (mazes only; how Diffuser follows its maze plans)")
    p.add_argument("--regoal-steps", type=non_negative_int, default=None, metavar="N",
                   help="MAGE, sparse goal reaching: while the agent is outside the goal, condition on being there "
                   "within N steps instead of on holding it, a condition no demonstration has from outside (default: "
                   "the task's — 20, AntMaze medium and large 60; 0 = the plain RTG bookkeeping)")
    p.add_argument("--temperature", type=float, default=None,
                   help="MAGE token sampling temperature (default 1; <= 0 = greedy tokens)")
    p.add_argument("--top-k", type=int, default=None, help="MAGE: sample only among the k most likely tokens (default 0 = all)")
    p.add_argument("--cfg-scale", type=float, default=None,
                   help="MAGE classifier-free guidance scale on the RTG condition (default 1 = plain conditional)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: planning at small batch is latency-bound, and extra threads "
                   "thrash when the machine is busy)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _sampling(args):
    """The SamplingConfig the flags ask for (None = the planner's defaults)."""
    from mage_core.errors import UsageError
    from mage_core.planner import SamplingConfig

    given = {k: v for k, v in (("temperature", args.temperature), ("top_k", args.top_k),
                               ("cfg_scale", args.cfg_scale)) if v is not None}
    if not given:
        return None
    if given.get("top_k", 0) < 0:
        raise UsageError("--top-k must be 0 (all tokens) or a positive number of tokens")
    if not all(np.isfinite(float(v)) for v in given.values()):
        raise UsageError("--temperature and --cfg-scale must be finite numbers")
    return SamplingConfig(**given)


def _run(args, rtg, label="", record=False):
    import torch

    from mage_core.evaluate import evaluate
    from mage_core.policies import checkpoint_ref_scores, load_policy
    from mage_core.progress import ProgressBar

    torch.set_num_threads(max(1, args.threads))
    sampling = _sampling(args)
    policy, task, meta = load_policy(args.checkpoint, rtg_target=rtg, device=args.device,
                                     replan_every=args.replan_every, seed=0, sampling=sampling,
                                     executor=args.executor, regoal_steps=args.regoal_steps)
    total = args.episodes * len(args.seeds) * task.eval_steps
    bar = ProgressBar(total, label=label or f"eval {task.name}", enabled=not args.quiet)
    t0 = time.perf_counter()
    res = evaluate(task, policy, episodes=args.episodes, seeds=args.seeds, n_envs=args.envs,
                   ref_scores=checkpoint_ref_scores(meta, task), progress=bar.update, record=record)
    bar.close()
    res.extra.update(checkpoint=str(args.checkpoint), algo=meta.get("algo", "mage"),
                     rtg_target=getattr(policy, "target", rtg), wall_s=time.perf_counter() - t0)
    tracker = getattr(policy, "rtg", None)
    if hasattr(tracker, "regoal_steps"):
        res.extra["regoal_steps"] = tracker.regoal_steps
    return res


def cmd_eval(args) -> int:
    if args.record:
        from mage_core.video import check_video_path

        check_video_path(Path(args.record) / f"episode.{args.record_format}")  # before any episode runs
    res = _run(args, args.rtg, record=bool(args.record))
    if args.record:
        paths = _record_episodes(args, res)
        print(f"wrote {len(paths)} videos to {args.record}", file=sys.stderr)
    print(res.summary(), file=human(args.json_out))
    if args.json_out:
        write_json_output(res.to_dict(), args.json_out)
    return 0


def _record_episodes(args, res) -> list:
    """One captioned video per evaluated episode, posed from its recorded observations; returns the paths."""
    from mage_core.cli.recording import FPS, EpisodeFrames
    from mage_core.checkpoint import load_checkpoint
    from mage_core.errors import MageError
    from mage_core.task_spec import task_from_checkpoint
    from mage_core.video import VideoWriter

    episodes = res.extra.pop("episodes")
    task = task_from_checkpoint(load_checkpoint(args.checkpoint))
    frames = EpisodeFrames(task)
    out, paths, counts = Path(args.record), [], {}
    try:
        if not frames.can_pose(episodes[0]["obs_TD"].shape[1]):
            raise MageError(f"{task.name}: its observations do not pose the scene, so episodes cannot be recorded")
        name = Path(str(args.checkpoint)).name
        for ep, seed in zip(episodes, res.seeds):
            n = counts[seed] = counts.get(seed, -1) + 1
            alive = np.asarray(ep["alive_T"], bool)
            steps = int(np.argmin(alive)) + 1 if not alive.all() else len(alive)
            rewards = np.concatenate([[0.0], np.cumsum(ep["rewards_T"][:steps])])
            path, goal = [], None
            with VideoWriter(out / f"episode-{seed}-{n:03d}.{args.record_format}", FPS) as writer:
                for t in range(steps + 1):
                    obs_D = ep["obs_TD"][t]
                    path.append(frames.point(obs_D))
                    if frames.floor:
                        goal = task.suite.goal_point(task, obs_D)
                    caption = [f"{res.extra.get('algo', 'mage')} · {task.name} · {name} · seed {seed} episode {n}",
                               f"step {t}/{task.eval_steps} · return so far {rewards[t]:,.1f}"]
                    writer.append(frames.frame(caption, obs_D=obs_D, path=path, goal=goal))
            paths.append(writer.path)
    finally:
        frames.close()
    return paths


def cmd_diagnose(args) -> int:
    if args.plans:
        return _diagnose_plans(args)
    res = _run(args, args.rtg, label="diagnose", record=True)
    from mage_core.policies import load_policy

    task = load_policy(args.checkpoint)[1]
    rows = [task.suite.episode_diagnostics(task, e["obs_TD"], e["rewards_T"]) for e in res.extra.pop("episodes")]
    out = human(args.json_out)
    print(res.summary(), file=out)
    keys = [k for k in rows[0] if k != "return"]
    print("episode  return  " + "  ".join(keys), file=out)
    for i, r in enumerate(rows):
        print(f"{i:7d}  {r['return']:6.0f}  " + "  ".join(_fmt(r[k]) for k in keys), file=out)
    extra, line = task.suite.diagnostics_summary(task, rows)
    summary = {"episodes": len(rows), "mean_return": res.mean, **extra}
    if line:
        print(line, file=out)
    if args.json_out:
        write_json_output(dict(result=res.to_dict(), summary=summary, episodes=rows), args.json_out)
    return 0


def _diagnose_plans(args) -> int:
    import torch

    from mage_core.errors import UsageError
    from mage_core.plancheck import PlanCheckConfig, check_plans, format_plan_check
    from mage_core.planner import Planner
    from mage_core.progress import ProgressBar

    torch.set_num_threads(max(1, args.threads))
    from mage_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.get("algo", "mage") != "mage":
        raise UsageError(f"--plans checks MAGE plans; this is a {ckpt.get('algo')} checkpoint")
    planner = Planner.from_checkpoint(ckpt, device=args.device, sampling=_sampling(args))
    cfg = PlanCheckConfig(episodes=args.plan_episodes, every=args.plan_every, samples=args.plan_samples,
                          threshold=args.plan_threshold, seed=args.seeds[0], rtg=args.rtg)
    bar = ProgressBar(1, label="plan check", unit="states", enabled=not args.quiet)

    def progress(i: int, n: int) -> None:
        bar.total = n  # known once the expert's routes are run
        bar.update(i)

    rep = check_plans(planner, cfg, progress=progress)
    bar.close()
    rep["checkpoint"] = str(args.checkpoint)
    if args.json_out:
        write_json_output(rep, args.json_out)
    print(format_plan_check(rep), file=human(args.json_out))
    return 0


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def sweep_paths(out: str) -> tuple[Path, Path]:
    """--out NAME or NAME.json (or NAME.png): the sweep's JSON and PNG are NAME.json and NAME.png."""
    p = Path(out)
    base = p.with_suffix("") if p.suffix.lower() in (".json", ".png") else p
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".png")


def run_checkpoint_sweep(args, on_row=None):
    """Sweep the checkpoint's RTG target over the data's return range (or args.rtgs); returns (summary, task)."""
    from mage_core.controllability import feasible_high, run_sweep, sweep_targets
    from mage_core.policies import checkpoint_ref_scores, load_policy

    policy, task, meta = load_policy(args.checkpoint)
    if args.rtgs:
        targets = args.rtgs
    else:
        lo, hi = (meta.get("dataset") or {}).get("rtg_range") or (0.0, float(task.eval_steps))
        top = (feasible_high(getattr(policy, "planner", None), task, args.seeds, args.episodes)
               if args.range == "feasible" else None)
        if top is not None and lo < top < hi:
            print(f"sweeping the feasible range {lo:g} - {top:g} (the median ceiling from the evaluation starts; "
                  f"the data reach {hi:g})", file=sys.stderr)
            hi = top
        targets = sweep_targets(lo, hi, args.targets)
    labels = iter(f"sweep {i + 1}/{len(targets)} G={g:g}" for i, g in enumerate(targets))
    summary = run_sweep(lambda g: _run(args, g, label=next(labels)), targets, checkpoint_ref_scores(meta, task),
                        on_row=on_row)
    return summary, task


def cmd_sweep(args) -> int:
    from mage_core.controllability import plot_sweep

    def show(row):
        norm = "" if row.normalised_mean is None else f"  ({row.normalised_mean:6.1f} normalised)"
        print(f"target {row.target:10.1f}  achieved {row.mean:10.1f} ± {row.se:.1f}{norm}", file=sys.stderr)

    summary, task = run_checkpoint_sweep(args, on_row=show)
    json_path, png_path = sweep_paths(args.out)
    json_target = args.json_out or json_path
    out = dict(checkpoint=str(args.checkpoint), task=task.name, episodes=args.episodes, seeds=args.seeds,
               **summary.to_dict())
    write_json_output(out, json_target)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    plot_sweep(summary, str(png_path), title=f"{Path(args.checkpoint).name} ({task.name})")
    print(summary.caption(), file=human(json_target))
    print(f"wrote {'the JSON to stdout' if str(json_target) == '-' else json_target} and {png_path}",
          file=human(json_target))
    return 0

