"""Shared baseline machinery: training-loop config and loop, RTG bookkeeping, checkpoint assembly, data access."""
from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from mage_core.data.segments import Normaliser, SegmentBatch, SegmentDataset
from mage_core.errors import MageError
from mage_core.tasks import Task, segment_config

CKPT_FORMAT = "mage-ckpt"  # value of the checkpoint's "format" field (see docs/ARCHITECTURE.md)
CKPT_FORMAT_VERSION = 1  # version of the checkpoint layout written here
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
    warmup_steps: int = 100  # linear learning-rate warm-up, then cosine decay to lr_final_frac * lr
    lr_final_frac: float = 0.1  # final learning rate as a fraction of the peak
    grad_clip: float = 1.0  # max gradient norm (0 = no clipping)
    log_every: int = 50  # steps between "step" events
    ckpt_every: int = 1000  # steps between checkpoints written to `out` (0 = only at the end)


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


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """'auto' -> cuda when available else cpu; anything else as given (bad names raise MageError)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise MageError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MageError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


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
        raise MageError("internal error: segment layout changed; episode_timesteps no longer matches it")
    return t_N


def dataset_meta(episodes: list, ds: SegmentDataset, dataset: Any) -> dict:
    """What the checkpoint records about its training data (id/path, size, RTG range and episode-start RTGs)."""
    lo, hi = ds.return_range()
    start_rows = np.concatenate([[0], np.cumsum([ep.length + ds.config.horizon for ep in episodes])[:-1]])
    start_R = ds.x_ND[start_rows, 0]
    return {"id": str(dataset) if dataset is not None else "", "episodes": len(episodes),
            "steps": int(sum(ep.length for ep in episodes)), "rtg_range": [lo, hi],
            "rtg_start_max": float(start_R.max()), "rtg_start_median": float(np.median(start_R)),
            "rtg_mode": ds.config.rtg_mode, "rtg_window": ds.config.rtg_window}


# ---------------------------------------------------------------------------------------------------------------
# RTG bookkeeping at acting time
# ---------------------------------------------------------------------------------------------------------------
class RTGTracker:
    """Per-env return-to-go condition; window mode: c_t = clip(G - r_<t + t, 0, W), dense mode: c_t = G - r_<t."""

    def __init__(self, target: float, mode: str = "window", window: int = 300):
        self.target = float(target)  # G: the user's return target for the whole episode
        self.mode = mode  # "window" or "dense" (see mage_core.data.segments.SegmentConfig.rtg_mode)
        self.window = int(window)  # W: evaluation window of the window-equivalent RTG
        self.reset(1)

    def reset(self, n_envs: int) -> None:
        self.received_N = np.zeros(n_envs)
        self.t = 0

    def step(self, reward_N: np.ndarray) -> np.ndarray:
        """Add the rewards received since the last call and return the condition c_t for this step (N,)."""
        self.received_N = self.received_N + np.asarray(reward_N, dtype=np.float64).reshape(-1)
        if self.mode == "window":
            c_N = np.clip(self.target - self.received_N + self.t, 0.0, self.window)
        else:
            c_N = self.target - self.received_N
        self.t += 1
        return c_N


def default_rtg_target(meta: dict) -> float:
    """The RTG target used when none is given: the best episode-start return in the data (the DT convention)."""
    return float(meta.get("rtg_start_max", meta.get("rtg_range", [0.0, 0.0])[1]))


def check_obs(obs_ND: np.ndarray, obs_dim: int) -> np.ndarray:
    """Validate a batch of flattened observations (N, obs_dim) -> float32 array."""
    obs_ND = np.asarray(obs_ND, dtype=np.float32)
    if obs_ND.ndim == 1:
        obs_ND = obs_ND[None]
    if obs_ND.ndim != 2 or obs_ND.shape[1] != obs_dim:
        raise MageError(f"expected observations of shape (N, {obs_dim}), got {tuple(obs_ND.shape)}")
    return obs_ND


# ---------------------------------------------------------------------------------------------------------------
# events and checkpoints (delegating to mage_core.train / mage_core.checkpoint when they are present)
# ---------------------------------------------------------------------------------------------------------------
def emit(events: Any, event: dict) -> None:
    """Send one training event to a sink: None (dropped), a mage_core.progress.EventWriter-like object with
    .emit(name, **fields), or a callable taking the whole event dict."""
    if events is None:
        return
    if hasattr(events, "emit"):
        fields_ = dict(event)
        events.emit(fields_.pop("event"), **fields_)
    else:
        events(event)


def versions() -> dict:
    import mage_core

    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "mage": getattr(mage_core, "__version__", "?")}


def save_ckpt(ckpt: dict, path: str | Path) -> Path:
    """Write a checkpoint atomically through mage_core.checkpoint when present (else temp file + fsync + replace)."""
    path = Path(path)
    try:
        from mage_core.checkpoint import save_checkpoint
    except ImportError:
        save_checkpoint = None
    if save_checkpoint is not None:
        save_checkpoint(ckpt, path)
        return path
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(ckpt, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_ckpt(ckpt_or_path: dict | str | Path, algo: str | None = None) -> dict:
    """A checkpoint dict from a dict or a path (safe weights_only load), checking its format and algo."""
    if isinstance(ckpt_or_path, dict):
        ckpt = ckpt_or_path
    else:
        try:
            from mage_core.checkpoint import load_checkpoint
        except ImportError:
            load_checkpoint = None
        path = Path(ckpt_or_path)
        if load_checkpoint is not None:
            ckpt = load_checkpoint(path)
        else:
            if not path.is_file():
                raise MageError(f"checkpoint not found: {path}")
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise MageError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise MageError("not a MAGE checkpoint (missing format field)")
    if algo is not None and ckpt.get("algo") != algo:
        raise MageError(f"checkpoint was trained with algo {ckpt.get('algo')!r}, not {algo!r}")
    return ckpt


def build_checkpoint(algo: str, config, model: nn.Module, normaliser: Normaliser, task: Task, meta: dict,
                     train_state: dict, metrics: dict) -> dict:
    """The common checkpoint dict (docs/ARCHITECTURE.md) for a baseline."""
    return {"format": CKPT_FORMAT, "format_version": CKPT_FORMAT_VERSION, "algo": algo,
            "config": {algo: config_to_dict(config)}, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "normaliser": normaliser.state_dict(), "task": task.name, "dataset": meta,
            "spaces": {"obs_dim": int(len(normaliser.x_mean_D) - 1), "act_dim": int(len(normaliser.a_mean_A)),
                       "obs_keys": list(task.obs_keys)},
            "task_spec": task_spec(task), "versions": versions(), "train_state": train_state, "metrics": metrics}


def task_spec(task: Task) -> dict:
    """The Task's fields as plain data, so checkpoints of dataset-derived (unregistered) tasks can rebuild it."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(task).items()}


def task_of(ckpt: dict) -> Task:
    """The Task a checkpoint was trained on: the registered one by name, else rebuilt from its stored task_spec."""
    from mage_core.tasks import TASKS

    if ckpt.get("task") in TASKS:
        return TASKS[ckpt["task"]]
    spec = ckpt.get("task_spec")
    if not spec:
        raise MageError(f"checkpoint task {ckpt.get('task')!r} is not a built-in task and the checkpoint does not describe it")
    known = {f.name for f in fields(Task)}
    return Task(**{k: v for k, v in spec.items() if k in known})


# ---------------------------------------------------------------------------------------------------------------
# the training loop
# ---------------------------------------------------------------------------------------------------------------
def lr_at(step: int, cfg: TrainLoopConfig) -> float:
    """Linear warm-up then cosine decay to lr_final_frac * lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.lr_final_frac + (1 - cfg.lr_final_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, cfg: TrainLoopConfig) -> torch.optim.Optimizer:
    """AdamW with decay on matrices only (no decay on biases, norms and embeddings' 1-D params)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(algo: str, model: nn.Module, loss_fn: Callable[[np.random.Generator], dict], cfg: TrainLoopConfig, *,
        make_ckpt: Callable[[dict, dict], dict], out: str | Path | None, resume: dict | None, events: Any,
        seed: int, device: torch.device, task_name: str) -> dict:
    """Train `model` for cfg.steps steps of loss_fn(rng)["loss"]; emit events; checkpoint to `out`; return the last ckpt.

    loss_fn draws its own batch with the given numpy Generator and returns a dict of scalar tensors ("loss" first).
    make_ckpt(train_state, metrics) assembles the checkpoint dict. `resume` is a previous checkpoint of this run.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = make_optimizer(model, cfg)
    step = 0
    if resume is not None:
        ts = resume.get("train_state") or {}
        model.load_state_dict(resume["state_dict"])
        if ts.get("optimizer"):
            opt.load_state_dict(ts["optimizer"])
        step = int(ts.get("step", 0))
        if ts.get("numpy_rng"):
            rng.bit_generator.state = _rng_state_from(ts["numpy_rng"])
        if ts.get("torch_rng") is not None:
            torch.set_rng_state(ts["torch_rng"])
    emit(events, {"event": "start", "algo": algo, "task": task_name, "stages": [{"name": algo, "steps": cfg.steps}],
                  "device": str(device), "params": n_params(model), "resumed_from_step": step})
    model.train()
    t0 = time.perf_counter()
    t_log, step_log = t0, step
    metrics: dict = {}
    ckpt: dict | None = None

    def snapshot() -> dict:
        ts = {"optimizer": opt.state_dict(), "step": step, "stage": algo, "numpy_rng": _rng_state_to(rng),
              "torch_rng": torch.get_rng_state()}
        return make_ckpt(ts, dict(metrics))

    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        losses = loss_fn(rng)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            rate = (step - step_log) / max(now - t_log, 1e-9)
            metrics = {k: float(v.detach()) for k, v in losses.items()}
            emit(events, {"event": "step", "stage": algo, "step": step, "total": cfg.steps, "losses": metrics,
                          "segments_per_s": rate * cfg.batch_size, "steps_per_s": rate,
                          "eta_s": (cfg.steps - step) / max(rate, 1e-9), "lr": opt.param_groups[0]["lr"]})
            t_log, step_log = now, step
        if out is not None and cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.steps:
            save_ckpt(snapshot(), out)
            emit(events, {"event": "checkpoint", "path": str(out), "stage": algo, "step": step})
    model.eval()
    metrics["train_wall_s"] = time.perf_counter() - t0
    ckpt = snapshot()
    emit(events, {"event": "stage_end", "stage": algo, "metrics": dict(metrics)})
    if out is not None:
        save_ckpt(ckpt, out)
        emit(events, {"event": "checkpoint", "path": str(out), "stage": algo, "step": step})
    return ckpt


def _rng_state_to(rng: np.random.Generator) -> dict:
    """A numpy PCG64 state as tensors/ints only (weights_only-safe)."""
    st = rng.bit_generator.state
    return {"state": int(st["state"]["state"]), "inc": int(st["state"]["inc"]), "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"])}


def _rng_state_from(d: dict) -> dict:
    return {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
            "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where mask (broadcast over the last dim) is 1."""
    w = mask.unsqueeze(-1).expand_as(pred)
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp_min(1.0)


def batch_to(batch: SegmentBatch, device: torch.device) -> SegmentBatch:
    return batch if device.type == "cpu" else batch.to(device)
