"""Suite registry: every task family the engine knows, the tasks each provides, and which suite a dataset belongs to."""
from __future__ import annotations

import json

from mage_core.errors import MageError
from mage_core.suites.base import EditableState, Suite, Task, flatten_obs, gym_make, import_robotics
from mage_core.suites.generic import GenericSuite
from mage_core.suites.pointmaze import PointMazeSuite

# Suites in the order they are asked to claim a dataset; the generic suite, which claims everything, comes last.
SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Add a suite (and its built-in tasks) to the registry; a later suite with the same name replaces it."""
    SUITES[suite.name] = suite
    SUITES["generic"] = SUITES.pop("generic", None) or GenericSuite()  # keep the fallback last
    return suite


for _s in (PointMazeSuite(), GenericSuite()):
    register_suite(_s)
for _mod in ("adroit", "antmaze"):  # suites that land in their own modules; absent ones are simply not registered
    try:
        _m = __import__(f"mage_core.suites.{_mod}", fromlist=["SUITE"])
        register_suite(_m.SUITE)
    except ModuleNotFoundError as _exc:
        if _exc.name != f"mage_core.suites.{_mod}":
            raise


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise MageError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}") from None


def all_tasks() -> dict[str, Task]:
    """Every built-in task of every suite, by name."""
    return {t.name: t for s in SUITES.values() for t in s.tasks()}


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
