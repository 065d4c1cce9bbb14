"""Dataset generation through a task's suite (its data policy and protocol), written as a real Minari dataset."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any, Callable

from mage_core.errors import MageError
from mage_core.evaluate import measure_reference_scores
from mage_core.suites import Task


@dataclass
class GenerateConfig:
    """Knobs of a suite's data protocol (the maze ones are PointMaze's D4RL recipe; other suites ignore them and take
    their own defaults, or `recipe`)."""

    steps: int = 1_000_000  # total environment steps to record
    seed: int = 0  # seeds the env resets, the jitter and the action noise
    variant: str = ""  # data variant of the suite ('' = its default, e.g. 'expert'; Adroit door also 'human', 'cloned')
    action_noise: float = 0.5  # maze: std of the Gaussian noise added to the PD action (D4RL: 0.5)
    waypoint_jitter: float = 0.2  # maze: uniform +- jitter (world units) on every waypoint
    dwell_steps: int = 40  # maze: after reaching the goal the expert holds it this many steps before the episode is cut
    ref_episodes: int = 20  # evaluation episodes used to measure ref_min_score and ref_max_score
    recipe: Any = None  # a suite's own typed data-recipe config (e.g. suites.antmaze.AntMazeRecipe); None: its defaults


def resolve_variant(task: Task, variant: str | None) -> str:
    """The variant to generate ('' or None = the suite's default), or a MageError listing the known ones."""
    known = task.suite.variants(task)
    if not variant:
        return known[0]
    if variant not in known:
        from mage_core.tasks import TASKS

        having = [t.name for t in TASKS.values() if t.suite.has_generator and variant in t.suite.variants(t)]
        raise MageError(f"{task.name} has no {variant!r} data; its variants: {', '.join(known)}"
                        + (f" (tasks with {variant!r} data: {', '.join(having)})" if having else ""))
    return variant


def collect_buffers(task: Task, cfg: GenerateConfig, progress: Callable[[int, int], None] | None = None) -> list:
    """Roll out the suite's data policy; one Minari EpisodeBuffer per episode."""
    if not task.suite.has_generator:
        raise MageError(f"dataset generation is not built in for {task.name} (suite {task.suite.title}); "
                        f"bring a Minari dataset or a D4RL HDF5 file (`mage data import-d4rl`)")
    if cfg.steps < 1:
        raise MageError("--steps must be positive")
    return task.suite.collect_buffers(task, cfg, progress)


def reference_scores(task: Task, episodes: int = 20, seed: int = 10_000) -> tuple[float, float]:
    """(ref_min_score, ref_max_score): mean return of the random policy and of the noise-free expert on the eval protocol."""
    ref = measure_reference_scores(task, episodes, seed)
    if ref is None:
        raise MageError(f"{task.name} has no reference expert to measure scores with")
    return ref


def make_dataset(task: Task, cfg: GenerateConfig, dataset_id: str | None = None, force: bool = False,
                 progress: Callable[[int, int], None] | None = None):
    """Generate and write a Minari dataset; returns the MinariDataset. Nothing is left behind if it fails."""
    import minari
    from minari.storage import get_dataset_path

    cfg.variant = resolve_variant(task, cfg.variant)
    dataset_id = dataset_id or task.suite.dataset_id(task, cfg.variant)
    path = get_dataset_path(dataset_id)
    if path.exists():
        if not force:
            raise MageError(f"dataset {dataset_id} already exists at {path}; use --force to replace it")
        shutil.rmtree(path)
    buffers = collect_buffers(task, cfg, progress)
    ref_min, ref_max = task.suite.dataset_reference_scores(task, reference_scores(task, cfg.ref_episodes))
    data_env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
    eval_env = task.make_env(mode="eval")
    algorithm, description = task.suite.data_description(task, cfg)
    try:
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=data_env.spec, eval_env=eval_env.spec,
            algorithm_name=algorithm, author="MAGE Studio", author_email="n/a",
            code_permalink=f"mage_core/suites/{task.suite.name}.py", ref_min_score=ref_min, ref_max_score=ref_max,
            description=description, requirements=["gymnasium-robotics>=1.3"], data_format="hdf5")
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        data_env.close(), eval_env.close()
