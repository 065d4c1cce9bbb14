"""Shared baseline machinery: loop config, training on mage_core.training.loop, RTG bookkeeping, checkpoints."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from mage_core.checkpoint import FORMAT as CKPT_FORMAT
from mage_core.checkpoint import FORMAT_VERSION, load_checkpoint, package_versions
from mage_core.config import TrainConfig
from mage_core.data.segments import Normaliser, SegmentDataset
from mage_core.errors import MageError
from mage_core.progress import as_event_writer
from mage_core.task_spec import task_to_dict
from mage_core.tasks import Task, segment_config
from mage_core.training.loop import StageSpec, run_training

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # action bounds of every built-in task (Box(-1, 1))


# ---------------------------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class TrainLoopConfig:
    """Optimisation knobs every baseline shares (each baseline config extends this)."""

    steps: int = 2000  # optimisation steps
    batch_size: int = 256  # segments per step
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay (decoupled)
    warmup_steps: int = 100  # linear learning-rate warm-up, then cosine decay to 10% (mage_core.training.loop.lr_factor)
    grad_clip: float = 1.0  # max gradient norm (0 = no clipping)
    log_every: int = 50  # steps between "step" events
    ckpt_every: int = 1000  # steps between periodic checkpoints (always one at the end)
    num_threads: int = 0  # torch CPU threads (0 = all cores but one; `mage train --threads N`)


def config_to_dict(cfg) -> dict:
    """A dataclass config as a nested plain dict (tuples become lists, as they would in JSON)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def config_from_dict(cls, d: dict):
    """Rebuild a config dataclass from a plain dict, ignoring unknown keys and restoring tuples."""
    kw = {}
    for f in fields(cls):
        if f.name in d:
            v = d[f.name]
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kw)


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
def make_segments(episodes: list, task: Task, horizon: int, normaliser: Normaliser | None = None) -> SegmentDataset:
    """The shared SegmentDataset with the task's RTG relabel (window or dense), cut at `horizon` steps."""
    return SegmentDataset(episodes, segment_config(task, horizon), normaliser)


def segment_rows(ds: SegmentDataset, idx_B: np.ndarray) -> np.ndarray:
    """Row indices (B, H) into the dataset's flat arrays for the segments with start indices idx_B."""
    return ds.starts[np.asarray(idx_B)][:, None] + np.arange(ds.config.horizon)


def episode_timesteps(ds: SegmentDataset) -> np.ndarray:
    """(N,) time index within its episode of every row of ds.x_ND (padding rows keep counting)."""
    pad = ds.config.horizon - 1
    t_N = np.concatenate([np.arange(ep.length + 1 + pad) for ep in ds.episodes])
    if len(t_N) != len(ds.x_ND):
        raise MageError("internal error: episode_timesteps does not match the segment layout")
    return t_N


def dataset_meta(episodes: list, ds: SegmentDataset, dataset: Any, reports_success: bool = True) -> dict:
    """What the checkpoint records about its training data: id/path, size, RTG range, episode-start RTGs and the
    dataset's reference scores ("ref_scores": [min, max] or None, as MAGE checkpoints have them).
    `dataset` is an id/path, None, or a dict with "id" and "ref_scores"."""
    lo, hi = ds.return_range()
    start_rows = np.concatenate([[0], np.cumsum([ep.length + ds.config.horizon for ep in episodes])[:-1]])
    start_R = ds.x_ND[start_rows, 0]
    src = dataset if isinstance(dataset, dict) else {"id": str(dataset) if dataset is not None else None}
    return {"id": src.get("id"), "episodes": len(episodes), "steps": int(sum(ep.length for ep in episodes)),
            "rtg_range": [lo, hi], "rtg_start_max": float(start_R.max()), "rtg_start_median": float(np.median(start_R)),
            "rtg_mode": ds.config.rtg_mode, "rtg_window": ds.config.rtg_window,
            "ref_scores": src.get("ref_scores"),
            "success_rate": float(np.mean([ep.success for ep in episodes])) if reports_success else None}


# ---------------------------------------------------------------------------------------------------------------
# RTG bookkeeping at acting time
# ---------------------------------------------------------------------------------------------------------------
def default_rtg_target(meta: dict) -> float:
    """The RTG target used when none is given: the dataset's expert return on the evaluation protocol
    (ref_max_score, the level DT is conditioned on in its paper), else the median episode-start RTG of the data.

    Targets far above what is reachable from the start are out of distribution for window RTGs (c_t is clamped at
    W, which the data shows only at the goal itself); DT then stalls, so the maximum label is not a safe default.
    """
    if meta.get("ref_scores"):
        return float(meta["ref_scores"][1])
    return float(meta.get("rtg_start_median", meta.get("rtg_range", [0.0, 0.0])[1]))


def check_obs(obs_ND: np.ndarray, obs_dim: int) -> np.ndarray:
    """Validate a batch of flattened observations (N, obs_dim) -> float32 array."""
    obs_ND = np.asarray(obs_ND, dtype=np.float32)
    if obs_ND.ndim == 1:
        obs_ND = obs_ND[None]
    if obs_ND.ndim != 2 or obs_ND.shape[1] != obs_dim:
        raise MageError(f"expected observations of shape (N, {obs_dim}), got {tuple(obs_ND.shape)}")
    return obs_ND


# ---------------------------------------------------------------------------------------------------------------
# checkpoints and training (mage_core.checkpoint / mage_core.training.loop do the work)
# ---------------------------------------------------------------------------------------------------------------
def load_ckpt(ckpt_or_path: dict | str | Path, algo: str | None = None) -> dict:
    """A checkpoint dict from a dict or a path (mage_core.checkpoint.load_checkpoint), checking its algo."""
    ckpt = ckpt_or_path if isinstance(ckpt_or_path, dict) else load_checkpoint(ckpt_or_path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise MageError("not a mage checkpoint (no format marker)")
    if algo is not None and ckpt.get("algo") != algo:
        raise MageError(f"checkpoint was trained with algo {ckpt.get('algo')!r}, not {algo!r}")
    return ckpt


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_model(algo: str, model: nn.Module, config: TrainLoopConfig, ds: SegmentDataset, task: Task,
                episodes: list, *, out: str | Path, resume: dict | None, events: Any, seed: int,
                device: torch.device, dataset: Any, progress: bool = False,
                batch_fn: Callable[[np.random.Generator, int], object] | None = None) -> dict:
    """Train a baseline with mage_core.training.loop.run_training (one stage named after the algo) and write `out`.

    The model follows run_training's contract: forward(batch, stage) -> {"loss": ...}. Returns the final checkpoint.
    """
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
    tcfg = TrainConfig(batch_size=config.batch_size, weight_decay=config.weight_decay, warmup_steps=config.warmup_steps,
                       grad_clip=config.grad_clip, log_every=config.log_every,
                       ckpt_every=config.ckpt_every or config.steps, seed=seed, device=str(device), amp=False,
                       num_threads=int(getattr(config, "num_threads", 0) or 0))
    static = {"format": CKPT_FORMAT, "format_version": FORMAT_VERSION, "versions": package_versions(),
              "algo": algo, "config": {algo: config_to_dict(config)}, "normaliser": ds.normaliser.state_dict(),
              "task": task.name, "task_spec": task_to_dict(task), "dataset": dataset_meta(episodes, ds, dataset, task.suite.reports_success(task)),
              "spaces": {"obs_dim": ds.obs_dim, "act_dim": ds.act_dim, "obs_keys": list(task.obs_keys)}}
    return run_training(model, [StageSpec(1, algo, config.steps, config.lr)], ds, tcfg, ckpt_path=out,
                        static_payload=static, sink=as_event_writer(events), resume=resume, device=device,
                        progress=progress, batch_fn=batch_fn)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where mask (broadcast over the last dim) is 1."""
    w = mask.unsqueeze(-1).expand_as(pred)
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp_min(1.0)
