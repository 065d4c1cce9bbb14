"""The `mage` command line: one sub-module per command group, each exposing `register(subparsers)`."""
from __future__ import annotations

import argparse
import os
import sys

from mage_core.errors import MageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mage",
        description="MAGE: multi-scale autoregressive trajectory generation for offline RL. "
        "Make datasets, train checkpoints, plan, evaluate and benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"mage {__import__('mage_core').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from mage_core.cli import bench, ckpt, data, demo, evaluate, plan, train  # one module per command group

    for module in (data, train, ckpt, evaluate, plan, bench, demo):  # the order `mage --help` lists them in
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    parser = build_parser()
    from mage_core.cli.plan import split_negative_points

    args = parser.parse_args(split_negative_points(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        rc = args.func(args)
        return int(rc or 0)
    except MageError as exc:
        print(f"mage: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mage: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` or a pager that closed: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second BrokenPipeError when Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
