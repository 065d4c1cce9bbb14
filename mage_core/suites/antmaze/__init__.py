"""The AntMaze suite: D4RL/Minari antmaze mazes walked by a shipped goal-reaching ant controller steered by waypoints.

Modules: tasks (observation layout, mazes, built-in tasks), controller (the ant controller, its runtime and its SAC
trainer: `python -m mage_core.suites.antmaze.controller`), expert (waypoints + controller), data (the data facet:
datasets and the Minari recipe), scene (the scene facet: the ant posed and drawn), heading (the action head's
heading frame)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mage_core.suites.antmaze.data import AntMazeData, AntMazeRecipe, recipe_of
from mage_core.suites.antmaze.expert import AntExpertPolicy, WaypointFollower
from mage_core.suites.antmaze.heading import ant_heading_dim, ant_heading_features
from mage_core.suites.antmaze.scene import AntMazeScene
from mage_core.suites.antmaze.tasks import (FLIP_UP_Z, GOAL, OBS_DIM, POS, REGOAL_STEPS_BY_SIZE, SIZES, proprio_dim,
                                            split_obs, up_z)
from mage_core.suites.base import HeadFrame
from mage_core.suites.pointmaze import MazeSuite


class AntMazeSuite(AntMazeData, AntMazeScene, MazeSuite):
    """AntMaze UMaze / Medium / Large (`AntMaze_*-v4`, 27-dim ant observation) with the D4RL/Minari antmaze protocol."""

    name = "antmaze"
    title = "AntMaze"
    has_tracker = True
    draws_ghosts = True
    controller_path: str | None = None  # the controller npz (None: assets/antmaze/ant_controller.npz)

    def __init__(self):
        self._controller = None
        self._controller_key = None

    # ---- the controller ------------------------------------------------------------------------------------------
    def controller(self):
        """The shipped goal-reaching controller (loaded once; a clear MageError if the file is missing or damaged)."""
        # imported here: the controller module also runs as a program (python -m mage_core.suites.antmaze.controller)
        from mage_core.suites.antmaze.controller import DEFAULT_FILE, AntController

        path = Path(self.controller_path) if self.controller_path else DEFAULT_FILE
        key = (str(path), path.stat().st_mtime if path.is_file() else None)
        if self._controller is None or self._controller_key != key:
            self._controller = AntController(path)
            self._controller_key = key
        return self._controller

    def expert_policy(self, task):
        return AntExpertPolicy(task, self.controller())

    # ---- protocol ------------------------------------------------------------------------------------------------
    def obs_slices(self, task) -> dict:
        p = proprio_dim(task)
        return {"agent_proprio": slice(0, p), "agent_xy": slice(p, p + 2), "goal_xy": slice(p + 2, p + 4)}

    def head_frames(self) -> dict:
        """"ant-heading": the action head sees the ant as its data's controller did (ant_heading_features)."""
        return {"ant-heading": HeadFrame(ant_heading_features, ant_heading_dim, OBS_DIM)}

    def regoal_steps(self, task) -> int:
        """Per maze: 20 on umaze, 60 on medium and large, where 60 beat 0 / 20 / 120 on every training seed of medium
        (held-out seeds; docs/BENCHMARKS.md, AntMaze; large: untested, as medium)."""
        return REGOAL_STEPS_BY_SIZE.get(task.params.get("size"), super().regoal_steps(task))

    def baseline_settings(self, task, algo: str) -> dict:
        """IQL with the settings its paper used on AntMaze (expectile 0.9, inverse temperature 10; the presets carry
        its locomotion ones, 0.7 and 3)."""
        return {"expectile": 0.9, "temperature": 10.0} if algo == "iql" else {}

    def episode_diagnostics(self, task, obs_TD, rewards_T) -> dict:
        """The maze measures, plus the step at which the ant first lay upside down (None: never). A flipped ant
        cannot get up again, so its episode ends where it fell; the maze measures alone call that a stall."""
        d = super().episode_diagnostics(task, obs_TD, rewards_T)
        up_T = np.array([up_z(o) for o in np.asarray(obs_TD, float)[1:, :13]])  # qpos[2:15] leads the obs
        flipped = np.nonzero(up_T < FLIP_UP_Z)[0]
        d["flipped_at"] = int(flipped[0]) if len(flipped) else None
        return d

    def diagnostics_summary(self, task, rows: list[dict]) -> tuple[dict, str]:
        """The maze summary (a flipped ant is not counted as a stall), plus how many episodes flipped over."""
        fell = [dict(r, stall_cell=None) if r["flipped_at"] is not None else r for r in rows]
        summary, line = super().diagnostics_summary(task, fell)
        summary["flipped"] = sum(r["flipped_at"] is not None for r in rows)
        return summary, line + (f"; {summary['flipped']} flipped over" if summary["flipped"] else "")

    def track_action(self, task, obs_ND, target_ND) -> np.ndarray:
        """The controller walking each ant towards the torso xy of a planned observation."""
        ctl = self.controller()
        p = proprio_dim(task)
        out = []
        for o, t in zip(np.asarray(obs_ND), np.asarray(target_ND)):
            qpos, qvel, _ = split_obs(o, p)
            out.append(ctl.act(qpos, qvel, np.asarray(t[p:p + 2], float)))
        return np.stack(out).astype(np.float32)


SUITE = AntMazeSuite()

__all__ = ["SUITE", "AntMazeSuite", "AntMazeRecipe", "recipe_of", "AntExpertPolicy", "WaypointFollower",
           "ant_heading_features", "GOAL", "OBS_DIM", "POS", "SIZES", "proprio_dim", "split_obs", "up_z"]
