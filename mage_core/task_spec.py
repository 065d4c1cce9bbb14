"""Tasks as plain data in checkpoints: task_to_dict for writing, task_from_checkpoint for rebuilding the task."""
from __future__ import annotations

from dataclasses import asdict

from mage_core.data.store import dataset_task
from mage_core.errors import MageError
from mage_core.tasks import TASKS, Task


def task_to_dict(task: Task) -> dict:
    """A task as plain data, stored in checkpoints so a checkpoint alone rebuilds a task no suite has built in."""
    d = asdict(task)
    d["obs_keys"] = list(task.obs_keys)
    return d


def task_from_checkpoint(ckpt: dict) -> Task:
    """The task a checkpoint was trained for: a built-in task, the task stored in it, or its local dataset's."""
    name = ckpt.get("task")
    if name in TASKS:
        return TASKS[name]
    spec = ckpt.get("task_spec")
    if spec:
        fields = {k: v for k, v in spec.items() if k in Task.__dataclass_fields__}
        fields["obs_keys"] = tuple(fields.get("obs_keys", ()))
        return Task(**fields)
    ds = (ckpt.get("dataset") or {}).get("id")
    if ds:
        return dataset_task(ds)
    raise MageError(f"checkpoint names an unknown task {name!r} and no dataset to recover it from")
