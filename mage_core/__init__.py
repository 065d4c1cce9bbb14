"""MAGE engine: datasets, the multi-scale autoregressive planner, training, evaluation and baselines (no Qt)."""

__version__ = "0.1.0"
