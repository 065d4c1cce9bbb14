"""The engine's public Python API, the names `mage_core` re-exports on first use: plan, act, evaluate, train, render.

    from mage_core import Planner, load_policy, evaluate_policy, evaluate_checkpoint, train, render_plan

The evaluation function is `evaluate_policy` (not `evaluate`) because `mage_core.evaluate` is the module that defines
it: Python binds a package's submodule to the package attribute of the same name whenever the module is imported.
"""
from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from mage_core.bundled import bundled_checkpoint
from mage_core.config import MageConfig, preset
from mage_core.data.store import list_datasets, load_episodes
from mage_core.errors import MageError, UsageError
from mage_core.evaluate import EvalResult, Policy
from mage_core.evaluate import evaluate as evaluate_policy
from mage_core.planner import Plan, Planner, SamplingConfig
from mage_core.policies import checkpoint_ref_scores, load_policy
from mage_core.progress import EventWriter
from mage_core.render import render_plan
from mage_core.tasks import Task, get_task
from mage_core.train_command import add_train_arguments, train_from_args
from mage_core.video import write_video

__all__ = ["EvalResult", "MageConfig", "MageError", "Plan", "Planner", "Policy", "SamplingConfig", "Task",
           "UsageError", "bundled_checkpoint", "checkpoint_ref_scores", "evaluate_checkpoint", "evaluate_policy",
           "get_task", "list_datasets", "load_episodes", "load_policy", "preset", "render_plan", "train",
           "write_video"]


def evaluate_checkpoint(checkpoint, episodes: int = 10, seeds=(0,), rtg: float | None = None,
                        device: str = "cpu") -> EvalResult:
    """Score any checkpoint (MAGE or a baseline) on its task's evaluation protocol, as `mage eval` does: raw and
    normalised mean ± standard error over `episodes` episodes per seed; rtg: the return target (default: the top of
    the data's range)."""
    policy, task, meta = load_policy(checkpoint, rtg_target=rtg, device=device, seed=0)
    result = evaluate_policy(task, policy, episodes=episodes, seeds=tuple(seeds),
                             ref_scores=checkpoint_ref_scores(meta, task))
    result.extra.update(checkpoint=str(checkpoint), algo=meta.get("algo", "mage"),
                        rtg_target=getattr(policy, "target", rtg))
    return result


class _OptionParser(argparse.ArgumentParser):
    """`mage train`'s parser for train(): a bad value is a UsageError, not a process exit."""

    def error(self, message: str):
        raise UsageError(message)


def train(task: str | None = None, *, dataset: str | None = None, algo: str = "mage", preset: str = "small",
          out: str | Path | None = None, events: str | None = None, tensorboard: str | Path | None = None,
          progress: bool = True, overrides: dict | None = None, **options) -> Path:
    """Train a checkpoint exactly as `mage train` does; returns its path. Its events are written beside it
    (CKPT.events.jsonl) as for every run.

    task / dataset: what to train on (a built-in task's default dataset, or a local Minari dataset id or path).
    events: also write the events to this file ("-" = stdout). tensorboard: a folder for TensorBoard scalars.
    overrides: {"section.field": value} for any config field (`mage train --set`), e.g. {"train.lr_stage1": 1e-3}.
    options: any other `mage train` option by its Python name, e.g. steps_scale=0.1, stage1_steps=500, seed=1,
    inv_lookahead=(1, 2, 4), rec_weight={"agent_xy": 10}, resume="run.pt"."""
    parser = _OptionParser(prog="mage_core.train")
    add_train_arguments(parser)
    known = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    given = dict(options, task=task, dataset=dataset, algo=algo, preset=preset, out=out,
                 tensorboard=tensorboard, no_progress=not progress,
                 set=[f"{k}={_option_text(v)}" for k, v in (overrides or {}).items()] or None)
    argv = []
    for name, value in given.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3)
            raise UsageError(f"train() has no option {name!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                                   f"; options: {', '.join(sorted(known))}"))
        flag = known[name].option_strings[-1]
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif name == "set":
            for item in value:
                argv += [flag, item]
        else:
            argv += [flag, _option_text(value)]
    args = parser.parse_args(argv)
    sink = EventWriter(events)
    try:
        return train_from_args(args, sink)
    finally:
        sink.close()


def _option_text(value) -> str:
    """A Python value as `mage train` reads it on the command line: 1,2,4 for sequences, NAME=W,... for mappings."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
