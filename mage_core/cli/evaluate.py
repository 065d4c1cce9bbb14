"""`mage eval` and `mage sweep-rtg`: score a checkpoint on the evaluation protocol and measure RTG controllability."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from mage_core.cli.argtypes import seed_list


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
    e.add_argument("--json", dest="json_out", metavar="FILE", help="also write the result as JSON to FILE ('-' = stdout)")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("diagnose", help="how evaluation episodes fail: time to the goal, time inside it, stalls",
                       description="Runs the evaluation protocol like `mage eval` and reports per episode, through the "
                       "task's suite, how it went beyond the return: for goal-reaching mazes the step the goal was "
                       "first reached, the share of the later steps spent inside the goal radius, how often the agent "
                       "left it, and for episodes that never arrived the maze cell where they stalled and how many "
                       "cells were left on the route.")
    _common(d)
    d.add_argument("--rtg", type=float, default=None, help="episode return target G (default: as `mage eval`)")
    d.add_argument("--json", dest="json_out", metavar="FILE", help="write the per-episode table as JSON to FILE")
    d.add_argument("--plans", action="store_true",
                   help="instead of running episodes, check the plans themselves (seconds, mazes): sample plans from "
                   "states along the reference expert's route and report, per scale, the share that run into a wall")
    d.add_argument("--plan-samples", type=int, default=16, help="--plans: plans sampled per route state (default 16)")
    d.add_argument("--plan-every", type=int, default=10, help="--plans: plan from every n-th route state (default 10)")
    d.add_argument("--plan-episodes", type=int, default=3,
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
    s.add_argument("--out", default="sweep", help="where to write: NAME or NAME.json gives NAME.json and NAME.png "
                   "(default ./sweep)")
    s.set_defaults(func=cmd_sweep)


def _common(p) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint file (.pt) from `mage train`")
    p.add_argument("--episodes", type=int, default=10, help="episodes per seed (default 10)")
    p.add_argument("--seeds", type=seed_list, default=[0],
                   help="comma-separated evaluation seeds (default 0)")
    p.add_argument("--envs", type=int, default=10, help="environments run in parallel (batched planning; default 10)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--replan-every", type=int, default=None,
                   help="replan every n steps (default: the method's own — MAGE every step, Diffuser once per episode)")
    p.add_argument("--executor", choices=("inverse", "track"), default="inverse",
                   help="MAGE: execute I(sum z) (default, as in the paper) or 'track' the plan's positions with the "
                   "maze PD controller (mazes only; how Diffuser follows its maze plans)")
    p.add_argument("--regoal-steps", type=int, default=None, metavar="N",
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
    from mage_core.errors import MageError
    from mage_core.planner import SamplingConfig

    given = {k: v for k, v in (("temperature", args.temperature), ("top_k", args.top_k),
                               ("cfg_scale", args.cfg_scale)) if v is not None}
    if not given:
        return None
    if given.get("top_k", 0) < 0:
        raise MageError("--top-k must be 0 (all tokens) or a positive number of tokens")
    if not all(np.isfinite(float(v)) for v in given.values()):
        raise MageError("--temperature and --cfg-scale must be finite numbers")
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
    res = _run(args, args.rtg)
    print(res.summary())
    if args.json_out:
        text = json.dumps(res.to_dict(), indent=2)
        if args.json_out == "-":
            print(text)
        else:
            Path(args.json_out).write_text(text)
    return 0


def cmd_diagnose(args) -> int:
    if args.plans:
        return _diagnose_plans(args)
    res = _run(args, args.rtg, label="diagnose", record=True)
    from mage_core.policies import load_policy

    task = load_policy(args.checkpoint)[1]
    rows = [task.suite.episode_diagnostics(task, e["obs_TD"], e["rewards_T"]) for e in res.extra.pop("episodes")]
    print(res.summary())
    keys = [k for k in rows[0] if k != "return"]
    print("episode  return  " + "  ".join(keys))
    for i, r in enumerate(rows):
        print(f"{i:7d}  {r['return']:6.0f}  " + "  ".join(_fmt(r[k]) for k in keys))
    extra, line = task.suite.diagnostics_summary(task, rows)
    summary = {"episodes": len(rows), "mean_return": res.mean, **extra}
    if line:
        print(line)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(dict(result=res.to_dict(), summary=summary, episodes=rows), indent=2))
    return 0


def _diagnose_plans(args) -> int:
    import torch

    from mage_core.errors import MageError
    from mage_core.plancheck import PlanCheckConfig, check_plans, format_plan_check
    from mage_core.planner import Planner
    from mage_core.progress import ProgressBar

    torch.set_num_threads(max(1, args.threads))
    from mage_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.get("algo", "mage") != "mage":
        raise MageError(f"--plans checks MAGE plans; this is a {ckpt.get('algo')} checkpoint")
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
        Path(args.json_out).write_text(json.dumps(rep, indent=2))
    print(format_plan_check(rep))
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
    from mage_core.controllability import run_sweep, sweep_targets
    from mage_core.policies import checkpoint_ref_scores, load_policy

    _, task, meta = load_policy(args.checkpoint)
    if args.rtgs:
        targets = args.rtgs
    else:
        lo, hi = (meta.get("dataset") or {}).get("rtg_range") or (0.0, float(task.eval_steps))
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
    out = dict(checkpoint=str(args.checkpoint), task=task.name, episodes=args.episodes, seeds=args.seeds,
               **summary.to_dict())
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2))
    plot_sweep(summary, str(png_path), title=f"{Path(args.checkpoint).name} ({task.name})")
    print(summary.caption())
    print(f"wrote {json_path} and {png_path}")
    return 0

