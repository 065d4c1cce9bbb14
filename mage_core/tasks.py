"""Task registry: the built-in tasks of every suite by name, lookup with a clear error, and the segment config of a task."""
from __future__ import annotations

from mage_core.errors import MageError
from mage_core.suites import SUITES, Task, all_tasks, flatten_obs, get_suite, import_robotics  # noqa: F401 (re-exported)

TASKS: dict[str, Task] = all_tasks()  # every suite's built-in tasks, by name


def segment_config(task: Task, horizon: int | None = None):
    """The SegmentConfig that matches a task's horizon and evaluation window."""
    from mage_core.data.segments import SegmentConfig

    return SegmentConfig(horizon=horizon or task.horizon, rtg_window=task.eval_steps, rtg_mode=task.rtg_mode)


def get_task(name: str) -> Task:
    """The registered task `name`, or a MageError listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise MageError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


def task_names() -> list[str]:
    return sorted(TASKS)
