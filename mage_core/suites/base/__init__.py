"""The suite interface: everything task-specific about one task family behind one class the engine and the studio ask
instead of testing what kind of task they hold, its hooks grouped in three facets (data, protocol, scene)."""
from __future__ import annotations

from mage_core.suites.base.data import DataFacet
from mage_core.suites.base.envs import gym_make, import_robotics
from mage_core.suites.base.protocol import REGOAL_STEPS, HeadFrame, ProtocolFacet
from mage_core.suites.base.scene import EditableState, SceneFacet, progress_line, scratch_data
from mage_core.suites.base.task import Task, flatten_obs


class Suite(DataFacet, ProtocolFacet, SceneFacet):
    """One task family. Every hook takes the task first (`suite.hook(task, ...)`) and has a default that describes a
    bare MuJoCo env; a suite overrides what its family supports, facet by facet:

    - DataFacet (suites/base/data.py): its built-in tasks, which datasets it owns, its data generator.
    - ProtocolFacet (suites/base/protocol.py): envs, the observation's named parts, the reference expert, the 'track'
      executor, diagnostics, settings for the model and the baselines.
    - SceneFacet (suites/base/scene.py): the editable initial state, posing the robot from an observation, key points,
      ghosts and cameras.

    A large suite may write each facet of its own in its own module (a subclass of that facet) and combine them with
    Suite, as the Adroit and AntMaze packages do.
    """

    name = "base"  # registry key
    title = "Base"  # human-readable family name


__all__ = ["Suite", "DataFacet", "ProtocolFacet", "SceneFacet", "Task", "EditableState", "HeadFrame", "REGOAL_STEPS",
           "flatten_obs", "gym_make", "import_robotics", "scratch_data",
           "progress_line"]
