"""Suite registry: every task family the engine knows, the tasks each provides, and which suite a dataset belongs to."""
from __future__ import annotations

import json

from mage_core.errors import MageError
from mage_core.suites import adroit, antmaze, kitchen, locomotion
from mage_core.suites.base import EditableState, Suite, Task, flatten_obs, gym_make, import_robotics
from mage_core.suites.generic import GenericSuite
from mage_core.suites.pointmaze import PointMazeSuite
from mage_core.suites.registry import SUITES, all_tasks, get_suite, register_suite

# The built-in suites, in the order they are asked to claim a dataset; the generic suite, which claims every
# dataset, is kept last by register_suite.
for _suite in (PointMazeSuite(), adroit.SUITE, antmaze.SUITE, locomotion.SUITE, kitchen.SUITE, GenericSuite()):
    register_suite(_suite)


def _spec(v) -> dict:
    try:
        return (json.loads(v) if isinstance(v, str) else v) or {}
    except ValueError:
        return {}


def builtin_task_for(meta: dict) -> Task | None:
    """The built-in task a dataset (its Minari metadata) was recorded for, or None."""
    spec = _spec(meta.get("env_spec"))
    for s in SUITES.values():
        for t in s.tasks():
            if s.matches_builtin(t, meta, spec):
                return t
    return None


def task_for_dataset(meta: dict) -> Task:
    """The built-in task a dataset belongs to, or a Task its claiming suite recovers from the env spec."""
    t = builtin_task_for(meta)
    if t is not None:
        return t
    spec = _spec(meta.get("env_spec"))
    if not spec.get("id"):  # still trainable; evaluating and drawing need an env (Suite.make_env says so)
        return Task(name=str(meta.get("dataset_id")), env_id="", suite_name="generic", horizon=32,
                    eval_steps=int(meta.get("max_episode_steps") or 1000), rtg_mode="dense",
                    obs_keys=("observation", "achieved_goal", "desired_goal"))
    eval_spec = _spec(meta.get("eval_env_spec")) or spec
    for s in SUITES.values():
        if s.claims(spec["id"], spec, meta):
            return s.task_for_spec(meta, spec, eval_spec)
    raise MageError(f"no suite claims environment {spec['id']}")  # unreachable: the generic suite claims all


__all__ = ["SUITES", "Suite", "Task", "EditableState", "get_suite", "register_suite", "all_tasks", "task_for_dataset",
           "builtin_task_for", "flatten_obs", "gym_make", "import_robotics"]
