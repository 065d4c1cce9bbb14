"""The Adroit suite: DAPG expert, human and cloned data on AdroitHand{Door,Hammer,Pen,Relocate}-v1, the Minari D4RL
evaluation protocol (dense reward, the env's `success` signal), and the hand posed from its observations.

Modules: tasks (task tables, reference scores, data defaults), assets (shipped policies and demos), bc (the
behaviour-cloning trainer of the cloned data), data (the data facet: datasets and recipes), scene (the scene facet:
pose solver, key points, cameras)."""
from __future__ import annotations

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.adroit.assets import ASSET_DIR, AdroitExpertPolicy, DAPGPolicy, Demo
from mage_core.suites.adroit.data import AdroitData
from mage_core.suites.adroit.scene import AdroitScene
from mage_core.suites.adroit.tasks import BUILTIN_REFERENCE_SCORES, KINDS, LAYOUTS, AdroitDataConfig, kind_of
from mage_core.suites.base import Suite


class AdroitSuite(AdroitData, AdroitScene, Suite):
    """Adroit door / hammer / pen / relocate (`AdroitHand*-v1`) with DAPG expert, human and cloned data."""

    name = "adroit"
    title = "Adroit"

    # ---- protocol ------------------------------------------------------------------------------------------------
    def obs_slices(self, task) -> dict:
        return {name: slice(a, b) for name, a, b in LAYOUTS[kind_of(task)].slices}

    def check_obs(self, task, obs_D, expected_dim=None) -> None:
        lay = LAYOUTS[kind_of(task)]
        n = np.asarray(obs_D).shape[-1]
        if n != lay.obs_dim:
            raise MageError(f"observation has {n} dims but {task.env_id} observations have {lay.obs_dim}")
        super().check_obs(task, obs_D, expected_dim)

    def expert_policy(self, task):
        return AdroitExpertPolicy(self.policy(task))


SUITE = AdroitSuite()

__all__ = ["SUITE", "AdroitSuite", "AdroitDataConfig", "AdroitExpertPolicy", "DAPGPolicy", "Demo", "ASSET_DIR",
           "BUILTIN_REFERENCE_SCORES", "KINDS", "LAYOUTS", "kind_of"]
