"""The generic training loop every algorithm (MAGE's stages and the baselines) trains with.

It runs stages with warm-up and cosine schedules and an optional EMA, handles NaN losses and out-of-memory errors,
writes atomic periodic checkpoints that resume exactly, and runs data parallel under torchrun.

Contract for any model trained by run_training (MAGE and the baselines):
  model.forward(batch: SegmentBatch, stage: int) -> dict with "loss" (the scalar optimised) and any other scalar
  tensors (logged under "losses"); optional "token_acc_K" / "usage_K" tensors are logged as token_acc /
  codebook_usage. Optional hooks: model.set_stage(stage) -> parameters to optimise (default: all),
  model.after_step(stage, step) -> bool (True when it changed parameters outside the optimiser).
Events go to one mage_core.progress.EventWriter (start, step, checkpoint, stage_end, done, error) and progress to one
mage_core.progress.ProgressBar per stage.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from mage_core.checkpoint import save_checkpoint
from mage_core.config import TrainConfig
from mage_core.data.segments import SegmentDataset
from mage_core.device import DistInfo, all_max, broadcast_module, configure_cpu_threads
from mage_core.errors import MageError
from mage_core.progress import EventWriter, ProgressBar




@dataclass
class StageSpec:
    """One optimisation stage of run_training."""

    index: int  # 1-based stage number passed to model.forward(batch, stage)
    name: str  # shown in events and progress ("autoencoder", "transformer", "refinement", "bc", ...)
    steps: int  # optimiser steps
    lr: float  # peak learning rate (linear warm-up, cosine decay to 10%)
    batch_size: int = 0  # segments sampled per step; 0 = TrainConfig.batch_size
    ema: bool = False  # keep an exponential moving average of this stage's parameters (TrainConfig.ema_decay > 0);
    #                    the stage ends with the parameters set to their average
    batch_flag: str = ""  # the `mage train` option that sets this stage's batch, named by the out-of-memory hint
    #                       ("" = none: the hint asks for a smaller batch without naming an option)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based): linear warm-up then cosine to 0.1."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def out_of_memory_hint(spec: StageSpec, batch_size: int) -> str:
    """What to do when a stage runs out of GPU memory: a smaller batch, through the option that sets this stage's."""
    smaller = max(1, batch_size // 2)
    how = f"e.g. {spec.batch_flag} {smaller}" if spec.batch_flag else f"e.g. {smaller} segments per step"
    return (f"CUDA ran out of memory in stage {spec.index} ({spec.name}) with batch size {batch_size}; try a smaller "
            f"batch size, {how}")


def sampler_rng(seed: int, rank: int = 0) -> np.random.Generator:
    """The segment sampler of one process: each DDP rank draws its own stream."""
    return np.random.default_rng([seed, rank])


def _make_optimizer(params: list, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def _rng_state(rng: np.random.Generator) -> dict:
    state = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, rng: np.random.Generator):
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class _EMA:
    """Exponential moving average of a stage's parameters (by name), with the usual warm-up of the decay:
    min(decay, (1 + n) / (10 + n)) after n updates, so early averages are not dominated by the initialisation."""

    def __init__(self, model: nn.Module, params: list, decay: float, state: dict | None = None):
        ids = {id(p) for p in params}
        self.named = [(n, p) for n, p in model.named_parameters() if id(p) in ids]
        self.decay = float(decay)
        self.n = int(state["n"]) if state else 0
        self.avg = ({n: state["avg"][n].to(p.device).clone() for n, p in self.named} if state else
                    {n: p.detach().clone() for n, p in self.named})

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for n, p in self.named:
            self.avg[n].lerp_(p.detach(), 1.0 - d)
        self.n += 1

    @torch.no_grad()
    def apply(self):
        """Set the parameters to their averages (at the end of the stage)."""
        for n, p in self.named:
            p.copy_(self.avg[n])

    def state_dict(self) -> dict:
        return {"n": self.n, "avg": {n: t.detach().cpu().clone() for n, t in self.avg.items()}}


class _Meter:
    """Means of the step outputs (losses, per-scale vectors) since the last report."""

    def __init__(self):
        self.sums: dict = {}
        self.n = 0

    def add(self, out: dict):
        self.n += 1
        for k, v in out.items():
            if not isinstance(v, torch.Tensor):
                continue
            v = v.detach().float().cpu()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()

    def report(self) -> dict:
        mean = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        rec = {"losses": {k: round(float(v), 6) for k, v in mean.items() if v.ndim == 0}}
        if "token_acc_K" in mean:
            rec["token_acc"] = [round(float(x), 4) for x in mean["token_acc_K"]]
        if "usage_K" in mean:
            rec["codebook_usage"] = [round(float(x), 4) for x in mean["usage_K"]]
        self.sums, self.n = {}, 0
        return rec


def run_training(model: nn.Module, stages: list[StageSpec], dataset: SegmentDataset, tcfg: TrainConfig, *,
                 ckpt_path, static_payload: dict, sink: EventWriter | None = None, resume: dict | None = None,
                 device: torch.device | str = "cpu", dist_info: DistInfo | None = None, progress: bool = True,
                 batch_fn: Callable[[np.random.Generator, int], object] | None = None) -> dict:
    """Train `model` through `stages` and return the final checkpoint payload.

    static_payload: the checkpoint fields that do not change while training (algo, config, normaliser, task,
    dataset, spaces); the loop adds state_dict, train_state and metrics and writes the file atomically every
    ckpt_every steps, at every stage end, and at the end. resume: a loaded checkpoint whose train_state continues
    exactly (optimizer, schedule, RNG, stage, step). batch_fn(rng, batch_size) overrides dataset.sample (tests,
    curricula). Under DDP (dist_info.enabled) the model is wrapped per stage, each rank samples its own stream, and
    only rank 0 writes checkpoints and events.
    """
    device = torch.device(device)
    dist_info = dist_info or DistInfo()
    if device.type == "cpu":
        configure_cpu_threads(tcfg.num_threads, dist_info)
    sink = sink or EventWriter(None)
    if not dist_info.is_main:
        sink = EventWriter(None, enabled=False)
    ckpt_path = Path(ckpt_path)
    amp = tcfg.amp and device.type == "cuda"
    rng = sampler_rng(tcfg.seed, dist_info.rank)
    sample = batch_fn or (lambda r, b: dataset.sample(b, r))
    model.to(device)

    ts = (resume or {}).get("train_state") or {}
    start_stage, start_step = ts.get("stage", stages[0].index), ts.get("step", 0)
    metrics: dict = dict((resume or {}).get("metrics") or {})
    wall0 = time.time() - ts.get("wall_s", 0.0)
    if resume is not None:
        if dist_info.rank == 0:
            _set_rng_state(ts["rng"], rng)
        else:  # other ranks continue on fresh, rank-specific streams
            rng = np.random.default_rng([tcfg.seed, dist_info.rank, start_stage, start_step])
            torch.manual_seed(tcfg.seed + 7919 * dist_info.rank + start_step)
    n_params = sum(p.numel() for p in _unwrap(model).parameters())
    sink.emit("start", algo=static_payload.get("algo"), task=static_payload.get("task"),
              stages=[{"name": s.name, "steps": s.steps} for s in stages], device=str(device), params=n_params,
              world_size=dist_info.world_size, resumed_from=ts.get("step") if resume else None)
    remaining_total = sum(s.steps for s in stages if s.index > start_stage) + \
        sum(max(0, s.steps - start_step) for s in stages if s.index == start_stage)

    def payload(stage: int, step: int, opt=None, sched=None, done=False, ema=None) -> dict:
        return {**static_payload, "state_dict": _unwrap(model).state_dict(), "metrics": metrics,
                "train_state": {"stage": stage, "step": step, "done": done, "wall_s": time.time() - wall0,
                                "optimizer": opt.state_dict() if opt else None,
                                "scheduler": sched.state_dict() if sched else None, "rng": _rng_state(rng),
                                "ema": ema.state_dict() if ema is not None else None}}

    def write(stage: int, step: int, opt=None, sched=None, done=False, ema=None):
        if dist_info.is_main:
            save_checkpoint(ckpt_path, payload(stage, step, opt, sched, done, ema))
            sink.emit("checkpoint", path=str(ckpt_path), stage=stage, step=step)

    last_loss = float("nan")
    for spec in stages:
        if spec.index < start_stage:
            continue
        resuming_here = resume is not None and spec.index == start_stage
        first = start_step if resuming_here else 0
        if first >= spec.steps:
            continue
        base = _unwrap(model)
        params = base.set_stage(spec.index) if hasattr(base, "set_stage") else list(base.parameters())
        base.train()
        net = model
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(base, device_ids=[device.index] if device.type == "cuda" else None,
                      find_unused_parameters=True)
        opt = _make_optimizer(params, spec.lr, tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, n=spec.steps, w=min(tcfg.warmup_steps, spec.steps // 2): lr_factor(s, n, w))
        if resuming_here and ts.get("optimizer") is not None:
            opt.load_state_dict(ts["optimizer"])
            sched.load_state_dict(ts["scheduler"])
        ema = None
        if spec.ema and tcfg.ema_decay > 0:
            ema = _EMA(base, params, tcfg.ema_decay, ts.get("ema") if resuming_here else None)
        bar = ProgressBar(spec.steps, label=f"stage {spec.index} {spec.name}", enabled=progress and dist_info.is_main,
                          initial=first)
        meter = _Meter()
        t_last, step_last = time.time(), first
        bs = spec.batch_size or tcfg.batch_size
        for step in range(first + 1, spec.steps + 1):
            batch = sample(rng, bs).to(device)
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(batch, spec.index)
                loss = out["loss"]
                bad = all_max(0.0 if torch.isfinite(loss).item() else 1.0, dist_info, device)
                if bad:
                    msg = (f"loss became NaN/inf at stage {spec.index} ({spec.name}) step {step}; stopped. The last "
                           f"good checkpoint is kept at {ckpt_path}" if ckpt_path.exists() else
                           f"loss became NaN/inf at stage {spec.index} ({spec.name}) step {step}; stopped before any "
                           f"checkpoint was written")
                    sink.emit("error", message=msg + "; try a lower learning rate")
                    bar.close()
                    raise MageError(msg + "; try a lower learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tcfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update()
            except torch.OutOfMemoryError:
                msg = out_of_memory_hint(spec, bs)
                sink.emit("error", message=msg)
                bar.close()
                raise MageError(msg) from None
            changed = bool(base.after_step(spec.index, step)) if hasattr(base, "after_step") else False
            if dist_info.enabled and all_max(float(changed), dist_info, device):
                broadcast_module(base)
            meter.add(out)
            last_loss = float(loss.detach())
            remaining_total -= 1
            if step % tcfg.log_every == 0 or step == spec.steps:
                now = time.time()
                rate = (step - step_last) / max(now - t_last, 1e-9)
                rec = meter.report()
                metrics[f"stage{spec.index}"] = {**rec, "step": step}
                metrics["last"] = metrics[f"stage{spec.index}"]
                sink.emit("step", stage=spec.index, stage_name=spec.name, step=step, total=spec.steps, **rec,
                          segments_per_s=round(rate * bs * dist_info.world_size, 1),
                          eta_s=round(remaining_total / max(rate, 1e-9), 1), lr=sched.get_last_lr()[0])
                t_last, step_last = now, step
            bar.update(step, f"loss {last_loss:.4f}")
            if step % tcfg.ckpt_every == 0 and step != spec.steps:
                write(spec.index, step, opt, sched, ema=ema)
        bar.close()
        if ema is not None:
            ema.apply()
            if dist_info.enabled:
                broadcast_module(base)
        sink.emit("stage_end", stage=spec.index, stage_name=spec.name, metrics=metrics.get(f"stage{spec.index}", {}))
        if spec is not stages[-1]:  # the last stage ends with the final checkpoint below
            write(spec.index, spec.steps, opt, sched)
    final = payload(stages[-1].index, stages[-1].steps, done=True)
    if dist_info.is_main:
        save_checkpoint(ckpt_path, final)
        sink.emit("checkpoint", path=str(ckpt_path), stage=stages[-1].index, step=stages[-1].steps)
        sink.emit("done", checkpoint=str(ckpt_path), wall_s=round(time.time() - wall0, 2), final_loss=last_loss if math.isfinite(last_loss) else None)
    return final
