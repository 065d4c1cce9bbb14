"""Baselines on MAGE's data, checkpoint format and acting interface: BC, Decision Transformer, Diffuser and IQL.

API:
    train_baseline(algo, *, dataset, task=None, preset="small", device="cpu", out=None, resume=None, events=None,
                   seed=0, steps=None, progress=True, assignments=None) -> checkpoint path   (`mage train --algo bc|dt|diffuser|iql`)
    load_policy(ckpt_path_or_dict, rtg_target=None, device="cpu", **kw) -> Policy   (dispatches on ckpt["algo"])
    ALGOS: the algorithm names; each module mage_core.baselines.<algo> has <Algo>Config, PRESETS, preset(name),
    its nn.Module (forward(batch, stage) -> {"loss"} for mage_core.training.loop.run_training, plus an acting method),
    train(episodes, task, config, out=...) -> checkpoint dict, load_model(ckpt) and load_policy(...).
    IQL (iql.py) wraps d3rlpy, the optional `iql` extra: it has no nn.Module of ours and runs its own loop with the
    same events and checkpoint layout; its module imports without d3rlpy and check_available() says how to install it.
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from mage_core.config import apply_assignments
from mage_core.errors import MageError, UsageError

CORE_ALGOS = ("bc", "dt", "diffuser")  # baselines that need only the core dependencies
OPTIONAL_ALGOS = ("iql",)  # baselines on an optional extra (pyproject.toml [project.optional-dependencies])
ALGOS = (*CORE_ALGOS, *OPTIONAL_ALGOS)  # baseline names; also the checkpoint "algo" field


def algo_module(algo: str):
    """The module implementing a baseline (mage_core.baselines.bc / dt / diffuser / iql)."""
    if algo not in ALGOS:
        raise MageError(f"unknown baseline {algo!r}; choose one of {', '.join(ALGOS)}")
    return importlib.import_module(f"mage_core.baselines.{algo}")


def default_out(algo: str, task_name: str) -> Path:
    """checkpoints/<task>-<algo>.pt (the repository's checkpoints/ folder layout)."""
    return Path("checkpoints") / f"{task_name}-{algo}.pt"


def train_baseline(algo: str, *, dataset: Any, task: Any = None, preset: str = "small", device: str = "cpu",
                   out: str | Path | None = None, resume: str | Path | None = None, events: Any = None, seed: int = 0,
                   steps: int | None = None, progress: bool = True, threads: int = 0,
                   assignments: list[str] | None = None) -> Path:
    """Train one baseline and write its checkpoint; returns the checkpoint path.

    dataset: a local Minari dataset id or path (loaded with mage_core.data.store.load_episodes), or a list of
    Episodes (then `task` is required). task: a Task or task name (default: the dataset's). resume: a checkpoint
    of an interrupted run of the same algo; training continues from its step with its config (steps may extend it).
    events: None, a mage_core.progress.EventWriter (.emit(name, **fields)) or a callable taking each event dict.
    progress: show the training progress bar on stderr. threads: torch CPU threads (0 = all cores but one).
    assignments: `mage train --set` texts, "<algo>.<field>=<value>", applied to the config last (not on resume).
    """
    from mage_core.baselines import common
    from mage_core.tasks import Task, get_task

    mod = algo_module(algo)
    if assignments and resume is not None:
        raise UsageError("--set cannot change a resumed run's config; start a new one instead")
    if assignments:  # a bad --set is refused before any data is read
        apply_assignments({algo: mod.preset(preset, steps)}, assignments)
    if hasattr(mod, "check_available"):  # an optional extra that is not installed: say so before loading any data
        mod.check_available()
    if isinstance(dataset, (str, Path)):
        from mage_core.data.store import load_episodes

        from mage_core.data.store import reference_scores

        ds_task, episodes, _ = load_episodes(str(dataset))
        source = {"id": str(dataset), "ref_scores": reference_scores(dataset, ds_task)}
    elif isinstance(dataset, list) and dataset:
        ds_task, episodes, source = None, dataset, None
    else:
        raise MageError("dataset must be a dataset id/path or a non-empty list of episodes")
    if task is None:
        task = ds_task
    elif not isinstance(task, Task):
        task = get_task(str(task))
    if task is None:
        raise MageError("a task is needed when training from a list of episodes")
    resume_ckpt = None
    if resume is not None:
        resume_ckpt = common.load_ckpt(resume, algo)
        if resume_ckpt.get("task") != task.name:
            raise UsageError(f"cannot resume: checkpoint is for task {resume_ckpt.get('task')!r}, not {task.name!r}")
        cfg_cls = type(next(iter(mod.PRESETS.values())))
        config = common.config_from_dict(cfg_cls, resume_ckpt["config"][algo])
        if steps:
            config = replace(config, steps=int(steps))
    else:
        config = mod.preset(preset, steps)
        family = task.suite.baseline_settings(task, algo)  # the baseline authors' settings for this task family
        if family:
            config = replace(config, **family)
    if threads and hasattr(config, "num_threads"):
        config = replace(config, num_threads=int(threads))
    if assignments:
        apply_assignments({algo: config}, assignments)
    out_path = Path(out) if out is not None else default_out(algo, task.name)
    mod.train(episodes, task, config, device=device, out=out_path, resume=resume_ckpt, events=events, seed=seed,
              dataset=source, progress=progress)
    return out_path


def load_policy(ckpt_path_or_dict: Any, rtg_target: float | None = None, device: str = "cpu", **kw):
    """The acting Policy of a baseline checkpoint (reset(n_envs) / act(obs_ND, reward_N) -> actions_NA)."""
    from mage_core.baselines import common

    ckpt = common.load_ckpt(ckpt_path_or_dict)
    return algo_module(ckpt.get("algo")).load_policy(ckpt, rtg_target=rtg_target, device=device, **kw)
