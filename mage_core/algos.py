"""One registry of the algorithms the engine trains and scores (MAGE and the baselines) and the training options each
accepts, so a flag that does not apply to an algorithm is refused instead of silently ignored."""
from __future__ import annotations

from mage_core.baselines import ALGOS as BASELINE_ALGOS
from mage_core.errors import MageError

ALGOS = ("mage", *BASELINE_ALGOS)  # every algorithm; also the checkpoint "algo" field
# `mage train` options only MAGE has (argparse dest -> flag); --steps-scale, --preset, --seed, --device, --threads
# apply to all
MAGE_ONLY = {"stage1_steps": "--stage1-steps", "stage2_steps": "--stage2-steps", "stage3_steps": "--stage3-steps",
             "scales": "--scales", "model_actions": "--model-actions", "no_cond_loss": "--no-cond-loss",
             "batch_size": "--batch-size", "inv_batch_size": "--inv-batch-size", "horizon": "--horizon",
             "downsample": "--downsample", "ema": "--ema",
             "inv_lookahead": "--inv-lookahead", "inv_frame": "--inv-frame", "inv_loss": "--inv-loss",
             "rec_weight": "--rec-weight"}
BASELINE_ONLY = {"steps": "--steps"}  # baselines train one stage of N steps


def refuse_foreign_options(algo: str, args) -> None:
    """A MageError naming the flags given that `algo` does not use (e.g. --stage2-steps for a baseline)."""
    foreign = BASELINE_ONLY if algo == "mage" else MAGE_ONLY
    given = [flag for dest, flag in foreign.items() if getattr(args, dest, None) not in (None, False)]
    if given:
        hint = "use --stageN-steps for MAGE" if algo == "mage" else "baselines take --steps N and --steps-scale F"
        raise MageError(f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not apply to --algo {algo} ({hint})")
