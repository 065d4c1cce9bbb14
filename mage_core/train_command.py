"""`mage train`'s options and train_from_args(args, sink), the entry function that trains MAGE or a baseline.

The options live in the engine, not in mage_core.cli, because the quality bench checks its --mage-flags with them."""
from __future__ import annotations

import argparse
from pathlib import Path

from mage_core.algos import ALGOS, refuse_foreign_options
from mage_core.config import INV_LOSSES, PRESETS, apply_assignments, parse_assignment, preset
from mage_core.errors import UsageError, usage_errors
from mage_core.progress import EventWriter
from mage_core.training.runlog import run_log

# The training modules (torch, the suites, the baselines) are imported inside the functions that use them, so that
# building the `mage` parser stays fast for every command.


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add every `mage train` option to the parser `p`."""
    src = p.add_argument_group("data")
    src.add_argument("--task", help="built-in task; trains on its default dataset (made with `mage data make TASK`)")
    src.add_argument("--dataset", metavar="ID|PATH", help="local Minari dataset id or path (default: the task's)")
    run = p.add_argument_group("run")
    run.add_argument("--algo", choices=ALGOS, default="mage", help="algorithm (default mage)")
    run.add_argument("--preset", choices=PRESETS, default="small",
                     help="size preset: tiny (CI, ~1 min CPU), small (maze default), paper (GPU) (default small)")
    run.add_argument("--device", default="auto", help="auto (cuda if available else cpu), cpu or cuda (default auto)")
    run.add_argument("--out", metavar="DIR|FILE.pt", help="output folder (checkpoint <task>-<algo>.pt inside) or "
                     "a .pt path (default: checkpoints/, or the --resume file itself)")
    run.add_argument("--resume", metavar="CKPT", help="continue an interrupted run exactly (its config is used)")
    run.add_argument("--events", metavar="FILE|-", help="also write the JSON-lines training events to FILE or stdout "
                     "(-); every run writes them beside its checkpoint as well, CKPT.events.jsonl")
    run.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard scalars to DIR: every loss per stage, "
                     "token accuracy and codebook usage per scale, segments/s, learning rate (the optional extra: "
                     'pip install "mage-studio[tensorboard]"; view with `tensorboard --logdir DIR`)')
    run.add_argument("--set", dest="set", action="append", type=_assignment_arg, metavar="SECTION.FIELD=VALUE",
                     help="set any config field, flag or not, e.g. --set train.lr_stage1=3e-4 --set model.d_model=256 "
                     "(MAGE sections: model, train, data; a baseline's section is its name, e.g. --set bc.hidden=512); "
                     "applied after the preset and the flags, recorded in the checkpoint's config like the rest")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    steps = p.add_argument_group("steps and batch")
    steps.add_argument("--steps-scale", type=float, default=1.0, metavar="F",
                       help="multiply every stage's step count by F (e.g. 0.1 for a quick try)")
    steps.add_argument("--stage1-steps", type=_steps_arg, metavar="N", help="MAGE autoencoder steps")
    steps.add_argument("--stage2-steps", type=_steps_arg, metavar="N", help="MAGE transformer + inverse-dynamics steps")
    steps.add_argument("--stage3-steps", type=_steps_arg, metavar="N", help="MAGE refinement steps (0 = skip stage 3; the small preset's default)")
    steps.add_argument("--steps", type=_steps_arg, metavar="N", help="total steps for baselines (MAGE: use --stageN-steps)")
    steps.add_argument("--batch-size", type=int, metavar="B", help="segments per step (per process)")
    steps.add_argument("--inv-batch-size", type=non_negative_int_arg, metavar="B",
                       help="MAGE stage 2: segments per step for L_inv on the frozen tokens, when larger than "
                       "--batch-size (default: the preset's, 256 in small; 0 = --batch-size)")
    steps.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: all cores but one)")
    steps.add_argument("--ceiling-steps", type=positive_int_arg, metavar="N",
                       help="MAGE: steps of the return-ceiling fit, the highest return the data supports from a state, "
                       "which limits the RTG condition (default min(1500, stage-2 steps); under-fitted it is optimistic "
                       "next to walls and plans run through them: 20000 takes ~80 s on one core)")
    steps.add_argument("--coarse-ce-scales", type=non_negative_int_arg, metavar="N",
                       help="MAGE stage 2: also train the first N scales' tokens on the rest of the L_inv batch "
                       "(256 segments instead of the batch's 32; they are a short prefix of the token sequence, so this "
                       "costs little), e.g. 3 — the scales that choose the route (default 0 = off)")
    arch = p.add_argument_group("MAGE horizon and averaging")
    arch.add_argument("--horizon", type=positive_int_arg, metavar="H", help="steps per generated segment (default: the task's)")
    arch.add_argument("--downsample", type=_power_of_two_arg, metavar="R",
                      help="temporal downsampling of the autoencoder, a power of 2; T = H / R latent positions "
                      "(default: the task's, else 4)")
    arch.add_argument("--ema", type=_decay_arg, metavar="DECAY",
                      help="EMA decay of the transformer / inverse-dynamics weights in stages 2-3, e.g. 0.999 "
                      "(default: the preset's; 0 = off)")
    arch.add_argument("--inv-lookahead", type=_steps_list_arg, metavar="T1,T2,...",
                      help="the inverse-dynamics head reads the decoded plan at these steps instead of the raw latent, "
                      "e.g. 1,2,4,8,12,16,24 (default: the latent, the paper's I(sum z))")
    arch.add_argument("--inv-frame", metavar="NAME",
                      help="a suite's input frame for the plan-reading head (needs --inv-lookahead): ant-heading "
                      "(AntMaze) feeds it the ant's proprioception and its planned torso xy in the ant's own heading "
                      "frame, as the data's controller saw them (default: the normalised plan rows)")
    arch.add_argument("--rec-weight", type=_rec_weight_arg, metavar="NAME=W[,NAME=W]",
                      help="weight stage 1's reconstruction of named observation parts, e.g. agent_xy=10 (AntMaze: "
                      "the torso's xy, which the plan must place within the 0.45 m goal radius); names: rtg and the "
                      "task suite's observation slices (the error lists them); other columns keep weight 1")
    arch.add_argument("--scale-rec-weight", type=float, metavar="W",
                      help="stage 1 also reconstructs the data from every coarser prefix of scales (z_1 + ... + z_k, "
                      "k < K) with this weight, so each scale's plan is itself a plan of the segment, e.g. 0.5 "
                      "(default 0: only the full sum is decoded in training, the paper's)")
    arch.add_argument("--inv-loss", choices=INV_LOSSES,
                      help="L_inv's distance: mse (the paper's, the default; fits the mean action) or l1 (fits the "
                      "median action, which is the noise-free one when noisy data saturates at the action bounds)")
    abl = p.add_argument_group("MAGE ablations")
    abl.add_argument("--scales", type=int, metavar="K", help="number of scales K (1 = flat single-scale model)")
    abl.add_argument("--model-actions", action="store_true", help="model (R, s, a) segments instead of (R, s)")
    abl.add_argument("--no-cond-loss", action="store_true", help="no condition adapter D' and no L_cond")


def train_from_args(args: argparse.Namespace, sink: EventWriter) -> Path:
    """Train what the parsed `mage train` options ask for (MAGE or a baseline); returns the checkpoint path. The
    events go to `sink` and, for the run, beside the checkpoint (and to --tensorboard)."""
    with usage_errors():
        refuse_foreign_options(args.algo, args)
    if args.algo != "mage":
        return _train_baseline(args, sink)
    return _train_mage(args, sink)


def _resolve_data(args):
    """(task, dataset_id) from --task / --dataset."""
    from mage_core.tasks import get_task

    with usage_errors():
        task = get_task(args.task) if args.task else None
    dataset_id = args.dataset or (task.dataset_id if task else None)
    if dataset_id is None:
        raise UsageError("say what to train on: --task TASK or --dataset ID|PATH (or --resume CKPT)")
    return task, dataset_id


def _assignment_arg(text: str) -> str:
    """argparse type for --set: SECTION.FIELD=VALUE (the field and its value are checked against the config)."""
    try:
        parse_assignment(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--set ")) from None
    return text


def _out_path(args, task_name: str) -> Path:
    if args.out:
        out = Path(args.out)
        return out if out.suffix == ".pt" else out / f"{task_name}-{args.algo}.pt"
    if args.resume:
        return Path(args.resume)
    return Path("checkpoints") / f"{task_name}-{args.algo}.pt"


def _steps_arg(text: str) -> int:
    """argparse type for step counts: a whole number >= 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"step counts cannot be negative (got {n})")
    return n


def positive_int_arg(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def _power_of_two_arg(text: str) -> int:
    """argparse type for --downsample: 1, 2, 4, 8, ..."""
    n = positive_int_arg(text)
    if n & (n - 1):
        raise argparse.ArgumentTypeError(f"--downsample must be a power of 2 (1, 2, 4, 8, 16, ...), got {n}")
    return n


def _steps_list_arg(text: str) -> tuple:
    """argparse type for --inv-lookahead: comma-separated step indices >= 0, e.g. 1,2,4,8."""
    try:
        steps = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers such as 1,2,4,8, got {text!r}") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"lookahead steps must be >= 0, got {text!r}")
    return steps


def _rec_weight_arg(text: str) -> dict:
    """argparse type for --rec-weight: NAME=W pairs, W >= 0."""
    out = {}
    for part in text.split(","):
        name, eq, w = part.partition("=")
        try:
            out[name.strip()] = float(w)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected NAME=W pairs such as agent_xy=10, got {text!r}") from None
        if not eq or not name.strip() or not out[name.strip()] >= 0:
            raise argparse.ArgumentTypeError(f"expected NAME=W pairs with W >= 0 such as agent_xy=10, got {text!r}")
    return out


def rec_weights_for(task, obs_dim: int, act_dim: int, model_actions: bool, named: dict) -> tuple:
    """Per-column weights over (R, s[, a]) from {slice name: weight}; names are 'rtg' and the suite's obs slices."""
    slices = {"rtg": slice(0, 1), **{k: slice(v.start + 1, v.stop + 1) for k, v in task.suite.obs_slices(task).items()}}
    w = [1.0] * (1 + obs_dim + (act_dim if model_actions else 0))
    for name, weight in named.items():
        if name not in slices:
            raise UsageError(f"--rec-weight: {task.name} has no observation part {name!r}; known: {', '.join(slices)}")
        for i in range(*slices[name].indices(1 + obs_dim)):
            w[i] = weight
    return tuple(w)


def non_negative_int_arg(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return n


def _decay_arg(text: str) -> float:
    """argparse type for --ema: a decay in [0, 1)."""
    try:
        d = float(text)
    except ValueError:
        d = float("nan")
    if not 0.0 <= d < 1.0:
        raise argparse.ArgumentTypeError(f"--ema must be a decay in [0, 1) such as 0.999 (0 = off), got {text!r}")
    return d


def _train_baseline(args, sink) -> Path:
    from mage_core.baselines import train_baseline

    if args.resume and not (args.task or args.dataset):
        from mage_core.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.resume)
        args.task = ckpt.get("task")
        args.dataset = (ckpt.get("dataset") or {}).get("id")
    task, dataset_id = _resolve_data(args)
    if task is None:
        from mage_core.data.store import load_episodes

        task = load_episodes(dataset_id)[0]
    steps = args.steps
    if args.steps_scale != 1.0:  # the same knob as MAGE's: scale the baseline's (preset or given) step count
        from mage_core.baselines import algo_module

        base = steps if steps is not None else algo_module(args.algo).preset(args.preset).steps
        steps = max(1, int(round(base * args.steps_scale)))
    out = _out_path(args, task.name)
    with run_log(sink, out, args.tensorboard, resume=bool(args.resume)):
        return train_baseline(args.algo, dataset=dataset_id, task=task, preset=args.preset, device=args.device,
                              out=out, resume=args.resume, events=sink, seed=args.seed or 0, steps=steps,
                              threads=args.threads or 0, progress=not args.no_progress, assignments=args.set)


def _train_mage(args, sink) -> Path:
    from mage_core.checkpoint import load_checkpoint
    from mage_core.data.store import load_episodes
    from mage_core.training.mage_stages import train_mage

    resume = None
    _mage_assignments(preset(args.preset), args)  # a bad --set is refused before any data is read
    if args.resume:
        resume = load_checkpoint(args.resume)
        if resume.get("algo") != "mage":
            raise UsageError(f"{args.resume} is a {resume.get('algo')!r} checkpoint; resume it with --algo "
                            f"{resume.get('algo')}")
        if not (args.task or args.dataset):
            args.task = resume.get("task") if not (resume.get("dataset") or {}).get("id") else None
            args.dataset = (resume.get("dataset") or {}).get("id")
    task, dataset_id = _resolve_data(args)
    ds_task, episodes, _info = load_episodes(dataset_id)
    task = task or ds_task
    cfg = preset(args.preset)
    t = cfg.train
    for k in (1, 2, 3):
        name = f"stage{k}_steps"
        override = getattr(args, name)
        lo = 0 if name == "stage3_steps" else 1  # stage 3 (refinement) may be skipped
        setattr(t, name, max(lo, int(round((override if override is not None else getattr(t, name)) * args.steps_scale))))
    if args.steps_scale != 1.0:
        t.warmup_steps = max(1, int(t.warmup_steps * args.steps_scale))
    if args.batch_size:
        t.batch_size = args.batch_size
    if args.inv_batch_size is not None:
        t.inv_batch_size = args.inv_batch_size
    if args.seed is not None:
        t.seed = args.seed
    if args.threads:
        t.num_threads = args.threads
    t.device = args.device
    if args.scales is not None:
        cfg.model.n_scales = args.scales
    if args.horizon is not None:
        cfg.model.horizon = args.horizon
    if args.downsample is not None:
        cfg.model.downsample = args.downsample
    if args.ema is not None:
        t.ema_decay = args.ema
    if args.inv_lookahead is not None:
        cfg.model.inv_lookahead = args.inv_lookahead
    if args.inv_frame is not None:
        cfg.model.inv_frame = args.inv_frame
    if args.inv_loss is not None:
        t.inv_loss = args.inv_loss
    if args.ceiling_steps is not None:
        t.ceiling_steps = args.ceiling_steps
    if args.coarse_ce_scales is not None:
        n_scales = len(cfg.model.scales) or cfg.model.n_scales
        if args.coarse_ce_scales > n_scales:
            raise UsageError(f"--coarse-ce-scales {args.coarse_ce_scales} is more than the model's {n_scales} scales")
        t.coarse_ce_scales = args.coarse_ce_scales
    if args.scale_rec_weight is not None:
        if not args.scale_rec_weight >= 0 or args.scale_rec_weight == float("inf"):
            raise UsageError(f"--scale-rec-weight must be a finite number >= 0, not {args.scale_rec_weight}")
        cfg.model.scale_rec_weight = args.scale_rec_weight
    cfg.model.model_actions = bool(args.model_actions)
    cfg.model.use_cond_loss = not args.no_cond_loss
    if args.rec_weight:
        cfg.model.rec_weights = rec_weights_for(task, episodes[0].obs_TD.shape[1], episodes[0].actions_TA.shape[1],
                                                cfg.model.model_actions, args.rec_weight)
    if resume is not None and any(getattr(args, a) not in (None, False) for a in
                                 ("scales", "model_actions", "no_cond_loss", "horizon", "downsample", "ema",
                                  "inv_lookahead", "inv_frame", "inv_loss", "rec_weight", "scale_rec_weight",
                                  "coarse_ce_scales", "ceiling_steps")):
        raise UsageError("model, averaging and ablation flags cannot change a resumed run; start a new one instead")
    _mage_assignments(cfg, args)
    out = _out_path(args, task.name)
    with run_log(sink, out, args.tensorboard, resume=resume is not None):
        train_mage(cfg, episodes, task, out_path=out, dataset_id=dataset_id, sink=sink, resume=resume,
                   progress=not args.no_progress, device=args.device)
    return out


MAGE_REFUSED = {"model.obs_dim": "filled from the data", "model.act_dim": "filled from the data",
                "train.device": "use --device"}  # MAGE config fields --set may not change, and why


def _mage_assignments(cfg, args) -> None:
    """Apply --set to a MAGE config (its model, train and data sections); a resumed run keeps its config."""
    if not args.set:
        return
    if args.resume:
        raise UsageError("--set cannot change a resumed run's config; start a new one instead")
    apply_assignments({"model": cfg.model, "train": cfg.train, "data": cfg.data}, args.set, MAGE_REFUSED)
