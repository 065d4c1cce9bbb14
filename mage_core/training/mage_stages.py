"""MAGE's three training stages on the generic loop, and train_mage(cfg, episodes, task, ...) that runs them.

Around the loop: the segment dataset, the return-ceiling fit and the checkpoint's static fields."""
from __future__ import annotations

import os

import numpy as np
import torch

from mage_core.checkpoint import check_compatible, load_checkpoint
from mage_core.config import MageConfig, TrainConfig
from mage_core.data.segments import Normaliser, SegmentConfig, SegmentDataset
from mage_core.data.store import reference_scores
from mage_core.device import configure_cpu_threads, init_distributed, resolve_device
from mage_core.errors import MageError
from mage_core.factory import build_mage
from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling
from mage_core.model.mage import STAGE_NAMES
from mage_core.progress import EventWriter, ProgressBar
from mage_core.task_spec import task_to_dict
from mage_core.training.loop import StageSpec, run_training

DEFAULT_DOWNSAMPLE = 4  # r when neither the config nor the task chooses one


def mage_stages(tcfg: TrainConfig) -> list[StageSpec]:
    """The three MAGE stages: autoencoder, transformer + inverse dynamics on frozen tokens, Gumbel refinement.
    Stage 2 samples the larger of the two batches (L_inv's); its out-of-memory hint names the option that sets it."""
    inv_larger = tcfg.inv_batch_size > tcfg.batch_size
    return [StageSpec(1, STAGE_NAMES[1], tcfg.stage1_steps, tcfg.lr_stage1, batch_flag="--batch-size"),
            StageSpec(2, STAGE_NAMES[2], tcfg.stage2_steps, tcfg.lr_stage2, max(tcfg.batch_size, tcfg.inv_batch_size),
                      ema=True, batch_flag="--inv-batch-size" if inv_larger else "--batch-size"),
            StageSpec(3, STAGE_NAMES[3], tcfg.stage3_steps, tcfg.lr_stage3, ema=True, batch_flag="--batch-size")]


def make_segment_dataset(episodes: list, task, cfg: MageConfig, normaliser=None) -> SegmentDataset:
    """Cut episodes into segments of the model's horizon with the configured RTG relabel."""
    seg = SegmentConfig(horizon=cfg.model.horizon or task.horizon,
                        rtg_window=cfg.data.rtg_window or task.eval_steps,
                        rtg_mode=cfg.data.rtg_mode or getattr(task, "rtg_mode", "window"))
    return SegmentDataset(episodes, seg, normaliser=normaliser)


def dataset_summary(dataset: SegmentDataset, dataset_id: str | None, episodes: list, reports_success: bool = True
                    ) -> dict:
    """The checkpoint's "dataset" field (success_rate None where the task has no goal: an episode's end is no
    success there)."""
    lo, hi = dataset.return_range()
    return {"id": str(dataset_id) if dataset_id is not None else None, "episodes": len(episodes),
            "steps": int(sum(e.length for e in episodes)), "rtg_range": [lo, hi],
            "success_rate": float(np.mean([e.success for e in episodes])) if reports_success else None}


def train_mage(cfg: MageConfig | None, episodes: list, task, *, out_path, dataset_id: str | None = None,
               sink: EventWriter | None = None, resume: str | os.PathLike | dict | None = None,
               progress: bool = True, batch_fn=None, device: str | None = None) -> dict:
    """Train MAGE on episodes of `task` and write the checkpoint to out_path; returns the final payload.

    resume: a checkpoint path (or loaded dict) written by this function; its config, normaliser and train state
    are used and training continues exactly where it stopped (cfg is ignored then and may be None).
    device: overrides cfg.train.device (e.g. to resume a GPU run on a CPU)."""
    normaliser = None
    if resume is not None:
        ckpt = resume if isinstance(resume, dict) else load_checkpoint(resume)
        if ckpt.get("algo") != "mage":
            raise MageError(f"cannot resume a {ckpt.get('algo')!r} checkpoint with --algo mage")
        cfg = MageConfig.from_dict(ckpt["config"])
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
    model = build_mage(cfg.model)
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
        real = dataset.m_N > 0
        steps = cfg.train.ceiling_steps or int(min(1500, max(100, cfg.train.stage2_steps)))
        bar = ProgressBar(steps, label="return ceiling", enabled=progress and dist_info.rank == 0)
        ceiling, _ = fit_return_ceiling(dataset.xn_ND[real], CeilingConfig(steps=steps, seed=cfg.train.seed),
                                        progress=bar.update)
        bar.close()
    if resume is None:  # after the ceiling fit, which reseeds torch: per-rank training noise (dropout, Gumbel)
        torch.manual_seed(cfg.train.seed + 7919 * dist_info.rank)
    summary = dataset_summary(dataset, dataset_id, episodes, task.suite.reports_success(task))
    summary["ref_scores"] = reference_scores(dataset_id, task)
    static = {"algo": "mage", "config": cfg.to_dict(), "normaliser": dataset.normaliser.state_dict(),
              "task": task.name, "task_spec": task_to_dict(task), "dataset": summary, "ceiling": ceiling,
              "spaces": {"obs_dim": dataset.obs_dim, "act_dim": dataset.act_dim, "obs_keys": list(task.obs_keys),
                         "horizon": model.horizon, "scales": list(model.scales)}}
    return run_training(model, mage_stages(cfg.train), dataset, cfg.train, ckpt_path=out_path, static_payload=static,
                        sink=sink, resume=resume, device=device, dist_info=dist_info, progress=progress,
                        batch_fn=batch_fn)
