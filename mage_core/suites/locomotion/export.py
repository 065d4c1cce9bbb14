"""Export a locomotion behaviour-policy training run as the suite's shipped files (`python -m
mage_core.suites.locomotion.export ENV`); a module of its own so that running it does not re-import the package's."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mage_core.errors import MageError
from mage_core.suites.locomotion import assets as A
from mage_core.suites.locomotion.actor import ENVS


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m mage_core.suites.locomotion.export",
                                description="Export a behaviour-policy training run's expert and medium actors and "
                                            "its replay log (up to the medium snapshot, then on to the expert's, "
                                            "in parts under the repository's file limit) as the locomotion "
                                            "suite's shipped files.")
    p.add_argument("env", choices=sorted(ENVS))
    p.add_argument("--run-dir", default="", help="the training run (default runs/behaviour/ENV)")
    p.add_argument("--out-dir", default="", help=f"where to write (default ${A.ASSETS_ENV_VAR} or assets/locomotion)")
    p.add_argument("--medium-steps", type=int, default=None,
                   help="the snapshot to use as the medium policy (default: the one closest to a third of the "
                        "expert's return, among those up to the first that reaches it)")
    p.add_argument("--no-replay-tail", action="store_true",
                   help="do not ship the log past the medium snapshot (the task then has no full-replay variant; "
                        "it keeps a long run's files small)")
    a = p.parse_args(argv)
    try:
        written = A.export(a.env, Path(a.run_dir or f"runs/behaviour/{a.env}"), A.asset_dir(a.out_dir or None),
                           a.medium_steps, replay_tail=not a.no_replay_tail)
    except MageError as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps(written, indent=2))


if __name__ == "__main__":
    main()
