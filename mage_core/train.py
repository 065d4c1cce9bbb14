"""Staged training: MAGE's three stages on top of a reusable loop (events, progress, atomic checkpoints, exact
resume, NaN/OOM handling, data parallel under torchrun) that the baselines share.

Read top to bottom:
  1. devices and data parallel   resolve_device, init_distributed
  2. events and progress         EventSink (JSON lines), Progress (tqdm or a text bar on stderr)
  3. the generic loop            StageSpec, run_training(model, stages, dataset, train_cfg, ...)
  4. MAGE                        mage_stages, train_mage(cfg, episodes, task, ...)

Contract for any model trained by run_training (MAGE and the baselines):
  model.forward(batch: SegmentBatch, stage: int) -> dict with "loss" (the scalar optimised) and any other scalar
  tensors (logged under "losses"); optional "token_acc_K" / "usage_K" tensors are logged as token_acc /
  codebook_usage. Optional hooks: model.set_stage(stage) -> parameters to optimise (default: all),
  model.after_step(stage, step) -> bool (True when it changed parameters outside the optimiser).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from mage_core.checkpoint import load_checkpoint, save_checkpoint
from mage_core.config import MageConfig, TrainConfig
from mage_core.data.segments import SegmentConfig, SegmentDataset
from mage_core.errors import MageError
from mage_core.progress import ProgressBar

# ---------------------------------------------------------------------------------------------------------------------
# 1. devices and data parallel
# ---------------------------------------------------------------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is a MageError."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise MageError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise MageError(f"unknown device {name!r}; use auto, cpu or cuda") from None


@dataclass
class DistInfo:
    """Where this process sits in a (torchrun) data-parallel job; world_size 1 = plain single process."""

    rank: int = 0  # global rank
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (selects the GPU)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown_distributed(synchronise: bool = True) -> None:
    """Leave the process group (if any) so that no rank exits while another still talks to it: a barrier first when
    every rank finished normally (after an error one rank may never arrive), then destroy_process_group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()


def configure_cpu_threads(requested: int, dist_info: DistInfo | None = None) -> int:
    """Set torch's CPU threads: `requested`, or (0 = auto) all cores but one shared among the DDP processes.
    Leaving a core free matters: an oversubscribed OpenMP pool is several times slower than a single thread."""
    world = dist_info.world_size if dist_info else 1
    n = requested or max(1, ((os.cpu_count() or 1) - 1) // world)
    torch.set_num_threads(n)
    return n


def _all_max(flag: float, dist_info: DistInfo, device) -> float:
    if not dist_info.enabled:
        return flag
    import torch.distributed as dist

    t = torch.tensor([flag], dtype=torch.float32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _broadcast_module(model: nn.Module):
    import torch.distributed as dist

    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, 0)


# ---------------------------------------------------------------------------------------------------------------------
# 2. events and progress
# ---------------------------------------------------------------------------------------------------------------------


class EventSink:
    """JSON-lines training events (see docs/ARCHITECTURE.md). target: a file path (appended), "-" for stdout, or
    None for no file; callbacks get every event dict too. Disabled sinks (non-zero DDP ranks) drop everything."""

    def __init__(self, target: str | os.PathLike | None = None, callbacks: list[Callable[[dict], None]] | None = None,
                 enabled: bool = True):
        self.callbacks = list(callbacks or [])
        self.enabled = enabled
        self._own = False
        self._fh = None
        if enabled and target is not None:
            if str(target) == "-":
                self._fh = sys.stdout
            else:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(target, "a", buffering=1)
                self._own = True

    def emit(self, event: str, **fields) -> dict:
        record = {"event": event, **fields}
        if not self.enabled:
            return record
        if self._fh is not None:
            self._fh.write(json.dumps(record, default=_json_default) + "\n")
            self._fh.flush()
        for cb in self.callbacks:
            cb(record)
        return record

    def close(self):
        if self._own and self._fh is not None:
            self._fh.close()
        self._fh = None


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, torch.Tensor):
        return v.tolist()
    return str(v)


class Progress:
    """Progress bar on stderr: tqdm when installed, else a plain text line every few percent."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool = True):
        self.enabled, self.total, self.n, self.desc = enabled, total, initial, desc
        self._bar = None
        self._last_pct = -1
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True,
                             leave=True)
        except ImportError:
            self._bar = None

    def update(self, n: int = 1, postfix: str = ""):
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            return
        pct = int(100 * self.n / max(self.total, 1))
        if pct // 5 != self._last_pct // 5 or self.n == self.total:
            self._last_pct = pct
            filled = pct // 5
            print(f"\r{self.desc} [{'#' * filled}{'.' * (20 - filled)}] {self.n}/{self.total} {postfix}",
                  end="\n" if self.n >= self.total else "", file=sys.stderr, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()


# ---------------------------------------------------------------------------------------------------------------------
# 3. the generic loop
# ---------------------------------------------------------------------------------------------------------------------


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


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based): linear warm-up then cosine to 0.1."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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
                 ckpt_path, static_payload: dict, sink: EventSink | None = None, resume: dict | None = None,
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
    sink = sink or EventSink(None)
    if not dist_info.is_main:
        sink = EventSink(None, enabled=False)
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
        bar = Progress(spec.steps, first, f"stage {spec.index} {spec.name}", enabled=progress and dist_info.is_main)
        meter = _Meter()
        t_last, step_last = time.time(), first
        bs = spec.batch_size or tcfg.batch_size
        for step in range(first + 1, spec.steps + 1):
            batch = sample(rng, bs).to(device)
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(batch, spec.index)
                loss = out["loss"]
                bad = _all_max(0.0 if torch.isfinite(loss).item() else 1.0, dist_info, device)
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
                msg = (f"CUDA ran out of memory with batch size {tcfg.batch_size}; try a smaller batch size, e.g. "
                       f"--batch-size {max(1, tcfg.batch_size // 2)}")
                sink.emit("error", message=msg)
                bar.close()
                raise MageError(msg) from None
            changed = bool(base.after_step(spec.index, step)) if hasattr(base, "after_step") else False
            if dist_info.enabled and _all_max(float(changed), dist_info, device):
                _broadcast_module(base)
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
                bar.update(0, f"loss {last_loss:.4f}")
            bar.update(1)
            if step % tcfg.ckpt_every == 0 and step != spec.steps:
                write(spec.index, step, opt, sched, ema=ema)
        bar.close()
        if ema is not None:
            ema.apply()
            if dist_info.enabled:
                _broadcast_module(base)
        sink.emit("stage_end", stage=spec.index, stage_name=spec.name, metrics=metrics.get(f"stage{spec.index}", {}))
        if spec is not stages[-1]:  # the last stage ends with the final checkpoint below
            write(spec.index, spec.steps, opt, sched)
    final = payload(stages[-1].index, stages[-1].steps, done=True)
    if dist_info.is_main:
        save_checkpoint(ckpt_path, final)
        sink.emit("checkpoint", path=str(ckpt_path), stage=stages[-1].index, step=stages[-1].steps)
        sink.emit("done", checkpoint=str(ckpt_path), wall_s=round(time.time() - wall0, 2), final_loss=last_loss if math.isfinite(last_loss) else None)
    return final


# ---------------------------------------------------------------------------------------------------------------------
# 4. MAGE
# ---------------------------------------------------------------------------------------------------------------------


DEFAULT_DOWNSAMPLE = 4  # r when neither the config nor the task chooses one


def mage_stages(tcfg: TrainConfig) -> list[StageSpec]:
    """The three MAGE stages: autoencoder, transformer + inverse dynamics on frozen tokens, Gumbel refinement."""
    from mage_core.model.mage import STAGE_NAMES

    return [StageSpec(1, STAGE_NAMES[1], tcfg.stage1_steps, tcfg.lr_stage1),
            StageSpec(2, STAGE_NAMES[2], tcfg.stage2_steps, tcfg.lr_stage2, max(tcfg.batch_size, tcfg.inv_batch_size),
                      ema=True),
            StageSpec(3, STAGE_NAMES[3], tcfg.stage3_steps, tcfg.lr_stage3, ema=True)]


def make_segment_dataset(episodes: list, task, cfg: MageConfig, normaliser=None) -> SegmentDataset:
    """Cut episodes into segments of the model's horizon with the configured RTG relabel."""
    seg = SegmentConfig(horizon=cfg.model.horizon or task.horizon,
                        rtg_window=cfg.data.rtg_window or task.eval_steps,
                        rtg_mode=cfg.data.rtg_mode or getattr(task, "rtg_mode", "window"))
    return SegmentDataset(episodes, seg, normaliser=normaliser)


def dataset_summary(dataset: SegmentDataset, dataset_id: str | None, episodes: list) -> dict:
    """The checkpoint's "dataset" field."""
    lo, hi = dataset.return_range()
    return {"id": str(dataset_id) if dataset_id is not None else None, "episodes": len(episodes),
            "steps": int(sum(e.length for e in episodes)), "rtg_range": [lo, hi],
            "success_rate": float(np.mean([e.success for e in episodes]))}


def train_mage(cfg: MageConfig | None, episodes: list, task, *, out_path, dataset_id: str | None = None,
               sink: EventSink | None = None, resume: str | os.PathLike | dict | None = None,
               progress: bool = True, batch_fn=None, device: str | None = None) -> dict:
    """Train MAGE on episodes of `task` and write the checkpoint to out_path; returns the final payload.

    resume: a checkpoint path (or loaded dict) written by this function; its config, normaliser and train state
    are used and training continues exactly where it stopped (cfg is ignored then and may be None).
    device: overrides cfg.train.device (e.g. to resume a GPU run on a CPU)."""
    from mage_core.checkpoint import check_compatible
    from mage_core.model.mage import MAGE

    normaliser = None
    if resume is not None:
        ckpt = resume if isinstance(resume, dict) else load_checkpoint(resume)
        if ckpt.get("algo") != "mage":
            raise MageError(f"cannot resume a {ckpt.get('algo')!r} checkpoint with --algo mage")
        cfg = MageConfig.from_dict(ckpt["config"])
        from mage_core.data.segments import Normaliser

        normaliser = Normaliser.from_state_dict(ckpt["normaliser"])
        resume = ckpt
    if cfg is None:
        raise MageError("train_mage needs a config (or a checkpoint to resume)")
    if device is not None:
        cfg.train.device = device
    device = resolve_device(cfg.train.device)
    dist_info, device = init_distributed(device)
    if torch.device(device).type == "cpu":  # before the return-ceiling fit, not only in the training loop: a fit on
        configure_cpu_threads(cfg.train.num_threads, dist_info)  # an oversubscribed default pool ran ~8x slower
    dataset = make_segment_dataset(episodes, task, cfg, normaliser)
    if resume is not None:
        check_compatible(resume, dataset.obs_dim, dataset.act_dim)
    cfg.model.horizon = cfg.model.horizon or task.horizon
    cfg.model.downsample = cfg.model.downsample or getattr(task, "downsample", 0) or DEFAULT_DOWNSAMPLE
    cfg.data.rtg_window = dataset.config.rtg_window
    cfg.data.rtg_mode = dataset.config.rtg_mode
    cfg.model.obs_dim, cfg.model.act_dim = dataset.obs_dim, dataset.act_dim
    torch.manual_seed(cfg.train.seed)
    model = MAGE(cfg.model)
    model.gumbel_tau = cfg.train.gumbel_tau
    model.train_weights = {"w_cond": cfg.train.w_cond, "w_inv": cfg.train.w_inv, "w_ce": cfg.train.w_ce_stage3}
    model.ce_batch = cfg.train.batch_size
    model.coarse_ce_scales = cfg.train.coarse_ce_scales
    model.inv_loss = cfg.train.inv_loss
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
    elif model.inv.frame is not None:  # a suite's head frame: de-normalisation and feature statistics from the data
        norm = dataset.normaliser
        model.inv.fit_frame(norm.x_mean_D, norm.x_std_D, dataset.sample(4096, np.random.default_rng(cfg.train.seed)).x_BHD)
    ceiling = resume.get("ceiling") if resume is not None else None
    if ceiling is None:  # return ceiling R_hi(s): keeps the planner's RTG conditions feasible (model/ceiling.py)
        from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling

        real = dataset.m_N > 0
        steps = cfg.train.ceiling_steps or int(min(1500, max(100, cfg.train.stage2_steps)))
        bar = ProgressBar(steps, label="return ceiling", enabled=progress and dist_info.rank == 0)
        ceiling, _ = fit_return_ceiling(dataset.xn_ND[real], CeilingConfig(steps=steps, seed=cfg.train.seed),
                                        progress=bar.update)
        bar.close()
    if resume is None:  # after the ceiling fit, which reseeds torch: per-rank training noise (dropout, Gumbel)
        torch.manual_seed(cfg.train.seed + 7919 * dist_info.rank)
    summary = dataset_summary(dataset, dataset_id, episodes)
    from mage_core.data.store import reference_scores
    from mage_core.planner import task_to_dict

    summary["ref_scores"] = reference_scores(dataset_id, task)
    static = {"algo": "mage", "config": cfg.to_dict(), "normaliser": dataset.normaliser.state_dict(),
              "task": task.name, "task_spec": task_to_dict(task), "dataset": summary, "ceiling": ceiling,
              "spaces": {"obs_dim": dataset.obs_dim, "act_dim": dataset.act_dim, "obs_keys": list(task.obs_keys),
                         "horizon": model.horizon, "scales": list(model.scales)}}
    return run_training(model, mage_stages(cfg.train), dataset, cfg.train, ckpt_path=out_path, static_payload=static,
                        sink=sink, resume=resume, device=device, dist_info=dist_info, progress=progress,
                        batch_fn=batch_fn)
