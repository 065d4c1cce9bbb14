"""`mage bench ...`: data, latency, quality and studio benchmarks; print numbers and write JSON."""
from __future__ import annotations

import json
import subprocess
import sys

from mage_core.cli.argtypes import seed_list
from mage_core.cli.output import human
from mage_core.train_command import positive_int_arg


STDOUT_NOTE = ", or - for stdout (then pure JSON: the summary goes to stderr)"  # help of the --json FILE|- options


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: data, latency, quality, studio",
                       description="Benchmarks print medians and write machine-readable JSON; docs/BENCHMARKS.md "
                       "quotes their latest numbers with the command that produced them.")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    d = bsub.add_parser("data", help="dataset generation steps/s and segment sampling segments/s")
    d.add_argument("--task", default="pointmaze-umaze")
    d.add_argument("--steps", type=int, default=50_000, help="steps to generate (default 50000)")
    d.add_argument("--batch", type=int, default=256, help="segments per sampled batch (default 256)")
    d.add_argument("--json", "--out", dest="out", metavar="FILE|-", default="bench-data.json",
                   help=f"JSON output{STDOUT_NOTE} (default bench-data.json)")
    d.set_defaults(func=cmd_data)

    lat = bsub.add_parser("latency", help="plan-and-act latency at batch 1 for one or more checkpoints",
                          description="Median and p95 over --repeats calls after warm-up of one Policy.act at batch 1 "
                          "(for MAGE: sample K scales with the KV cache + inverse dynamics). The checkpoints are timed in turns "
                          "(--rounds); with MAGE first, the ratios to the others are printed both as a ratio of "
                          "medians and as the median of the per-round ratios.")
    lat.add_argument("checkpoints", nargs="+", help="checkpoint files (any algo)")
    lat.add_argument("--repeats", type=positive_int_arg, default=200, help="timed calls (default 200)")
    lat.add_argument("--warmup", type=int, default=20, help="untimed warm-up calls (default 20)")
    lat.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    lat.add_argument("--threads", type=positive_int_arg, default=1, help="torch CPU threads (default 1)")
    lat.add_argument("--rounds", type=positive_int_arg, default=10,
                     help="the checkpoints take turns in this many rounds of repeats/rounds calls each, so a slow spell "
                     "of a shared machine hits every method alike (default 10)")
    lat.add_argument("--json", "--out", dest="out", metavar="FILE|-", default="bench-latency.json",
                   help=f"JSON output{STDOUT_NOTE} (default bench-latency.json)")
    lat.set_defaults(func=cmd_latency)

    q = bsub.add_parser("quality", help="train (or reuse) every method on every task and evaluate side by side")
    q.add_argument("--tasks", default="pointmaze-umaze,pointmaze-medium,pointmaze-large", help="comma-separated tasks")
    q.add_argument("--algos", default="mage,mage-track,bc,dt,diffuser",
                   help="comma-separated methods; mage-track = the MAGE checkpoint with --executor track")
    q.add_argument("--preset", default="small", help="training preset for every method (default small)")
    q.add_argument("--seeds", type=int, default=1, help="training seeds per method and task (default 1)")
    q.add_argument("--first-seed", type=int, default=0,
                   help="first training seed: --seeds N --first-seed S trains seeds S..S+N-1, so a sweep can be run "
                        "a seed at a time and the pieces merged (default 0)")
    q.add_argument("--mage-flags", default="",
                   help="extra `mage train` flags for MAGE (and mage-track), quoted, e.g. \"--inv-lookahead 1,2,4,8\" "
                        "(a single flag needs the = form: --mage-flags=--no-cond-loss); "
                        "their checkpoints are cached as ROW-mage+HASH.pt, apart from plain MAGE's")
    q.add_argument("--episodes", type=int, default=10, help="evaluation episodes per trained checkpoint (default 10)")
    q.add_argument("--tune-episodes", type=int, default=5,
                   help="return-conditioned methods (MAGE, DT): episodes per candidate target when choosing the target "
                        "from 0.4-1.0 x the default on held-out seeds (seed + 1000); 0 = use each method's default "
                        "target (default 5)")
    q.add_argument("--dataset", default=None,
                   help="dataset id or path for the one task in --tasks (default: each task's default dataset); rows "
                        "and cached checkpoints are keyed by it: mage/adroit-door/human-v0 -> adroit-door-human")
    q.add_argument("--cache", default="runs/bench-quality",
                   help="where checkpoints are cached and reused, as CACHE/ROW/seedS/ROW-ALGO.pt; a cached checkpoint "
                        "trained on other data is refused, never reused")
    q.add_argument("--steps-scale", type=float, default=1.0, help="multiply every method's training steps (tiny runs)")
    q.add_argument("--json", "--out", dest="out", metavar="FILE|-", default="bench-quality.json",
                   help=f"JSON output{STDOUT_NOTE} (default bench-quality.json)")
    q.add_argument("--markdown", default=None, help="also write the markdown table to this file")
    q.set_defaults(func=cmd_quality)

    c = bsub.add_parser("controllability", help="RTG sweep of every bundled checkpoint: does the return follow?",
                        description="Sweeps each checkpoint's RTG target over its data's return range (`mage "
                        "sweep-rtg`) and writes one table: Spearman, the achieved span from the lowest to the highest "
                        "target in normalised points against the swept span, the slope and the verdict (the design's "
                        "target: Spearman >= 0.9 and a span >= 50), as JSON and markdown.")
    c.add_argument("checkpoints", nargs="*", help="checkpoint files (default: every bundled checkpoint)")
    c.add_argument("--targets", type=positive_int_arg, default=6, help="RTG targets per sweep (default 6)")
    c.add_argument("--seeds", type=seed_list, default=[0, 1], help="evaluation seeds (default 0,1)")
    c.add_argument("--episodes", type=positive_int_arg, default=10, help="episodes per seed and target (default 10)")
    c.add_argument("--threads", type=positive_int_arg, default=1, help="torch CPU threads (default 1)")
    c.add_argument("--range", choices=("feasible", "data"), default="feasible",
                   help="sweep up to the highest return the data support from the evaluation starts (default) or over "
                        "the data's whole return range (see `mage sweep-rtg --help`)")
    c.add_argument("--json", "--out", dest="out", metavar="FILE|-", default="bench-controllability.json",
                   help=f"JSON output{STDOUT_NOTE} (default bench-controllability.json)")
    c.add_argument("--markdown", default=None, help="also write the markdown table to this file")
    c.add_argument("--cards", action="store_true",
                   help="also record each sweep in its checkpoint's card (CKPT.card.json / .card.md, written by `mage "
                        "ckpt card`) with its plot beside it as CKPT.sweep.png")
    c.set_defaults(func=cmd_controllability)

    s = bsub.add_parser("studio", help="studio: time to first window, viewport fps, re-plan latency, UI timer p95",
                        description="Times the studio: the first window, the UI timer while a tiny training runs, and "
                        "per checkpoint, on its own task's scene, the viewport's fps at 640x480 with the plan drawn "
                        "(ghosts for robots) and re-plan + redraw after an RTG change; prints the GL renderer.")
    s.add_argument("--checkpoint", action="append", default=[],
                   help="checkpoint whose own scene is timed; repeatable (default: a tiny umaze one trained on the spot)")
    s.add_argument("--all", action="store_true", help="time every bundled checkpoint (checkpoints/*.pt)")
    s.add_argument("--scenes-only", action="store_true",
                   help="only the per-checkpoint scene rows: no first-window, pipeline or training probes")
    s.add_argument("--json", "--out", dest="out", metavar="FILE", default="bench-studio.json",
                   help="JSON output (default bench-studio.json)")
    s.set_defaults(func=cmd_studio)


def cmd_data(args) -> int:
    from mage_core.bench import bench_data, machine, write_json

    r = bench_data(args.task, args.steps, args.batch)
    r["machine"] = machine()
    print(f"generation: {r['gen_steps_per_s']:,.0f} steps/s ({args.steps} steps of {args.task}); "
          f"segment sampling: {r['segments_per_s']:,.0f} segments/s at batch {args.batch} "
          f"(median {r['sample_median_ms']:.3f} ms per batch)", file=human(args.out))
    write_json(r, args.out)
    return 0


def cmd_latency(args) -> int:
    from mage_core.bench import bench_latency, latency_ratios, machine, write_json

    rows = bench_latency(args.checkpoints, args.repeats, args.warmup, args.device, args.threads, args.rounds)
    out = human(args.out)
    print(f"{'algo':10s} {'task':18s} {'median ms':>10s} {'p95 ms':>8s}  checkpoint", file=out)
    for r in rows:
        print(f"{r['algo']:10s} {r['task']:18s} {r['median_ms']:10.2f} {r['p95_ms']:8.2f}  {r['checkpoint']}", file=out)
    ratios, lines = latency_ratios(rows)
    for line in lines:
        print(line, file=out)
    write_json(dict(rows=rows, ratios=ratios, machine=machine()), args.out)
    return 0


def cmd_quality(args) -> int:
    from mage_core.quality import run_quality

    run_quality(args)
    return 0


def cmd_studio(args) -> int:
    if args.out == "-":
        from mage_core.errors import UsageError

        raise UsageError("bench studio writes its JSON to a file: give --json FILE")
    # The studio is a separate package that depends on the engine; run its benchmark in its own process.
    cmd = [sys.executable, "-m", "mage_studio.bench", "--out", args.out]
    for path in args.checkpoint:
        cmd += ["--checkpoint", path]
    cmd += ["--all"] * args.all + ["--scenes-only"] * args.scenes_only
    return subprocess.call(cmd)


def controllability_markdown(rows: list[dict]) -> str:
    """The controllability table in markdown, one row per checkpoint."""
    lines = ["| checkpoint | task | Spearman | achieved, lowest → highest target | span | swept span | slope | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        pts = ", ".join(f"{v:.0f}" for v in r["achieved"])
        rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.2f}"
        lines.append(f"| {r['name']} | {r['task']} | {rho} | {pts} | {r['achieved_span']:+.0f} | "
                     f"{r['swept_span']:.0f} | {r['slope']:.2f} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def cmd_controllability(args) -> int:
    import argparse
    import os

    from mage_core.bench import machine, write_json
    from mage_core.bundled import bundled_checkpoints
    from mage_core.cli.ckpt import card_base, write_card
    from mage_core.cli import evaluate as evaluate_cli
    from mage_core.cli.evaluate import run_checkpoint_sweep
    from mage_core.controllability import plot_sweep
    from mage_core.errors import MageError

    paths = [str(p) for p in (args.checkpoints or bundled_checkpoints())]
    if not paths:
        raise MageError("no checkpoints given and none bundled (checkpoints/*.pt)")
    sweep_parser = argparse.ArgumentParser(prog="mage")  # the sweep's own options and defaults, as `mage sweep-rtg`
    evaluate_cli.register(sweep_parser.add_subparsers())
    rows = []
    for i, path in enumerate(paths):
        sweep_args = sweep_parser.parse_args(["sweep-rtg", "--checkpoint", path, "--targets", str(args.targets),
                                              "--seeds", ",".join(map(str, args.seeds)), "--episodes",
                                              str(args.episodes), "--threads", str(args.threads), "--range", args.range,
                                              "--quiet"])
        print(f"[{i + 1}/{len(paths)}] {path}", file=sys.stderr, flush=True)
        summary, task = run_checkpoint_sweep(sweep_args)
        ach = [r.normalised_mean if summary.normalised else r.mean for r in summary.rows]
        command = (f"mage sweep-rtg --checkpoint {path} --targets {args.targets} --seeds "
                   f"{','.join(map(str, args.seeds))} --episodes {args.episodes} --range {args.range}")
        row = dict(name=os.path.basename(path), checkpoint=path, task=task.name, achieved=ach, command=command,
                   episodes=args.episodes * len(args.seeds), **summary.to_dict())
        rows.append(row)
        print(f"  {task.name}: {summary.caption()}", flush=True, file=human(args.out))
        if args.cards:
            card_json = card_base(path) + ".card.json"
            if not os.path.isfile(card_json):
                raise MageError(f"{path} has no card ({card_json}); write it first with `mage ckpt card {path}`")
            card = json.loads(open(card_json).read())
            card["controllability"] = {k: row[k] for k in row if k not in ("name", "checkpoint", "task", "achieved")}
            write_card(path, card)
            plot_sweep(summary, card_base(path) + ".sweep.png", title=f"{os.path.basename(path)} ({task.name})")
    md = controllability_markdown(rows)
    print(md, file=human(args.out))
    write_json(dict(table="controllability", targets=args.targets, seeds=args.seeds, episodes=args.episodes,
                    range=args.range,
                    rows=rows, machine=machine()), args.out)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    return 0
