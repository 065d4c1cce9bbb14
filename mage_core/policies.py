"""load_policy: any checkpoint (MAGE or a baseline) -> an object with the evaluate.Policy interface."""
from __future__ import annotations

from mage_core.baselines import ALGOS as BASELINE_ALGOS  # algorithms implemented in mage_core.baselines.<algo>
from mage_core.baselines import algo_module
from mage_core.errors import MageError, UsageError


def checkpoint_ref_scores(meta: dict, task) -> tuple | None:
    """(ref_min, ref_max) a checkpoint's scores are normalised by: stored in it, else read from its local dataset."""
    from mage_core.data.store import reference_scores

    ds = meta.get("dataset") or {}
    ref = ds.get("ref_scores") or reference_scores(ds.get("id") or task.dataset_id, task)
    return tuple(ref) if ref and None not in ref else None


def load_policy(ckpt_or_path, rtg_target: float | None = None, device: str = "cpu", *, replan_every: int | None = None,
                seed=None, sampling=None, executor: str = "inverse", regoal_steps: int | None = None):
    """Build the acting policy of a checkpoint; returns (policy, task, checkpoint dict without weights).

    replan_every: None keeps each method's own default (MAGE: every step; Diffuser: once per episode, as in its
    maze2d protocol); a number overrides it for the methods that plan (MAGE, Diffuser). executor: how MAGE turns a
    plan into an action ("inverse" = I(sum z), "track" = PD tracking of the planned position, mazes only).
    regoal_steps: MAGE's condition cap outside the goal (None = the planner's default; PlannerPolicy)."""
    from mage_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpt_or_path) if not isinstance(ckpt_or_path, dict) else ckpt_or_path
    algo = ckpt.get("algo", "mage")
    if algo == "mage":
        from mage_core.planner import Planner

        planner = Planner.from_checkpoint(ckpt, device=device, sampling=sampling)
        target = planner.rtg_range[1] if rtg_target is None else planner.clamp_rtg(rtg_target)
        policy = planner.policy(target, replan_every=replan_every or 1, seed=seed, executor=executor,
                                regoal_steps=regoal_steps)
        return policy, planner.task, planner.ckpt_meta
    if regoal_steps is not None:
        raise UsageError(f"--regoal-steps applies to MAGE checkpoints; this one is {algo!r}")
    if algo in BASELINE_ALGOS:
        module = algo_module(algo)
        from mage_core.task_spec import task_from_checkpoint

        kw = {} if algo != "diffuser" or replan_every is None else {"replan_every": replan_every}
        policy = module.load_policy(ckpt, rtg_target=rtg_target, device=device, seed=seed or 0, **kw)
        meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "train_state")}
        return policy, task_from_checkpoint(ckpt), meta
    from mage_core.algos import ALGOS

    raise MageError(f"checkpoint has unknown algo {algo!r}; known: {', '.join(ALGOS)}")
