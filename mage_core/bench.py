"""Benchmarks that print numbers and write JSON: data throughput, plan-and-act latency, and the quality table."""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def machine() -> dict:
    """Where a benchmark ran: CPU, core count, torch build and GPU (if any)."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(cpu=cpu, cores=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(), gpu=gpu,
                python=platform.python_version())


def timed(fn, repeats: int, warmup: int) -> dict:
    """Median / p95 / mean wall time of fn() in milliseconds over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    ts.sort()
    return dict(median_ms=statistics.median(ts), p95_ms=ts[int(0.95 * (len(ts) - 1))], mean_ms=float(np.mean(ts)),
                repeats=repeats)


def bench_data(task_name: str = "pointmaze-umaze", steps: int = 50_000, batch: int = 256) -> dict:
    """Dataset generation steps/s (collection only) and segment sampling segments/s at batch `batch`."""
    from mage_core.data.generate import GenerateConfig, collect_buffers
    from mage_core.data.segments import Episode, SegmentDataset
    from mage_core.tasks import get_task, segment_config

    task = get_task(task_name)
    t0 = time.perf_counter()
    bufs = collect_buffers(task, GenerateConfig(steps=steps))
    gen_s = time.perf_counter() - t0
    eps = [Episode(np.concatenate([b.observations["observation"], b.observations["desired_goal"]], 1).astype(np.float32),
                   b.actions, np.asarray(b.rewards, np.float32), bool(b.terminations[-1])) for b in bufs]
    ds = SegmentDataset(eps, segment_config(task))
    rng = np.random.default_rng(0)
    t = timed(lambda: ds.sample(batch, rng), repeats=200, warmup=10)
    return dict(task=task_name, gen_steps=steps, gen_steps_per_s=steps / gen_s, sample_batch=batch,
                sample_median_ms=t["median_ms"], segments_per_s=batch / (t["median_ms"] / 1e3))


def bench_latency(checkpoints: list, repeats: int = 200, warmup: int = 20, device: str = "cpu", threads: int = 1,
                  rounds: int = 10) -> list:
    """Plan-and-act latency at batch 1 for each checkpoint (any algo), through its Policy.act on a real observation.

    Every method is timed re-planning at every call (Diffuser's default plans once per episode and then only steers,
    which would time the 0.02 ms steering step instead of a plan). The methods take turns: `rounds` rounds, each
    timing repeats / rounds calls of every checkpoint in sequence, so a slow spell of a shared machine lands on all of
    them alike and the ratios stay meaningful; each row also gets the median of its per-round ratios to the first
    checkpoint ("ratio_to_first_rounds")."""
    import torch

    from mage_core.policies import load_policy

    torch.set_num_threads(threads)
    calls, rows = [], []
    for path in checkpoints:
        policy, task, meta = load_policy(path, device=device, seed=0, replan_every=1)
        env = task.make_env(mode="eval")
        obs, _ = env.reset(seed=0)
        obs_1D = task.flatten_obs(obs)[None]
        zero = np.zeros(1)
        policy.reset(1)
        env.close()

        def call(policy=policy, obs_1D=obs_1D, zero=zero):
            policy.act(obs_1D, zero)
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        for _ in range(warmup):
            call()
        calls.append(call)
        rows.append(dict(checkpoint=str(path), algo=meta.get("algo", "mage"), task=task.name, device=device,
                         threads=threads))
    rounds = max(1, min(rounds, repeats))
    per_round = [[[] for _ in range(rounds)] for _ in calls]
    for r in range(rounds):
        n = repeats // rounds + (1 if r < repeats % rounds else 0)
        for i, call in enumerate(calls):
            for _ in range(n):
                t0 = time.perf_counter()
                call()
                per_round[i][r].append(1e3 * (time.perf_counter() - t0))
    first = [statistics.median(ts) for ts in per_round[0]]
    for row, rounds_ts in zip(rows, per_round):
        ts = sorted(t for rt in rounds_ts for t in rt)
        row.update(median_ms=statistics.median(ts), p95_ms=ts[int(0.95 * (len(ts) - 1))], mean_ms=float(np.mean(ts)),
                   repeats=len(ts), rounds=rounds,
                   ratio_to_first_rounds=statistics.median(f / statistics.median(rt) for f, rt in zip(first, rounds_ts)))
    return rows


def latency_ratios(rows: list) -> tuple:
    """MAGE's latency ratios to the baselines in bench_latency rows: (ratios dict, printable lines). With several
    checkpoints of one algo, its first row counts (the rows' order is the command line's), for the ratio of medians as
    for the per-round ratios, which bench_latency takes to the first checkpoint and so are given only when MAGE is
    first."""
    first_median = {}
    for r in rows:
        first_median.setdefault(r["algo"], r["median_ms"])
    ratios, lines = {}, []
    if "mage" not in first_median:
        return ratios, lines
    for other in ("dt", "diffuser", "bc"):
        if other not in first_median:
            continue
        ratio = first_median["mage"] / first_median[other]
        ratios[f"mage/{other}"] = ratio
        line = f"MAGE / {other}: {ratio:.2f}x (ratio of medians)"
        if rows[0]["algo"] == "mage":  # per-round ratios are to the first checkpoint
            per = next(r["ratio_to_first_rounds"] for r in rows if r["algo"] == other)
            ratios[f"mage/{other}_rounds"] = per
            line += f", {per:.2f}x (median of the {rows[0]['rounds']} per-round ratios)"
        lines.append(line)
    return ratios, lines


def write_json(obj, path) -> None:
    """A benchmark's JSON to a file, or to stdout when path is "-" (`--json -`)."""
    if str(path) == "-":
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        sys.stdout.flush()
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2))
