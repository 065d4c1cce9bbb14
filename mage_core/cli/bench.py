"""`mage bench ...`: data, latency, quality and studio benchmarks; print numbers and write JSON."""
from __future__ import annotations

import json
import subprocess
import sys

from mage_core.cli.train import positive_int_arg


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: data, latency, quality, studio",
                       description="Benchmarks print medians and write machine-readable JSON; docs/BENCHMARKS.md "
                       "quotes their latest numbers with the command that produced them.")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    d = bsub.add_parser("data", help="dataset generation steps/s and segment sampling segments/s")
    d.add_argument("--task", default="pointmaze-umaze")
    d.add_argument("--steps", type=int, default=50_000, help="steps to generate (default 50000)")
    d.add_argument("--batch", type=int, default=256, help="segments per sampled batch (default 256)")
    d.add_argument("--out", default="bench-data.json", help="JSON output (default bench-data.json)")
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
    lat.add_argument("--out", default="bench-latency.json", help="JSON output (default bench-latency.json)")
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
    q.add_argument("--out", default="bench-quality.json", help="JSON output (default bench-quality.json)")
    q.add_argument("--markdown", default=None, help="also write the markdown table to this file")
    q.set_defaults(func=cmd_quality)

    s = bsub.add_parser("studio", help="studio: time to first window, viewport fps, re-plan latency, UI timer p95")
    s.add_argument("--checkpoint", default=None,
                   help="checkpoint for the re-plan + redraw timing (default: a tiny umaze one trained on the spot)")
    s.add_argument("--out", default="bench-studio.json", help="JSON output (default bench-studio.json)")
    s.set_defaults(func=cmd_studio)


def cmd_data(args) -> int:
    from mage_core.bench import bench_data, machine, write_json

    r = bench_data(args.task, args.steps, args.batch)
    r["machine"] = machine()
    print(f"generation: {r['gen_steps_per_s']:,.0f} steps/s ({args.steps} steps of {args.task}); "
          f"segment sampling: {r['segments_per_s']:,.0f} segments/s at batch {args.batch} "
          f"(median {r['sample_median_ms']:.3f} ms per batch)")
    write_json(r, args.out)
    return 0


def cmd_latency(args) -> int:
    from mage_core.bench import bench_latency, latency_ratios, machine, write_json

    rows = bench_latency(args.checkpoints, args.repeats, args.warmup, args.device, args.threads, args.rounds)
    print(f"{'algo':10s} {'task':18s} {'median ms':>10s} {'p95 ms':>8s}  checkpoint")
    for r in rows:
        print(f"{r['algo']:10s} {r['task']:18s} {r['median_ms']:10.2f} {r['p95_ms']:8.2f}  {r['checkpoint']}")
    ratios, lines = latency_ratios(rows)
    for line in lines:
        print(line)
    write_json(dict(rows=rows, ratios=ratios, machine=machine()), args.out)
    return 0


def cmd_quality(args) -> int:
    from mage_core.quality import run_quality

    run_quality(args)
    return 0


def cmd_studio(args) -> int:
    # The studio is a separate package that depends on the engine; run its benchmark in its own process.
    cmd = [sys.executable, "-m", "mage_studio.bench", "--out", args.out]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    return subprocess.call(cmd)
