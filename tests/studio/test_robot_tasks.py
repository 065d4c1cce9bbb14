"""The studio on a non-maze MuJoCo task (Hopper through the generic suite): it opens, plans from a dataset state,
draws per-scale ghosts and key-point paths, and runs closed loop with the executed path drawn."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))


@pytest.fixture(scope="module")
def hopper(minari_root, tmp_path_factory):
    """(dataset id, checkpoint path): a random-policy Hopper-v5 dataset and a micro MAGE checkpoint on it."""
    from _helpers_model import train_micro
    from test_suites import random_minari_dataset

    ds = random_minari_dataset("Hopper-v5", "tests/hopper/studio-random-v0", steps=1200)
    return ds, train_micro(ds, tmp_path_factory.mktemp("hopper-ckpt") / "hopper.pt")


def test_the_studio_opens_a_hopper_checkpoint_and_draws_ghosts(window, qtbot, hopper):
    ds, ckpt = hopper
    win = window
    win.controller.open_checkpoint(str(ckpt))  # another task than the window's umaze: the scene switches to Hopper
    qtbot.waitUntil(lambda: win.state.task is not None and win.state.task.env_id == "Hopper-v5", timeout=30000)
    win.controller.open_dataset(ds)
    qtbot.waitUntil(lambda: win.state.dataset is not None and win.state.plan is not None, timeout=30000)
    assert win.state.start_xy is None and win.state.state_template is not None
    # the Data panel: no goal, so no success rate, and an episode that ended early fell (it did not arrive)
    assert "no success rate" in win.data_dock.lbl_summary.text() and "reach the goal" not in win.data_dock.lbl_summary.text()
    assert "a fall" in win.data_dock.lbl_ep.text() and "goal" not in win.data_dock.lbl_ep.text()
    qtbot.waitUntil(lambda: win.viewport.scene_model is not None and win.viewport.image is not None, timeout=30000)
    ov = win.viewport.overlay
    assert ov.plan_states is not None and ov.plan_states.shape[0] == len(win.state.plan.scales)
    # the render thread expanded the plan into ghosts and torso paths with the scene's own model
    qtbot.waitUntil(lambda: win.viewport.shown_id == win.viewport.request_id, timeout=30000)
    scene = win.viewport.worker._scene
    K = len(win.state.plan.scales)
    cache = scene._plan_cache
    assert cache is not None and len(cache.paths) == K and "torso" in cache.paths[0] and win.errors == []
    assert set(cache.ghosts) == {K - 1}  # ghosts posed only for the scale they are drawn for (the finest)
    # the key-point paths reach the viewport, which draws them over the image with a legend naming their styles
    assert len(win.viewport.paths_xyz) == K and not ov.paths_in_scene
    assert any(row[0] == "torso path" for row in win.viewport.legend)
    # closed loop on the real env: the executed torso path is drawn against the plan
    win.run_dock.spin_len.setValue(5)
    for _ in range(3):
        win.run_dock.step_once()
        qtbot.waitUntil(lambda: not win.run_dock.busy, timeout=30000)
    frame = win.run_dock.frame
    assert frame is not None and frame.t == 3 and frame.path_xyz is not None and frame.path_xyz.shape == (4, 3)
    assert win.viewport.overlay.path_xyz is not None and win.viewport.obs is not None
    assert np.isfinite(frame.reward_sum)
    # a dense reward is not a goal: the hopper's positive rewards never read as success
    assert frame.reward_sum > 0 and not frame.success and "✓" not in frame.status()
    # the start can also be an evaluation reset with a seed (Condition dock)
    cd = win.condition_dock
    assert cd.reset_row.isVisibleTo(cd) and not cd.btn_start.isEnabled()
    cd.spin_reset_seed.setValue(3)
    n = win.state.plans_done
    cd.btn_reset_state.click()
    env = win.state.task.make_env(mode="eval")
    expected = win.state.task.flatten_obs(env.reset(seed=3)[0])
    env.close()
    np.testing.assert_allclose(win.state.state_template, expected, atol=1e-6)
    qtbot.waitUntil(lambda: win.state.plans_done > n, timeout=30000)


@pytest.fixture(scope="module", params=["AdroitHandDoor-v1", "AntMaze_UMaze-v4"])
def robot(request, minari_root, tmp_path_factory):
    """(env id, dataset id, checkpoint): a random-policy dataset of a hand task / AntMaze and a micro checkpoint."""
    from _helpers_model import train_micro
    from test_suites import random_minari_dataset

    env_id = request.param
    ds = random_minari_dataset(env_id, f"tests/{env_id.lower()}/studio-random-v0", steps=500)
    return env_id, ds, train_micro(ds, tmp_path_factory.mktemp("robot-ckpt") / "robot.pt", steps=10)


def test_the_studio_opens_a_hand_task_and_antmaze_with_a_plan_drawn(window, qtbot, robot):
    env_id, ds, ckpt = robot
    win = window
    win.controller.open_checkpoint(str(ckpt))
    qtbot.waitUntil(lambda: win.state.task is not None and win.state.task.env_id == env_id, timeout=30000)
    win.controller.open_dataset(ds)
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=30000)
    qtbot.waitUntil(lambda: win.viewport.scene_model is not None and win.viewport.shown_id == win.viewport.request_id,
                    timeout=30000)
    ov = win.viewport.overlay
    assert ov.plan_states is not None  # ghosts are expanded by the render thread
    scene = win.viewport.worker._scene
    K = len(win.state.plan.scales)
    assert scene._plan_cache is not None and set(scene._plan_cache.ghosts) == {K - 1}
    assert win.errors == [] and win.viewport.image is not None
    vp = win.viewport
    qtbot.waitUntil(lambda: not vp.settle_pending and vp.painted_id >= vp.request_id, timeout=30000)
    if ov.plans_xy:  # AntMaze draws its plan on the floor: every plan is a new base, drawn in one pass
        assert scene._base_layer is None
        return
    # a hand plan is drawn as ghosts: the still frame kept its base layer, and a new plan under the same view (an RTG
    # change) is drawn as its ghosts over that base, at the still frame's size, not as a fast full frame
    assert scene._base_layer is not None
    still = (vp.image.width(), vp.image.height())
    hits, n = scene.layer_hits, win.state.plans_done
    lo, hi = win.state.rtg_range()
    win.state.rtg = lo + 0.3 * (hi - lo) if win.state.rtg > lo + 0.5 * (hi - lo) else hi
    qtbot.waitUntil(lambda: win.state.plans_done > n and vp.painted_id >= vp.request_id, timeout=30000)
    assert scene.layer_hits > hits and (vp.image.width(), vp.image.height()) == still


def test_scene_placement_tools_follow_the_suite_and_the_camera_preset_survives_a_task_change(window, qtbot, robot):
    """A hand / ant task has no start and goal to place in the scene: the toolbar's Place start / goal are disabled
    (and an armed placement tool falls back to navigate); the orbit preset (V, or --orbit) survives loading it."""
    env_id, ds, ckpt = robot
    win = window
    assert win.act_tool_start.isEnabled() and win.act_tool_goal.isEnabled()  # the default task is a maze
    win.state.tool = "goal"
    win.viewport.view_orbit()
    win.controller.open_checkpoint(str(ckpt))
    qtbot.waitUntil(lambda: win.state.task is not None and win.state.task.env_id == env_id, timeout=30000)
    points = bool(win.state.task.suite.editable(win.state.task).points)
    assert win.act_tool_start.isEnabled() == points and win.act_tool_goal.isEnabled() == points
    if not points:
        assert win.viewport.tool == "navigate" and win.act_tool_nav.isChecked()
    assert win.viewport.camera_preset == "orbit" and not win.viewport._top_down
    win.viewport.view_top_down()
    win.controller.show_task("pointmaze-umaze")
    qtbot.waitUntil(lambda: win.state.task.name == "pointmaze-umaze", timeout=30000)
    assert win.act_tool_start.isEnabled() and win.viewport._top_down


@pytest.fixture(scope="module")
def kitchen(minari_root, tmp_path_factory):
    """(dataset id, checkpoint path): a small partial kitchen dataset and a micro MAGE checkpoint on it."""
    from _helpers_model import train_micro

    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.tasks import get_task

    ds = make_dataset(get_task("kitchen"), GenerateConfig(steps=140, seed=3, variant="partial", ref_episodes=1),
                      force=True).id
    return ds, train_micro(ds, tmp_path_factory.mktemp("kitchen-ckpt") / "kitchen.pt", steps=3)


def test_the_kitchen_shows_its_sub_tasks_for_the_plan_and_the_run(window, qtbot, kitchen):
    """The header names each target sub-task with the step it is done at: in the plan's decoded states, then in the
    closed-loop run (from the env's own done flags)."""
    ds, ckpt = kitchen
    win = window
    win.controller.open_checkpoint(str(ckpt))
    qtbot.waitUntil(lambda: win.state.task is not None and win.state.task.name == "kitchen", timeout=30000)
    win.controller.open_dataset(ds)
    qtbot.waitUntil(lambda: win.state.dataset is not None and win.state.plan is not None, timeout=30000)
    qtbot.waitUntil(lambda: "in the plan" in win.viewport.hud_text, timeout=30000)
    assert "/4: microwave" in win.viewport.hud_text and "slide cabinet" in win.viewport.hud_text
    win.run_dock.spin_len.setValue(5)
    for _ in range(2):
        win.run_dock.step_once()
        qtbot.waitUntil(lambda: not win.run_dock.busy, timeout=30000)
    frame = win.run_dock.frame
    assert frame is not None and frame.t == 2 and frame.progress.startswith("sub-tasks ")
    assert "sub-tasks " in win.viewport.hud_text and win.errors == []
