"""Typed configuration dataclasses for the MAGE model and its staged training, plus the tiny/small/paper presets."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import asdict, dataclass, field

from mage_core.errors import MageError, UsageError


@dataclass
class ModelConfig:
    """Architecture of the MAGE model (autoencoder, multi-scale transformer, inverse dynamics)."""

    horizon: int = 0  # H: steps per generated segment; 0 = use the task's default horizon
    downsample: int = 0  # r: temporal downsampling of the encoder (power of 2); T = H / r latent positions;
    #                      0 = the task's default (Task.downsample), else 4
    latent_dim: int = 32  # C: channels of the latent f_BCT and of every codebook vector
    codebook_size: int = 256  # V: entries of the single codebook shared by all scales
    n_scales: int = 8  # K: scales p_1 < ... < p_K = T (ablation: 1 = a flat single-scale model)
    scales: tuple = ()  # explicit schedule (p_1, ..., p_K); empty = make_scale_schedule(T, n_scales)
    enc_channels: int = 64  # hidden channels of the conv encoder / decoder
    enc_blocks: int = 1  # residual blocks per resolution in the encoder / decoder
    refine_kernel: int = 3  # kernel of the per-scale conv refinement applied to each upsampled code map
    beta_commit: float = 0.25  # weight of the commitment term (encoder pulled towards the running f_hat)
    dead_code_every: int = 100  # stage-1 steps between dead-code restarts (0 = never)
    dead_code_threshold: float = 0.02  # a code is dead when its EMA usage share is below threshold / V
    d_model: int = 128  # transformer width
    n_layers: int = 2  # transformer blocks
    n_heads: int = 4  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / d_model in each block
    dropout: float = 0.0  # dropout in attention / MLP
    cond_dropout: float = 0.1  # probability of replacing the condition by the learned null condition (CFG)
    inv_hidden: int = 256  # hidden width of the inverse-dynamics MLP
    inv_lookahead: tuple = ()  # planned steps the inverse-dynamics head reads from the decoded latent (empty = the
    #                            flattened latent itself, the paper's I(sum z)); e.g. (1, 2, 4, 8, 12, 16, 24)
    inv_frame: str = ""  # a suite's input frame for the plan-reading head (needs inv_lookahead), e.g. "ant-heading":
    #                      proprioception and planned torso xy in the ant's heading frame; "" = the normalised rows
    rec_weights: tuple = ()  # per-column weights of stage 1's reconstruction loss over the modelled (R, s[, a])
    #                          columns, rescaled to mean 1 (empty = uniform, the paper's); `mage train --rec-weight`
    scale_rec_weight: float = 0.0  # stage 1: weight of the mean reconstruction error of the coarser prefixes
    #                                (decode(z_1 + ... + z_k) for k < K) beside the full one; 0 = off (the paper's: only
    #                                the full sum is decoded in training, so the coarse scales' plans are unsupervised)
    adapter_hidden: int = 32  # hidden channels of the condition adapter D'
    model_actions: bool = False  # ablation: model (R, s, a) segments instead of (R, s)
    use_cond_loss: bool = True  # ablation: condition adapter D' and L_cond on (False = no adapter, no L_cond)
    obs_dim: int = 0  # flattened observation size (filled from the data)
    act_dim: int = 0  # action size (filled from the data)


@dataclass
class TrainConfig:
    """Staged optimisation: step counts, learning rates, loss weights, logging and checkpointing."""

    stage1_steps: int = 1500  # autoencoder steps
    stage2_steps: int = 2000  # transformer + inverse-dynamics steps on frozen tokens
    stage3_steps: int = 0  # end-to-end refinement steps (Gumbel-Softmax); off in the small preset: it lowered the
    #                        maze scores we measured (docs/BENCHMARKS.md, "Inverse dynamics and stage 3"); --stage3-steps N turns it on
    batch_size: int = 32  # segments per step (per process under DDP)
    inv_batch_size: int = 256  # stage 2: segments per step for L_inv on the cheap frozen-token latents (the transformer's
    #                            cross-entropy uses the first batch_size of them); 0 = batch_size
    coarse_ce_scales: int = 0  # stage 2: the first n scales' cross-entropy also on the rest of the L_inv batch (their
    #                            tokens are a short prefix of the sequence, so 8x the segments cost about one more
    #                            small-batch pass; these scales choose the route); 0 = off, the paper's
    ceiling_steps: int = 0  # steps of the return-ceiling fit R_hi(s) (model/ceiling.py); 0 = min(1500, stage-2 steps).
    #                         Under-fitted it is optimistic next to walls, and the model, asked for a return no route
    #                         gives, plans through them: 20000 (~80 s on one core) on pointmaze-large, BENCHMARKS.md
    lr_stage1: float = 1e-3  # peak learning rate of stage 1
    lr_stage2: float = 6e-4  # peak learning rate of stage 2
    lr_stage3: float = 1e-4  # peak learning rate of stage 3
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_steps: int = 100  # linear warm-up steps at the start of each stage, then cosine decay to 10%
    grad_clip: float = 1.0  # max global gradient norm (0 = off)
    ema_decay: float = 0.0  # EMA of the transformer / inverse-dynamics weights in stages 2-3, applied at each stage end
    #                         (0 = off; stage 1 never: its dead-code restarts make an average codebook meaningless)
    w_cond: float = 1.0  # weight of L_cond
    w_inv: float = 1.0  # weight of L_inv
    inv_loss: str = "mse"  # L_inv's distance: "mse" (the paper's; fits the mean action) or "l1" (fits the median
    #                        action: under symmetric action noise and clipping to the action bounds — data where the
    #                        noisy expert saturates — the median is the noise-free action, the mean is shrunk towards 0)
    w_ce_stage3: float = 1.0  # weight of the cross-entropy kept in stage 3
    gumbel_tau: float = 1.0  # Gumbel-Softmax temperature in stage 3
    log_every: int = 25  # steps between "step" events
    ckpt_every: int = 500  # steps between periodic checkpoints (and always at each stage end)
    seed: int = 0  # seed of the model init, the segment sampler and the training noise
    device: str = "auto"  # "auto" (cuda if available else cpu), "cpu" or "cuda"
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    num_threads: int = 0  # torch CPU threads when training on CPU (0 = all cores but one, split across DDP ranks)


@dataclass
class DataConfig:
    """How the dataset is cut into segments for training."""

    rtg_mode: str = ""  # "window" (sparse-goal relabel, docs/ARCHITECTURE.md), "dense", or "" = the task's mode
    rtg_window: int = 0  # W for the window relabel; 0 = the task's evaluation length


@dataclass
class MageConfig:
    """Everything needed to rebuild and retrain a MAGE checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)  # architecture
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation
    data: DataConfig = field(default_factory=DataConfig)  # segmentation
    preset: str = "small"  # preset the config started from

    def to_dict(self) -> dict:
        """Nested plain dict (tuples as lists) — what checkpoints store so weights_only loading works."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "MageConfig":
        """Inverse of to_dict; unknown keys raise MageError (a checkpoint from another version)."""
        try:
            model = _build(ModelConfig, d.get("model", {}))
            model.scales = tuple(model.scales)
            model.inv_lookahead = tuple(model.inv_lookahead)
            model.rec_weights = tuple(model.rec_weights)
            td = dict(d.get("train", {}))
            td.setdefault("inv_batch_size", 0)  # a checkpoint without the field trained L_inv on batch_size
            if td.get("inv_loss", "mse") not in INV_LOSSES:
                raise TypeError(f"unknown inv_loss {td['inv_loss']!r}")
            return cls(model=model, train=_build(TrainConfig, td),
                       data=_build(DataConfig, d.get("data", {})), preset=d.get("preset", "custom"))
        except TypeError as exc:
            raise MageError(f"checkpoint config does not match this version of mage: {exc}") from None


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _build(cls, d: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise TypeError(f"unknown {cls.__name__} fields {sorted(unknown)}")
    return cls(**d)


def parse_assignment(text: str) -> tuple[str, str, str]:
    """SECTION.FIELD=VALUE (`mage train --set`) -> (section, field, value text); a UsageError when malformed."""
    key, eq, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not (eq and dot and section and name):
        raise UsageError(f"--set expects SECTION.FIELD=VALUE such as train.lr_stage1=3e-4, got {text!r}")
    return section, name.strip(), value.strip()


def _typed(text: str, default, where: str):
    """Parse `text` to the type of a field's current value (bool, int, float, str, or a tuple of numbers)."""
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return low in ("true", "1", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            items = [v.strip() for v in text.strip("()[] ").split(",") if v.strip()]
            return tuple(int(v) if v.lstrip("-").isdigit() else float(v) for v in items)
        return text
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", float: "a number",
                tuple: "comma-separated numbers such as 1,2,4"}[type(default)]
        raise UsageError(f"--set {where}: expected {kind}, got {text!r}") from None


def apply_assignments(sections: dict, assignments: list[str], refused: dict | None = None) -> dict:
    """Set config fields from SECTION.FIELD=VALUE texts; sections maps a name to its dataclass (e.g. {"model":
    cfg.model, "train": cfg.train, "data": cfg.data}). Each value is parsed to the field's type. refused: {"section.
    field": reason} for fields the caller owns. Returns {"section.field": value} of what was set; an unknown section
    or field, a refused field or a bad value is a UsageError that names the close matches."""
    done = {}
    for text in assignments:
        section, name, value = parse_assignment(text)
        if section not in sections:
            raise UsageError(f"--set {section}.{name}: unknown section {section!r}; sections: "
                             f"{', '.join(sections)}")
        obj = sections[section]
        names = [f.name for f in dataclasses.fields(obj)]
        if name not in names:
            close = difflib.get_close_matches(name, names, n=4)
            hint = f"did you mean {', '.join(f'{section}.{c}' for c in close)}?" if close else \
                f"fields of {section}: {', '.join(names)}"
            raise UsageError(f"--set {section}.{name}: no such field; {hint}")
        where = f"{section}.{name}"
        if where in (refused or {}):
            raise UsageError(f"--set {where} cannot be set: {refused[where]}")
        typed = _typed(value, getattr(obj, name), where)
        if where in FIELD_CHOICES and typed not in FIELD_CHOICES[where]:
            raise UsageError(f"--set {where}: choose one of {', '.join(map(repr, FIELD_CHOICES[where]))}, "
                             f"got {typed!r}")
        setattr(obj, name, typed)
        done[where] = getattr(obj, name)
    return done


PRESETS = ("tiny", "small", "paper")
INV_LOSSES = ("mse", "l1")  # TrainConfig.inv_loss choices
FIELD_CHOICES = {"train.inv_loss": INV_LOSSES, "data.rtg_mode": ("", "window", "dense"),
                 "train.device": ("auto", "cpu", "cuda")}  # string fields with a closed set of values


def preset(name: str) -> MageConfig:
    """The named preset: 'tiny' (CI, ~1 min on CPU), 'small' (maze default, minutes on CPU), 'paper' (GPU)."""
    if name == "tiny":
        return MageConfig(
            model=ModelConfig(horizon=32, downsample=2, latent_dim=16, codebook_size=64, enc_channels=32,
                              d_model=64, n_layers=2, n_heads=2, inv_hidden=128, adapter_hidden=16,
                              dead_code_every=50),
            train=TrainConfig(stage1_steps=200, stage2_steps=200, stage3_steps=50, batch_size=32, inv_batch_size=64,
                              warmup_steps=20, log_every=10, ckpt_every=200, lr_stage1=2e-3, lr_stage2=1e-3, lr_stage3=2e-4),
            preset="tiny")
    if name == "small":
        return MageConfig(model=ModelConfig(), train=TrainConfig(), preset="small")  # the dataclass defaults
    if name == "paper":
        return MageConfig(
            model=ModelConfig(horizon=64, downsample=2, latent_dim=64, codebook_size=512, enc_channels=128,
                              enc_blocks=2, d_model=256, n_layers=8, n_heads=8, inv_hidden=512, adapter_hidden=64,
                              dropout=0.1),
            train=TrainConfig(stage1_steps=20000, stage2_steps=50000, stage3_steps=5000, batch_size=256,
                              lr_stage1=5e-4, lr_stage2=3e-4, lr_stage3=5e-5, warmup_steps=1000, log_every=100,
                              ckpt_every=2000),
            preset="paper")
    raise MageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
