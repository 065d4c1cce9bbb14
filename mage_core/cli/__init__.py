"""The `mage` command line: one sub-module per command group, each exposing `register(subparsers)`."""
from __future__ import annotations

import argparse
import os
import sys

from mage_core.errors import MageError, UsageError

EXIT_RUNTIME = 1  # the work failed: a missing or corrupt file, an unreadable dataset, a diverged run
EXIT_USAGE = 2  # the command line asks for something it cannot mean (argparse's code for its own usage errors)
CONVENTIONS = """conventions:
  --json FILE|-   every command that reports JSON writes it to FILE, or with - to stdout as pure JSON (summary
                  lines go to stderr), e.g. `mage eval --checkpoint C --json - | jq .normalised_mean`
  exit status     0 success; 1 the work failed (missing or corrupt file, unreadable dataset, a run that diverged);
                  2 usage error (unknown option, bad option value, options that do not go together); 130 interrupted
  MUJOCO_GL       kept when set; else egl on Linux (glfw, then osmesa, where EGL is missing), cgl on macOS, glfw on
                  Windows"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mage",
        description="MAGE: multi-scale autoregressive trajectory generation for offline RL. "
        "Make datasets, train checkpoints, plan, evaluate and benchmark.",
        epilog=CONVENTIONS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mage {__import__('mage_core').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from mage_core.cli import bench, ckpt, data, demo, evaluate, plan, train  # one module per command group

    for module in (data, train, ckpt, evaluate, plan, bench, demo):  # the order `mage --help` lists them in
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mage_core.gl import configure_gl

    configure_gl()  # before anything imports MuJoCo's GL module, which reads MUJOCO_GL once
    parser = build_parser()
    from mage_core.cli.plan import split_negative_points

    args = parser.parse_args(split_negative_points(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        rc = args.func(args)
        return int(rc or 0)
    except UsageError as exc:
        print(f"mage: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MageError as exc:
        print(f"mage: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("mage: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` or a pager that closed: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second BrokenPipeError when Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
