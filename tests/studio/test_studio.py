"""The real studio window driven through its widgets: dataset, planner, clicks, RTG, closed loop, plan views, errors."""
from mage_core.suites.pointmaze import geometry
import asyncio

import numpy as np
import pytest
from fakes import FakePlanner
from PySide6.QtCore import QPoint, Qt


def click_world(qtbot, win, xy, modifier=Qt.KeyboardModifier.NoModifier):
    p = win.viewport.world_to_widget(xy)
    qtbot.mouseClick(win.viewport, Qt.MouseButton.LeftButton, modifier, QPoint(int(round(p.x())), int(round(p.y()))))


def wait_plans(qtbot, win, n_before, timeout=10000):
    qtbot.waitUntil(lambda: win.state.plans_done > n_before and not win.controller.busy, timeout=timeout)


def test_window_shows_the_maze_with_docks_and_status(window):
    assert window.windowTitle() == "MAGE Studio"
    for dock in ("dock_data", "dock_checkpoint", "dock_condition", "dock_plan", "dock_run", "dock_train"):
        assert window.findChild(type(window.data_dock).__mro__[1], dock) is not None
    img = window.viewport.image
    assert img.width() > 100 and img.height() > 100
    assert "model: none" in window.lbl_model.text()
    assert window.errors == []


def test_click_sets_start_and_replans_and_wall_clicks_are_refused(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    geo = geometry(win.state.task)
    target = geo.cell_to_xy((1, 3))
    n = win.state.plans_done
    click_world(qtbot, win, target)  # "Place start" is the default tool
    np.testing.assert_allclose(win.state.start_xy, target, atol=0.05)
    wait_plans(qtbot, win, n)
    obs, _ = win.state.planner.calls[-1]
    np.testing.assert_allclose(obs[:2], target, atol=0.05)
    assert "x +1.00" in win.condition_dock.lbl_start.text()
    # a click on a wall is refused with a clear message; the start does not move
    before = win.state.start_xy.copy()
    click_world(qtbot, win, geo.cell_to_xy((2, 1)))
    np.testing.assert_allclose(win.state.start_xy, before)
    assert "wall" in win.condition_dock.lbl_message.text()
    # dragging with the start tool moves the start along
    a, b = geo.cell_to_xy((3, 1)), geo.cell_to_xy((3, 3))
    pa, pb = win.viewport.world_to_widget(a), win.viewport.world_to_widget(b)
    qtbot.mousePress(win.viewport, Qt.MouseButton.LeftButton, pos=QPoint(int(pa.x()), int(pa.y())))
    qtbot.mouseMove(win.viewport, QPoint(int((pa.x() + pb.x()) / 2), int(pa.y())))
    qtbot.mouseMove(win.viewport, QPoint(int(pb.x()), int(pb.y())))
    qtbot.mouseRelease(win.viewport, Qt.MouseButton.LeftButton, pos=QPoint(int(pb.x()), int(pb.y())))
    np.testing.assert_allclose(win.state.start_xy, b, atol=0.05)
    # Shift+click places the goal
    goal = geo.cell_to_xy((3, 3))
    click_world(qtbot, win, goal, Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_allclose(win.state.goal_xy, goal, atol=0.05)


def test_rtg_slider_changes_the_plan(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    slider = win.condition_dock.slider
    slider.setValue(slider.maximum())
    qtbot.waitUntil(lambda: win.state.plan.condition_rtg == pytest.approx(win.state.rtg_range()[1]), timeout=10000)
    high = win.state.plan
    slider.setValue(slider.maximum() // 10)
    qtbot.waitUntil(lambda: win.state.plan.condition_rtg < high.condition_rtg, timeout=10000)
    low = win.state.plan
    assert low.condition_rtg == pytest.approx(win.state.rtg, rel=1e-6)
    # the fake planner moves further along the segment for a higher RTG: the drawn plan changed
    travel = lambda p: np.linalg.norm(p.states_KHD[-1, -1, :2] - p.states_KHD[-1, 0, :2])  # noqa: E731
    assert travel(high) > travel(low)
    assert len(win.viewport.overlay.plans_xy) == len(high.scales)
    assert "scale 1" in win.viewport.legend[0][0]


def test_plan_dock_toggles_and_refine_slider_hide_scales(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None and len(win.viewport.overlay.plans_xy) > 0, timeout=10000)
    dock = win.plan_dock
    assert len(dock.checks) == 6 and all(win.viewport.overlay.visible)
    dock.checks[2].setChecked(False)
    assert win.viewport.overlay.visible[2] is False
    dock.refine.setValue(2)
    assert win.viewport.overlay.visible == [True, True, False, False, False, False]
    assert len([row for row in win.viewport.legend if row[0].startswith("scale")]) == 2
    qtbot.waitUntil(lambda: not dock.token_label.pixmap().isNull(), timeout=5000)
    assert dock.state_plot.getPlotItem().listDataItems()


def test_plan_dock_says_which_scales_run_through_a_wall(window, qtbot):
    """The fake planner draws a straight line to the goal: from the U's bottom arm to its top arm it crosses the wall
    between them on every scale; with start and goal in the same corridor every scale is clear."""
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    geo = geometry(win.state.task)
    dock = win.plan_dock
    n = win.state.plans_done
    win.state.set_start(geo.cell_to_xy((3, 1)))
    win.state.set_goal(geo.cell_to_xy((1, 1)))
    wait_plans(qtbot, win, n)
    qtbot.waitUntil(lambda: dock.lbl_walls.text().startswith("Through a wall"), timeout=5000)
    assert "scales 1–6 " in dock.lbl_walls.text() and "the finest plan too" in dock.lbl_walls.text()
    from mage_studio.docks.plan import scale_ranges

    assert scale_ranges([0, 1, 2, 4]) == "1–3, 5" and scale_ranges([3]) == "4" and scale_ranges([1, 3, 4]) == "2, 4–5"
    assert dock.lbl_walls.isVisibleTo(win)
    n = win.state.plans_done
    win.state.set_goal(geo.cell_to_xy((3, 3)))
    wait_plans(qtbot, win, n)
    qtbot.waitUntil(lambda: "stays clear" in dock.lbl_walls.text(), timeout=5000)


def test_closed_loop_runs_n_steps_and_draws_the_path(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    run = win.run_dock
    run.spin_len.setValue(25)
    run.btn_step.click()
    qtbot.waitUntil(lambda: run.loop is not None and run.loop.t == 1, timeout=10000)
    run.btn_play.click()
    qtbot.waitUntil(lambda: run.loop.t == 25 and not run.playing, timeout=20000)
    assert win.state.view_mode == "run"
    path = win.viewport.overlay.path_xy
    assert len(path) == 26
    assert np.linalg.norm(path[-1] - path[0]) > 0.1  # the agent moved
    assert "step 25/25" in run.lbl_status.text()
    run.btn_reset.click()
    assert run.loop is None and win.state.view_mode == "condition"


def test_dataset_loads_summary_histogram_and_replay(window, qtbot, tiny_dataset):
    win = window
    win.controller.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=20000)
    ds = win.state.dataset
    assert ds.obs_dim == 6 and ds.act_dim == 2 and len(ds.episodes) > 3
    assert "episodes" in win.data_dock.lbl_summary.text()
    lo, hi = win.state.rtg_range()
    assert hi > lo
    win.data_dock.spin_ep.setValue(1)
    win.data_dock.step_slider.setValue(5)
    assert win.state.view_mode == "replay"
    np.testing.assert_allclose(win.viewport.agent_xy, ds.episodes[1].obs_TD[5, :2])
    assert len(win.viewport.overlay.path_xy) == 6
    assert win.recent("datasets")[0] == tiny_dataset


def test_real_checkpoint_plans_and_shows_compatibility(window, qtbot, tiny_dataset, tiny_checkpoint):
    win = window
    win.controller.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=20000)
    win.controller.open_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=30000)
    plan = win.state.plan
    K = len(plan.scales)
    assert plan.states_KHD.shape[0] == K and plan.states_KHD.shape[2] == 6
    assert "✓" in win.checkpoint_dock.lbl_compat.text()
    assert win.checkpoint_dock.tree.topLevelItemCount() > 3
    assert "umaze-tiny.pt" in win.lbl_model.text()
    assert win.recent("checkpoints")[0] == str(tiny_checkpoint)
    n = win.state.plans_done
    win.controller.nudge_rtg(-0.3)
    wait_plans(qtbot, win, n, timeout=30000)
    # the engine may lower the condition to what the data supports from this state, never raise it
    assert win.state.plan.condition_rtg <= win.state.rtg + 1e-3


def test_bad_inputs_get_clear_messages_and_the_window_keeps_working(window, qtbot, tmp_path):
    win = window
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    win.controller.open_checkpoint(str(bad))
    qtbot.waitUntil(lambda: len(win.errors) == 1, timeout=20000)
    assert "Cannot open checkpoint" in win.errors[0]
    assert win.last_dialog is not None and win.last_dialog.isVisible()
    win.last_dialog.close()
    win.controller.open_checkpoint(str(tmp_path / "missing.pt"))
    qtbot.waitUntil(lambda: len(win.errors) == 2, timeout=10000)
    assert "no checkpoint file" in win.errors[1]
    (tmp_path / "notadataset").mkdir()
    win.controller.open_dataset(str(tmp_path / "notadataset"))
    qtbot.waitUntil(lambda: len(win.errors) == 3, timeout=10000)
    assert "Cannot load dataset" in win.errors[2]
    # a planner object that is not one
    win.controller.load_planner(object(), "weird.pt")
    assert "does not provide a planner" in win.errors[3]
    # still alive: a fake planner plans
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)


def test_settings_keep_layout_and_recent_files(window, qtbot, settings):
    win = window
    win.checkpoint_dock.raise_()
    win._add_recent("checkpoints", "/tmp/a.pt")
    win._add_recent("checkpoints", "/tmp/b.pt")
    win._add_recent("checkpoints", "/tmp/a.pt")
    assert win.recent("checkpoints")[:2] == ["/tmp/a.pt", "/tmp/b.pt"]
    win.save_settings()
    assert settings.value("window/state") is not None
    assert any("a.pt" in a.text() for a in win.recent_menu.actions())


def test_keyboard_shortcuts_drive_view_and_rtg(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    win.viewport.setFocus()
    rtg0 = win.state.rtg
    qtbot.keyClick(win.viewport, Qt.Key.Key_PageDown)
    assert win.state.rtg < rtg0
    qtbot.keyClick(win.viewport, Qt.Key.Key_G)
    assert win.viewport.tool == "goal"
    qtbot.keyClick(win.viewport, Qt.Key.Key_V)
    assert win.viewport.pose.elevation > -90
    qtbot.keyClick(win.viewport, Qt.Key.Key_T)
    assert win.viewport.pose.elevation == -90
    qtbot.keyClick(win.viewport, Qt.Key.Key_BracketLeft)
    assert win.plan_dock.refine.value() == len(win.plan_dock.checks) - 1
    qtbot.keyClick(win.viewport, Qt.Key.Key_F1)
    assert win.last_dialog.isVisible() and "Ctrl+O" in win.last_dialog.text()
    win.last_dialog.close()


def test_viewport_mouse_orbit_and_zoom(window, qtbot):
    vp = window.viewport
    window.state.tool = "navigate"
    pose0 = vp.pose
    c = vp.rect().center()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=c)
    qtbot.mouseMove(vp, c + QPoint(60, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=c + QPoint(60, 30))
    assert vp.pose.azimuth != pose0.azimuth
    n = vp.frames_painted
    qtbot.waitUntil(lambda: vp.frames_painted > n, timeout=10000)


def test_qasync_loop_stays_responsive_while_the_studio_plans(window, qtbot, qloop):
    """The studio's worker threads never block the qasync loop: a coroutine keeps ticking during re-plans."""
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    ticks = []

    async def ticker():
        for _ in range(5):
            await asyncio.sleep(0.02)
            ticks.append(1)

    task = asyncio.ensure_future(ticker())
    for v in (0.2, 0.5, 0.9):
        win.state.rtg = v * win.state.rtg_range()[1]
    qtbot.waitUntil(lambda: task.done() and win.state.plan is not None, timeout=10000)
    assert len(ticks) == 5


def test_rtg_sweep_plots_target_against_achieved(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    geo = geometry(win.state.task)
    assert win.state.set_start(geo.cell_to_xy((1, 2)))  # one cell from the goal
    run = win.run_dock
    run.spin_targets.setValue(3)
    run.spin_sweep_len.setValue(40)
    run.btn_sweep.click()
    qtbot.waitUntil(lambda: len(run.sweep_points) == 3 and run.btn_sweep.isEnabled(), timeout=30000)
    targets, achieved = zip(*run.sweep_points)
    assert list(targets) == sorted(targets)
    assert achieved[-1] > achieved[0]  # the fake planner moves faster for a higher target
    assert "targets" in run.lbl_sweep.text()
    sm = run.sweep_summary  # the caption's verdict rests on the achieved span and slope, not on rank alone
    assert sm is not None and sm.verdict in run.lbl_sweep.text() and "slope" in run.lbl_sweep.text()
    assert sm.achieved_span > 0


@pytest.mark.slow
def test_low_high_pair_exports_side_by_side(window, qtbot, tmp_path):
    from PIL import Image

    win = window
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    run = win.run_dock
    assert run.btn_export_pair.isEnabled()
    got = []
    run.export_pair(str(tmp_path / "pair.gif"), on_done=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=120000)
    assert got[0] is not None and "low target" in got[0]["message"] and "high target" in got[0]["message"]
    lo, hi = got[0]["runs"]
    assert lo["target"] < hi["target"] and hi["episode_return"] >= lo["episode_return"]
    with Image.open(tmp_path / "pair.gif") as im:
        assert im.n_frames > 5 and im.size[0] > 2 * im.size[1]
    assert "Saved the pair" in run.lbl_status.text()


def test_a_baseline_checkpoint_is_refused_with_a_clear_message(window, qtbot, tiny_dataset, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "bc.pt"
    r = subprocess.run([sys.executable, "-m", "mage_core", "train", "--dataset", tiny_dataset, "--algo", "bc", "--steps",
                        "5", "--device", "cpu", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-1000:]
    win = window
    win.controller.open_checkpoint(str(out))
    qtbot.waitUntil(lambda: len(win.errors) == 1, timeout=30000)
    assert "not a MAGE one" in win.errors[0]
    assert win.state.planner is None
    win.last_dialog.close()


def test_checkpoint_for_another_task_switches_the_scene_and_a_mismatched_dataset_closes_it(
        window, qtbot, tiny_dataset, tiny_checkpoint, tmp_path):
    import torch

    from mage_studio.app import _parse

    ck = torch.load(tiny_checkpoint, weights_only=False)
    ck["task"] = "pointmaze-medium"  # same observation layout, another maze
    medium = tmp_path / "medium-tiny.pt"
    torch.save(ck, medium)
    assert _parse(["--checkpoint", str(medium)]).task == "pointmaze-medium"  # the start-up scene follows the file
    assert _parse(["--checkpoint", str(medium), "--task", "pointmaze-large"]).task == "pointmaze-large"
    assert _parse(["--checkpoint", str(tmp_path / "missing.pt")]).task == "pointmaze-umaze"

    win = window
    win.controller.open_checkpoint(str(medium))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=30000)
    assert win.state.task.name == "pointmaze-medium"
    win.controller.open_dataset(tiny_dataset)  # an umaze dataset: the medium checkpoint cannot plan there
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=20000)
    assert win.state.task.name == "pointmaze-umaze" and win.state.planner is None
    assert win.lbl_model.text() == "model: none"


def test_a_long_hud_line_pushes_the_legend_down_instead_of_covering_it(window):
    from PySide6.QtGui import QColor

    vp = window.viewport
    vp.legend = [(f"scale {k} · {k} tokens", QColor(200, 100, 50)) for k in range(1, 9)]
    vp.hud_text = "short"
    vp.grab()
    assert vp._legend_box.top() == 12  # room enough: legend in its corner
    vp.hud_text = "pointmaze-large · RTG target 600 → condition 499 (feasible from here) · " * 3
    vp.grab()
    assert not vp._hud_box.intersects(vp._legend_box) and vp._legend_box.top() > vp._hud_box.bottom()


def test_screenshot_with_a_dataset_waits_for_a_plan_made_after_the_dataset_loaded(window, qtbot, tiny_dataset,
                                                                                   tiny_checkpoint, tmp_path,
                                                                                   monkeypatch):
    """`mage-studio --checkpoint C --dataset D --screenshot F`: a plan of the checkpoint alone (before the dataset
    arrived) is not enough; the grab waits for the dataset and a plan after it."""
    from mage_studio.app import _arm_screenshot

    win = window
    # the checkpoint's own dataset is local here and would load by itself within the wait below: only --dataset loads
    monkeypatch.setattr(win.controller, "_load_dataset_for", lambda planner: None)
    win.controller.open_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=30000)
    out, saved = tmp_path / "shot.png", []
    _arm_screenshot(win, str(out), need_plan=True, need_dataset=True, on_saved=lambda: saved.append(1))
    qtbot.wait(1600)  # the plan exists and the scene is drawn, but no dataset yet: no grab
    assert not saved and not out.exists()
    n = win.state.plans_done
    win.controller.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: bool(saved), timeout=30000)
    assert win.state.dataset is not None and win.state.plans_done > n and out.stat().st_size > 1000


def test_screenshot_of_a_task_with_a_bundled_checkpoint_waits_for_its_plan():
    """`mage-studio --task T --screenshot F` opens T's bundled checkpoint, so the grab must wait for its first plan
    (never a shot of "No checkpoint loaded"); a task with nothing bundled and no --checkpoint does not wait."""
    from mage_studio.app import _opens_checkpoint, _parse

    assert _opens_checkpoint(_parse(["--task", "pointmaze-medium", "--screenshot", "x.png"]))
    assert not _opens_checkpoint(_parse(["--task", "walker2d", "--screenshot", "x.png"]))
    assert _opens_checkpoint(_parse(["--task", "walker2d", "--checkpoint", "c.pt", "--screenshot", "x.png"]))


def test_run_steps_that_cannot_run_are_refused_with_a_reason(capsys):
    """`mage-studio --run-steps -5` (no run to shoot after) or --run-steps without --screenshot (nothing to use it)."""
    from mage_studio.app import _parse

    for argv, says in ((["--run-steps", "-5", "--screenshot", "x.png"], "must be 0 or more"),
                       (["--run-steps", "100"], "give --screenshot PNG with it")):
        with pytest.raises(SystemExit):
            _parse(argv)
        assert says in capsys.readouterr().err
    assert _parse(["--run-steps", "100", "--screenshot", "x.png"]).run_steps == 100


def test_an_unknown_task_is_refused_with_the_known_ones(capsys):
    """`mage-studio --task nope` exits with a usage error naming the known tasks (no traceback, no empty window)."""
    from mage_studio.app import _parse

    with pytest.raises(SystemExit) as exc:
        _parse(["--task", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown task 'nope'" in err and "pointmaze-umaze" in err and "adroit-door" in err


@pytest.mark.slow
def test_screenshot_after_a_run_waits_while_the_run_steps_and_gives_up_only_when_it_stalls(window, qtbot,
                                                                                           tiny_checkpoint, tmp_path,
                                                                                           capsys):
    """`--run-steps N --screenshot F`: the wait limit counts from the last progress, not from the start, so a long
    run is shot at step N (not at whatever step it reached when the limit ran out); a run that stops stepping is
    shot after the limit, with a warning naming the step."""
    from mage_studio.app import _arm_screenshot

    win = window
    win.controller.open_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=30000)
    out, saved = tmp_path / "run.png", []
    _arm_screenshot(win, str(out), need_plan=True, run_steps=150, timeout_ms=1000, on_saved=lambda: saved.append(1))
    qtbot.waitUntil(lambda: bool(saved), timeout=120000)
    # a limit counted from the start would have shot before the run's ~2nd second (150 steps need >> 1 s)
    assert win.run_dock.loop.t >= 150 and out.stat().st_size > 1000, f"shot at step {win.run_dock.loop.t}"
    assert "nothing progressed" not in capsys.readouterr().err

    win.run_dock.set_playing(False)  # a run that stops stepping: shot after the limit, with a warning
    out2, saved2 = tmp_path / "stalled.png", []
    _arm_screenshot(win, str(out2), need_plan=True, run_steps=10 ** 6, timeout_ms=800, on_saved=lambda: saved2.append(1))
    qtbot.wait(700)
    win.run_dock.set_playing(False)  # the arming started Play; stop it so the run stalls short of its steps
    qtbot.waitUntil(lambda: bool(saved2), timeout=30000)
    assert out2.exists() and win.run_dock.loop.t < 10 ** 6
    assert "nothing progressed for 1 s" in capsys.readouterr().err
