"""What the viewport draws for the studio's state: the view-mode state machine and the overlay, legend and header of the
condition's plan, a closed-loop step or a dataset episode."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor

from mage_core.render import Overlay, plan_overlay
from mage_core.suites.base import progress_line
from mage_studio.replay import episode_step
from mage_studio.rollout import fmt_rtg
from mage_studio.viewport import ALTERNATIVE_RGBA, key_point_legend, legend_rows

WHITE = QColor(255, 255, 255)  # legend colour of the executed / replayed path and the hovered token
DOTS_GREY = QColor(150, 156, 170)  # legend colour of the "one dot per token" note
COMPARE_GREY = QColor(225, 228, 235)  # legend colour of the compared plan (drawn dashed light grey)
LEGEND_EXTRA_ROWS = 2  # legend rows a maze keeps room for besides one per scale (dots; a compare or a hover row)


def finest_xy(plan, task) -> np.ndarray | None:
    """(H, 2) xy of a plan's finest scale, or None (no plan, or a task without an xy plan)."""
    if plan is None:
        return None
    try:
        ov = plan_overlay(plan.states_KHD, tuple(plan.scales), task=task)
    except Exception:  # noqa: BLE001 - a plan without xy dims
        return None
    return np.asarray(ov.plans_xy[-1]) if ov.plans_xy else None


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


class OverlayComposer:
    """Keeps the viewport in step with the state.

    View modes: a task change, a point picked in the scene and a run's end (run_frame None) show the condition; a
    run step (run_frame) shows the run; a dataset episode step (show_episode_step) shows the replay, until the next
    plan arrives.
    """

    def __init__(self, state, viewport, palette: str):
        self.state = state
        self.viewport = viewport
        self.palette = palette  # the render config's scale palette (legend colours)
        self._run_overlay: Overlay | None = None  # the last run step's overlay (redrawn when the settings change)
        self._alt_paths: tuple = ((), [])  # (the alternatives, their paths in the view): computed once per set

    def connect(self) -> None:
        """Subscribe to the state (after the docks, so a dock sees a plan before the view mode moves on)."""
        ev = self.state.events
        ev.task.connect(self._on_task)
        ev.condition.connect(lambda _c: self._on_condition())
        ev.plan.connect(self._on_plan)
        ev.run_frame.connect(self._on_run_frame)
        ev.overlay.connect(lambda _o: self.refresh())

    # ---- state machine -----------------------------------------------------------------------------------------
    def pick(self, tool: str, xy) -> None:
        """A click or drag in the scene with a placement tool: back to the condition, the point moved there."""
        self.state.view_mode = "condition"
        if tool == "start":
            self.state.set_start(xy)
        elif tool == "goal":
            self.state.set_goal(xy)

    def _on_task(self, task) -> None:
        self.state.view_mode = "condition"
        self.viewport.set_task(task)
        self.viewport.key_point_names = tuple(task.suite.key_point_names(task))
        self._on_condition()

    def _on_condition(self) -> None:
        s, vp = self.state, self.viewport
        if s.view_mode != "condition":
            return
        posed = s.task is not None and not s.places_points()  # the suite poses the robot from a state
        robot_obs = s.state_template if posed else None
        moved = (not (_same(vp.agent_xy, s.start_xy) and _same(vp.goal_xy, s.goal_xy)) or vp.qpos is not None
                 or not _same(vp.obs, robot_obs))
        if not moved and s.planner is not None:
            return  # only the RTG or seed changed: the re-plan will redraw; rendering now would only delay it
        vp.agent_xy = s.start_xy
        vp.qpos = None
        vp.obs = robot_obs
        vp.goal_xy = s.goal_xy
        self.refresh()

    def _on_plan(self, plan) -> None:
        s = self.state
        if s.view_mode == "replay":
            s.view_mode = "condition"
            self._on_condition()
            return
        if s.view_mode == "condition":
            self.viewport.hud_text = self.condition_hud(plan)
        self.refresh()

    def _on_run_frame(self, frame) -> None:
        """A closed-loop step on screen, or None: back to the condition view, its plan and header again."""
        s, vp = self.state, self.viewport
        if frame is None:
            s.view_mode = "condition"
            self._run_overlay = None
            vp.hud_text = self.condition_hud(s.plan)
            self._on_condition()
            self.refresh()
            return
        s.view_mode = "run"
        ov = self._plan_overlay(frame.plan)
        task = s.task
        if task is not None and task.suite.draws_floor_path(task):  # the agent's xy trail on the floor
            ov.path_xy = frame.path_xy
            ov.start_xy = frame.path_xy[0]
            ov.goal_xy = s.goal_xy
            vp.agent_xy = frame.path_xy[-1]
        else:  # robots: posed from the observation, the first key point's path drawn against the plan
            ov.path_xyz = frame.path_xyz
            vp.agent_xy = None
            vp.obs = frame.obs
        self._run_overlay = ov
        vp.hud_text = frame.status().replace(" · ", "   ·   ")
        self.refresh()

    def show_episode_step(self, episode, t: int) -> None:
        """Replay a dataset episode: the agent at step t, the path so far, the episode's goal."""
        s, vp = self.state, self.viewport
        if s.task is None:
            return
        s.view_mode = "replay"
        step = episode_step(s.task, episode, t, vp.scene_model)
        if step.floor:
            vp.agent_xy, vp.goal_xy = step.agent_xy, step.goal_xy
        else:
            vp.agent_xy, vp.obs = None, step.obs
        vp.hud_text = step.hud
        vp.legend = [("dataset episode", WHITE)]
        vp.set_overlay(step.overlay)

    # ---- composition -------------------------------------------------------------------------------------------
    def condition_hud(self, plan) -> str:
        """The viewport header for a plan from the condition: task, RTG target and the condition actually used."""
        s = self.state
        if plan is None or s.task is None:
            return ""
        cond = (f"RTG target {fmt_rtg(s.rtg)}" if abs(plan.condition_rtg - s.rtg) < 0.5
                else f"RTG target {fmt_rtg(s.rtg)} → condition {fmt_rtg(plan.condition_rtg)} (feasible from here)")
        held = int(getattr(plan, "held_scales", 0) or 0)
        hold = f"   ·   scales 1–{held} held" if held else ""
        goals = progress_line(s.task.suite.sub_goals(s.task, np.asarray(plan.states_KHD)[-1]), "in the plan")
        progress = f"   ·   {goals}" if goals else ""
        return (f"{s.task.name}   ·   {cond}   ·   plan {s.plan_ms:.0f} ms   ·   {len(plan.scales)} scales{hold}"
                f"{progress}")

    def _visible(self) -> list[bool] | None:
        return list(self.state.overlay.visible) or None

    def _plan_overlay(self, plan) -> Overlay:
        if plan is None:
            return Overlay()
        task = self.state.task
        ov = plan_overlay(plan.states_KHD, getattr(plan, "scales", None), task=task)
        ov.ghost_scales = 1  # robots: ghosts for the finest visible scale (refine to scale k), key-point paths for all
        ov.visible = self._visible()
        ov.paths_in_scene = task is None or task.suite.draws_floor_path(task)  # robots: the viewport draws the paths
        return ov

    def _alternative_paths(self, alts: tuple) -> list:
        """Each alternative's finest plan as the view draws it: the agent's xy (mazes) or the first key point's path
        (robots; none where that needs the scene's model and it is not built yet)."""
        if alts is self._alt_paths[0]:
            return self._alt_paths[1]
        task, paths = self.state.task, []
        for a in alts:
            xy = finest_xy(a, task)
            if xy is not None:
                paths.append(xy)
                continue
            names = task.suite.key_point_names(task)
            kp = task.suite.key_points(task, self.viewport.scene_model, np.asarray(a.states_KHD)[-1]) if names else {}
            if names and names[0] in kp:
                paths.append(np.asarray(kp[names[0]]))
        self._alt_paths = (alts, paths)
        return paths

    def refresh(self) -> None:
        """Redraw the overlay of the current view mode with the overlay settings (a replay draws itself)."""
        s, vp, settings = self.state, self.viewport, self.state.overlay
        if s.view_mode == "run" and self._run_overlay is not None:
            ov = self._run_overlay
            ov.visible = self._visible()
        elif s.view_mode == "replay":
            return
        else:
            ov = self._plan_overlay(s.plan)
            ov.start_xy = s.start_xy
            ov.goal_xy = s.goal_xy
        scales = getattr(s.plan, "scales", None) or (getattr(s.planner, "scales", ()) if s.planner else ())
        vis = ov.visible if ov.visible is not None else [True] * len(scales)
        robot_paths = not ov.paths_in_scene and ov.plan_states is not None  # key-point paths drawn by the viewport
        legend = legend_rows(tuple(scales), vis, self.palette) if ov.plans_xy or robot_paths else []
        if ov.plans_xy:
            legend.append(("dots: one per token", DOTS_GREY))
        if robot_paths:
            legend += key_point_legend(vp.key_point_names)
        hit = settings.hovered_token
        if s.view_mode == "condition" and hit is not None and hit[0] < len(ov.plans_xy):
            k, i, code, a, b = hit  # the hovered token's time span, drawn over its scale's plan
            ov.path_xy = np.asarray(ov.plans_xy[k])[a: b + 2]
            legend.append((f"scale {k + 1} token {i + 1} (code {code}): steps {a}–{b}", WHITE))
        elif ov.path_xy is not None:
            legend.append(("executed path", WHITE))
        alts = settings.alternatives if s.view_mode == "condition" else ()
        vp.alternative_paths = self._alternative_paths(alts)
        if vp.alternative_paths:
            legend.append((f"faint, numbered: {len(alts)} alternatives at scale {settings.alternatives_scale}",
                           ALTERNATIVE_RGBA))
        compare = finest_xy(settings.compare_plan, s.task) if s.view_mode == "condition" else None
        vp.compare_xy = compare  # a second RTG target's finest plan, dashed grey on top
        if compare is not None:
            what = (Path(settings.compare_checkpoint).name if settings.compare_checkpoint is not None
                    else f"RTG {fmt_rtg(settings.compare_rtg)}")
            legend.append((f"dashed grey: {what} (finest)", COMPARE_GREY))
        vp.legend = legend
        vp.reserve_legend(len(scales) + LEGEND_EXTRA_ROWS if scales and ov.plans_xy else 0)
        vp.set_overlay(ov)
