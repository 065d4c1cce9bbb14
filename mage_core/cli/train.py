"""`mage train`: train a MAGE (or baseline) checkpoint on a task's dataset, with resume, events and ablations."""
from __future__ import annotations

import argparse
import sys

from mage_core.errors import MageError
from mage_core.progress import EventWriter
from mage_core.train_command import add_train_arguments, train_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a checkpoint (MAGE or a baseline)",
        description="Train a checkpoint on a local dataset. MAGE trains in three resumable stages: (1) the multi-scale "
        "trajectory autoencoder, (2) the multi-scale transformer + latent inverse dynamics on frozen tokens, "
        "(3) end-to-end refinement through a Gumbel-Softmax relaxation (off in the small preset, where it lowered the "
        "maze scores; --stage3-steps N turns it on). Progress goes to stderr; --events writes JSON-lines events. Under torchrun (WORLD_SIZE > 1) training is data parallel.",
        epilog="examples:\n  mage data make pointmaze-umaze && mage train --task pointmaze-umaze\n"
        "  mage train --task pointmaze-umaze --preset tiny --out /tmp/ckpts --events -\n"
        "  mage train --resume checkpoints/pointmaze-umaze-mage.pt\n"
        "  mage train --task pointmaze-umaze --scales 1 --no-cond-loss   (ablations)\n"
        "  torchrun --nproc_per_node 2 -m mage_core train --task pointmaze-umaze",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from mage_core.device import shutdown_distributed

    sink = EventWriter(args.events)
    log = sys.stderr if args.events == "-" else sys.stdout
    ok = False
    try:
        path = train_from_args(args, sink)
        ok = True
    except MageError as exc:
        sink.emit("error", message=str(exc))
        raise
    finally:
        sink.close()
        shutdown_distributed(synchronise=ok)  # under torchrun: leave the process group cleanly
    print(f"checkpoint written to {path}", file=log)
    return 0
