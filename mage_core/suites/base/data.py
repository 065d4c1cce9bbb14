"""The data facet of a suite: its built-in tasks, which datasets it owns, and the generator that makes its data."""
from __future__ import annotations

from typing import Callable

from mage_core.errors import MageError
from mage_core.suites.base.task import Task


class DataFacet:
    """Tasks and datasets. A suite overrides `tasks` (its built-in tasks) and, to claim users' datasets of its envs,
    `claims`; a suite with a data generator sets `has_generator` and overrides `collect_buffers`, `data_description`
    and, with several kinds of data, `variants`. The defaults: no built-in tasks, a dataset belongs to a built-in task
    by its id, one 'expert' variant, no generator."""

    has_generator = False  # collect_buffers() can make a dataset for its tasks

    def tasks(self) -> list[Task]:
        """The built-in tasks of this suite (may be empty: tasks then come from datasets)."""
        return []

    def claims(self, env_id: str, spec: dict, meta: dict) -> bool:
        """Whether a dataset recorded with this env spec belongs to this suite (default: the env of a built-in task)."""
        return any(env_id == t.env_id for t in self.tasks())

    def task_for_spec(self, meta: dict, spec: dict, eval_spec: dict) -> Task:
        """A Task for a dataset of an env this suite claims that matches none of its built-in tasks."""
        steps = int(eval_spec.get("max_episode_steps") or spec.get("max_episode_steps") or 1000)
        # Dict observations keep the agent's own position (achieved_goal) as well as the goal
        return Task(name=str(meta.get("dataset_id")), env_id=spec["id"], suite_name=self.name,
                    obs_keys=("observation", "achieved_goal", "desired_goal"),
                    env_kwargs=dict(spec.get("kwargs") or {}), eval_kwargs=dict(eval_spec.get("kwargs") or {}),
                    dataset_id=str(meta.get("dataset_id")), horizon=32, eval_steps=steps, rtg_mode="dense")

    def matches_builtin(self, task: Task, meta: dict, spec: dict) -> bool:
        """Whether a dataset (metadata, env spec) was recorded for this built-in task."""
        return meta.get("dataset_id") == task.dataset_id

    def builtin_reference_scores(self, task: Task) -> tuple[float, float] | None:
        """The suite's own (random, expert) reference scores for a dataset that carries none (a user's data of these
        envs); None where the suite has none. Generated datasets carry scores measured from the suite's
        expert_policy (mage_core.evaluate.measure_reference_scores)."""
        return None

    def dataset_reference_scores(self, task: Task, measured: tuple[float, float]) -> tuple[float, float]:
        """The (random, expert) reference scores a generated dataset stores, given those measured on the evaluation
        protocol (default: the measured ones; a suite whose benchmark fixes them, e.g. D4RL's kitchen 0 and 4,
        returns those and may record the measured ones in its data_description)."""
        return measured

    def variants(self, task: Task) -> tuple:
        """Data variants the generator can make for a task, the default first (e.g. ('expert', 'human', 'cloned'))."""
        return ("expert",)

    def default_data_steps(self, task: Task, variant: str) -> int:
        """Steps `mage data make` records when --steps is not given."""
        return 1_000_000

    def dataset_id(self, task: Task, variant: str) -> str:
        """The local Minari id of a generated dataset of this task and variant."""
        return task.dataset_id if variant == self.variants(task)[0] else f"mage/{task.name}/{variant}-v0"

    def collect_buffers(self, task: Task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Roll out the suite's data policy for cfg.variant (a data.generate.GenerateConfig); Minari EpisodeBuffers."""
        raise MageError(f"no built-in data generator for {task.name} (suite {self.name}); bring a Minari dataset")

    def data_description(self, task: Task, cfg) -> tuple[str, str]:
        """(algorithm_name, description) recorded in a generated dataset's metadata."""
        return "unknown", task.name
