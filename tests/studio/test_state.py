"""The studio's Qt-free state (plain pytest, no Qt application): events, validation, the condition's rules, the figure
caption and the episode replay computed from it."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from fakes import FakePlanner

from mage_core.errors import MageError
from mage_core.suites.pointmaze import geometry
from mage_core.tasks import get_task
from mage_studio.state import Condition, DatasetView, Event, OverlaySettings, StudioState

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qasync", "shiboken6")


def _recorder(state, *names):
    """Connect a recorder to these events: a list of (name, values) in emission order."""
    seen = []
    for name in names:
        getattr(state.events, name).connect(lambda *v, n=name: seen.append((n, v)))
    return seen


def _umaze_state():
    state = StudioState()
    state.task = get_task("pointmaze-umaze")
    return state


def test_the_state_and_the_qt_free_studio_modules_load_no_qt():
    code = ("import sys\n"
            "import mage_studio.actions, mage_studio.replay, mage_studio.rollout\n"
            "from mage_studio.state import StudioState\n"
            "from mage_core.tasks import get_task\n"
            "s = StudioState()\n"
            "s.task = get_task('pointmaze-umaze')\n"
            "s.rtg = 10.0\n"
            "assert s.condition_obs().shape == (6,)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r})\n"
            "print(bad)\n"
            "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_setting_a_property_emits_its_event_with_the_new_value():
    state = _umaze_state()
    seen = _recorder(state, "condition", "view_mode", "tool", "overlay", "plan", "run_frame")
    state.rtg = 42.0
    state.seed = 3
    state.view_mode = "replay"
    state.tool = "goal"
    state.update_overlay(visible=(True, False), refine=1)
    state.run_frame = "a frame"
    names = [n for n, _ in seen]
    assert names == ["condition", "condition", "view_mode", "tool", "overlay", "run_frame"]
    cond = seen[0][1][0]
    assert isinstance(cond, Condition) and cond.rtg == 42.0 and seen[1][1][0].seed == 3
    assert seen[2][1] == ("replay",) and seen[3][1] == ("goal",) and seen[5][1] == ("a frame",)
    settings = seen[4][1][0]
    assert isinstance(settings, OverlaySettings) and settings is state.overlay
    assert (settings.visible, settings.refine, settings.compare_rtg) == ((True, False), 1, None)
    assert (state.rtg, state.seed, state.view_mode, state.tool) == (42.0, 3, "replay", "goal")
    plan = SimpleNamespace(timings_ms={"total": 1.5})
    state.plan = plan
    assert seen[-1] == ("plan", (plan,)) and state.plans_done == 1 and state.plan_ms == 1.5


def test_subscribers_run_in_order_and_unsubscribe_stops_them():
    ev = Event("x")
    calls = []
    first = ev.connect(lambda v: calls.append(("first", v)))
    ev.connect(lambda v: calls.append(("second", v)))
    ev.emit(1)
    ev.disconnect(first)
    ev.emit(2)
    assert calls == [("first", 1), ("second", 1), ("second", 2)]
    with pytest.raises(ValueError, match="not connected to the 'x' event"):
        ev.disconnect(first)
    with pytest.raises(TypeError, match="needs a callable"):
        ev.connect("not a function")

    def broken(_v):
        raise RuntimeError("a view failed")

    ev.connect(broken)
    ev.connect(lambda v: calls.append(("after", v)))
    with pytest.raises(RuntimeError, match="a view failed"):  # raised once every subscriber had its turn
        ev.emit(3)
    assert calls[-2:] == [("second", 3), ("after", 3)]


def test_invalid_values_are_refused_with_a_clear_error_and_change_nothing():
    state = _umaze_state()
    before = (state.rtg, state.seed, state.view_mode, state.tool, state.start_xy.copy())
    seen = _recorder(state, "condition", "view_mode", "tool", "overlay")
    for attr, value, words in (("rtg", float("nan"), "finite number"), ("rtg", "high", "must be a number"),
                               ("seed", -1, "0 or more"), ("seed", 1.5, "whole number"),
                               ("view_mode", "sideways", "one of condition, run, replay"),
                               ("tool", "lasso", "one of navigate, start, goal"),
                               ("overlay", {"visible": ()}, "OverlaySettings"),
                               ("state_template", np.zeros((2, 3)), "one flat observation"),
                               ("task", None, "mage_core Task")):
        with pytest.raises(MageError, match=words):
            setattr(state, attr, value)
    wall = geometry(state.task).cell_to_xy((2, 1))
    with pytest.raises(MageError, match="wall"):
        state.start_xy = wall
    assert seen == [] and (state.rtg, state.seed, state.view_mode, state.tool) == before[:4]
    np.testing.assert_allclose(state.start_xy, before[4])
    notes = _recorder(state, "notify")
    assert not state.set_start(wall)  # the interactive form says why instead of raising
    assert notes and notes[0][1][0] == "warning" and "wall" in notes[0][1][1]
    with pytest.raises(MageError, match="does not provide a planner"):
        state.set_planner(object(), "weird.pt")
    assert state.planner is None
    with pytest.raises(MageError, match="no task"):
        StudioState().goal_xy = (0.0, 0.0)


def test_a_task_resets_the_condition_and_a_planner_brings_its_own_task():
    state = StudioState()
    seen = _recorder(state, "task", "condition", "planner")
    umaze = get_task("pointmaze-umaze")
    state.task = umaze
    pts = umaze.suite.default_points(umaze)
    assert [n for n, _ in seen] == ["task", "condition"]
    np.testing.assert_allclose(state.start_xy, pts["start"])
    np.testing.assert_allclose(state.goal_xy, pts["goal"])
    assert state.rtg == umaze.eval_steps * 0.5 and state.places_points()
    state.task = get_task("pointmaze-umaze")  # the same task again: no change, no event
    assert len(seen) == 2
    medium = get_task("pointmaze-medium")
    planner = FakePlanner(medium)
    state.set_planner(planner, "medium.pt", {"card": 1})
    assert state.task.name == "pointmaze-medium" and state.planner is planner
    assert (state.planner_path, state.planner_info) == ("medium.pt", {"card": 1})
    assert [n for n, _ in seen[2:]] == ["task", "condition", "planner", "condition"]
    lo, hi = state.rtg_range()
    assert (lo, hi) == planner.rtg_range and state.rtg == pytest.approx(lo + 0.75 * (hi - lo))
    state.plan = SimpleNamespace(timings_ms={})
    state.close_planner()
    assert seen[-1] == ("planner", (None,)) and state.planner is None and state.plan is None


def test_a_dataset_brings_its_task_and_the_targets_the_data_supports():
    task = get_task("pointmaze-umaze")
    episodes = [SimpleNamespace(length=10, obs_TD=np.zeros((11, 6), np.float32), actions_TA=np.zeros((10, 2)))
                for _ in range(4)]
    ds = DatasetView("test/ds", task, episodes, rtg0_N=np.array([10.0, 20.0, 30.0, 40.0], np.float32))
    state = StudioState()
    seen = _recorder(state, "task", "dataset", "notify", "condition")
    state.set_dataset(ds)
    assert [n for n, _ in seen] == ["task", "condition", "dataset", "notify", "condition"]
    assert state.dataset is ds and state.rtg == pytest.approx(32.5)  # the 75th percentile of the episodes' RTG
    assert state.rtg_range() == (10.0, 40.0) and "4 episodes, 40 steps" in seen[3][1][1]
    state.task = get_task("pointmaze-medium")  # another task: the dataset no longer describes it
    assert state.dataset is None


def test_the_figure_caption_names_checkpoint_target_scales_compare_and_the_runs_own_seed():
    from mage_studio.export import figure_caption
    from mage_studio.rollout import RunFrame

    state = _umaze_state()
    state.set_planner(FakePlanner(state.task), "/runs/umaze.pt")
    state.rtg = 180.0
    state.seed = 4
    plan = FakePlanner(state.task).plan(state.condition_obs(), 150.0)
    state.plan = plan
    state.update_overlay(visible=(True, True, False, False, False, False), refine=2, compare_rtg=20.0,
                         compare_plan=plan)
    title, caption = figure_caption(state)
    assert title == "MAGE plan · pointmaze-umaze"
    for words in ("checkpoint umaze.pt", "RTG target 180", "condition 150", "scales shown 1, 2 of 6",
                  "refined to scale 2", "compared with RTG target 20", "seed 4"):
        assert words in caption, words
    frame = RunFrame(t=3, horizon=10, reward_sum=0.0, success=False, done=False, target=180.0, condition=170.0,
                     path_xy=np.zeros((4, 2)), plan=plan, seed=9)
    state.run_frame = frame
    state.view_mode = "run"
    title, caption = figure_caption(state)
    assert title.startswith("MAGE closed loop") and "seed 9" in caption and "step 3/10" in caption
    assert "compared with" not in caption


def test_an_episode_replays_the_agent_its_path_so_far_and_the_goal():
    from mage_studio.replay import episode_step

    task = get_task("pointmaze-umaze")
    obs_TD = np.zeros((21, 6), np.float32)
    obs_TD[:, 0] = np.linspace(0.0, 1.0, 21)
    obs_TD[:, 4:6] = (1.0, 1.0)
    ep = SimpleNamespace(obs_TD=obs_TD, length=20)
    step = episode_step(task, ep, 5)
    assert step.floor and step.t == 5 and step.hud == "dataset episode · step 5/20"
    np.testing.assert_allclose(step.agent_xy, obs_TD[5, :2])
    np.testing.assert_allclose(step.goal_xy, (1.0, 1.0))
    assert len(step.overlay.path_xy) == 6
    assert episode_step(task, ep, 99).t == 20 and episode_step(task, ep, 0).overlay.path_xy is None
