"""MAGE engine: datasets, the multi-scale autoregressive planner, training, evaluation and baselines (no Qt).

The public API (mage_core.api) is re-exported here on first use, so `import mage_core` stays light:

    from mage_core import Planner, load_policy, evaluate_policy, evaluate_checkpoint, train, render_plan
"""
import importlib

__version__ = "0.1.0"
__all__ = ["EvalResult", "MageConfig", "MageError", "Plan", "Planner", "Policy", "SamplingConfig", "Task",
           "UsageError", "bundled_checkpoint", "checkpoint_ref_scores", "evaluate_checkpoint", "evaluate_policy",
           "get_task", "list_datasets", "load_episodes", "load_policy", "preset", "render_plan", "train",
           "write_video"]  # the names of mage_core.api


def __getattr__(name: str):
    """Resolve a public API name from mage_core.api when it is first asked for (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'mage_core' has no attribute {name!r}")
    value = getattr(importlib.import_module("mage_core.api"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
