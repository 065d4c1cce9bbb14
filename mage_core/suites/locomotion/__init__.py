"""Gym-MuJoCo locomotion suite (Hopper, HalfCheetah, Walker2d): behaviour policies, data and scoring."""
from __future__ import annotations

from mage_core.suites.locomotion.suite import (D4RL_REFERENCE_SCORES, VARIANTS, ActorPolicy, LocomotionSuite,
                                               env_key)

SUITE = LocomotionSuite()

__all__ = ["SUITE", "LocomotionSuite", "ActorPolicy", "VARIANTS", "D4RL_REFERENCE_SCORES", "env_key"]
