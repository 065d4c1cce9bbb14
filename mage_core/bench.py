"""Benchmarks that print numbers and write JSON: data throughput, plan-and-act latency, and the quality table."""
from __future__ import annotations

import json
import platform
import statistics
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


def bench_latency(checkpoints: list, repeats: int = 200, warmup: int = 20, device: str = "cpu", threads: int = 1) -> list:
    """Plan-and-act latency at batch 1 for each checkpoint (any algo), through its Policy.act on a real observation.

    Every method is timed re-planning at every call (Diffuser's default plans once per episode and then only steers,
    which would time the 0.02 ms steering step instead of a plan)."""
    import torch

    from mage_core.policies import load_policy

    torch.set_num_threads(threads)
    rows = []
    for path in checkpoints:
        policy, task, meta = load_policy(path, device=device, seed=0, replan_every=1)
        env = task.make_env(mode="eval")
        obs, _ = env.reset(seed=0)
        obs_1D = task.flatten_obs(obs)[None]
        zero = np.zeros(1)
        policy.reset(1)
        if device.startswith("cuda"):
            def call():
                policy.act(obs_1D, zero)
                torch.cuda.synchronize()
        else:
            def call():
                policy.act(obs_1D, zero)
        t = timed(call, repeats, warmup)
        rows.append(dict(checkpoint=str(path), algo=meta.get("algo", "mage"), task=task.name, device=device,
                         threads=threads, **t))
        env.close()
    return rows


def write_json(obj, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2))
