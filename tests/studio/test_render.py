"""Qt-free rendering (mage_core.render): camera projection round trips, overlays within the geom budget, PNG export."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mage_core.suites.pointmaze import geometry
from mage_core import render as R  # noqa: E402
from mage_core.errors import MageError  # noqa: E402
from mage_core.tasks import get_task  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    s = R.TaskScene(get_task("pointmaze-medium"))
    yield s
    s.close()


def test_top_down_projection_round_trip_hits_the_agent(scene):
    task = scene.task
    xy = geometry(task).cell_to_xy((1, 1))
    scene.set_agent(xy)
    img = scene.render(R.top_down_camera(task, 640 / 480), None, (640, 480))
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    f = scene.last_frame
    u, v = f.project([xy[0], xy[1], 0.0])
    np.testing.assert_allclose(f.unproject(u, v, 0.0), xy, atol=1e-6)
    ball = (img[..., 0] > 200) & (img[..., 1] > 150) & (img[..., 2] < 120)  # the agent is drawn in amber
    ys, xs = np.nonzero(ball)
    assert len(xs) > 10
    assert abs(xs.mean() - u) < 4 and abs(ys.mean() - v) < 4


def test_orbit_camera_unprojects_onto_the_floor(scene):
    pose = R.orbit_camera(scene.task).orbit(30, 10)
    scene.render(pose, None, (320, 240))
    f = scene.last_frame
    for xy in ([0.0, 0.0], [1.2, -0.7]):
        u, v = f.project([xy[0], xy[1], 0.0])
        np.testing.assert_allclose(f.unproject(u, v), xy, atol=1e-6)


def test_overlay_colours_scales_and_respects_the_geom_budget(scene):
    K, H = 8, 64
    states = np.zeros((K, H, 6))
    states[:, :, 0] = np.linspace(-2, 2, H)
    ov = R.plan_overlay(states, scales=(1, 2, 4, 8, 16, 32, 48, 64))
    assert [len(p) for p in ov.plan_points] == [1, 2, 4, 8, 16, 32, 48, 64]
    ov.path_xy = np.random.default_rng(0).normal(size=(5000, 2))  # long paths are subsampled
    ov.start_xy, ov.goal_xy = np.zeros(2), np.ones(2)
    scene.render(R.top_down_camera(scene.task), ov, (320, 240))
    assert scene.scene.ngeom <= scene.scene.maxgeom
    assert scene.dropped_geoms == 0
    cols = R.scale_colors(K)
    assert cols.shape == (K, 3) and len({tuple(c) for c in cols.round(3)}) == K
    with pytest.raises(MageError):
        R.scale_colors(3, "no-such-palette")


def test_render_plan_png_writes_a_png(tmp_path):
    task = get_task("pointmaze-umaze")
    geo = geometry(task)
    start, goal = geo.cell_to_xy(task.params["eval_start_cell"]), geo.cell_to_xy(task.params["eval_goal_cell"])
    states = np.zeros((3, 16, 6), np.float32)
    states[:, :, :2] = np.linspace(start, goal, 16)
    out = R.render_plan_png(task, states, np.stack([start, start + 0.1]), start, goal, tmp_path / "p.png", size=(200, 150))
    data = open(out, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(MageError):
        R.plan_overlay(np.zeros((2, 4, 1)))


@pytest.fixture(scope="module")
def door():
    s = R.TaskScene(get_task("adroit-door"))  # a lit, textured scene
    yield s
    s.close()


def test_the_fast_look_drops_shadows_and_textures_and_the_full_look_keeps_them(door):
    import mujoco

    scene = door
    pose = scene.default_camera(4 / 3)
    full = scene.render(pose, R.Overlay(), (160, 120))
    assert scene.scene.flags[int(mujoco.mjtRndFlag.mjRND_SHADOW)] == int(scene.config.shadows)
    assert scene.option.flags[int(mujoco.mjtVisFlag.mjVIS_TEXTURE)] == 1
    fast = scene.render(pose, R.Overlay(), (160, 120), fast=True)
    assert scene.scene.flags[int(mujoco.mjtRndFlag.mjRND_SHADOW)] == 0
    assert scene.option.flags[int(mujoco.mjtVisFlag.mjVIS_TEXTURE)] == 0
    assert fast.shape == full.shape and not np.array_equal(fast, full)  # the shadows are gone
    again = scene.render(pose, R.Overlay(), (160, 120))  # a full frame after a fast one is the full look again
    np.testing.assert_array_equal(again, full)


def test_a_robot_plan_is_posed_once_per_plan_and_only_for_the_scales_shown(monkeypatch, tmp_path):
    from mage_core.tasks import get_task as task_of

    task = task_of("adroit-door")
    sc = R.TaskScene(task)
    try:
        env = task.make_env(mode="eval")
        obs = task.flatten_obs(env.reset(seed=0)[0])
        env.close()
        states = np.repeat(obs[None, None], 8, axis=1).repeat(3, axis=0).astype(np.float32)  # (K=3, H=8, D)
        calls = []
        pose_path = task.suite.pose_path

        def counting(t, m, s, steps=None):
            calls.append(len(s) if steps is None else len(steps))  # poses made: only the drawn steps
            return pose_path(t, m, s, steps=steps)

        monkeypatch.setattr(task.suite, "pose_path", counting)
        ov = R.plan_overlay(states, (1, 2, 8), task=task)
        ov.ghost_scales, ov.paths_in_scene = 1, False
        pose = sc.default_camera(4 / 3)
        for _ in range(3):  # the camera moves: nothing is posed again
            sc.render(pose.orbit(10, 0), ov, (160, 120), fast=True)
        assert calls == [R.GHOSTS_PER_SCALE] and set(sc._plan_cache.ghosts) == {2} and len(sc.last_paths_xyz) == 3
        ov.visible = [True, True, False]  # the finest visible scale is now scale 2: its ghosts are posed once
        sc.render(pose, ov, (160, 120))
        assert calls == [R.GHOSTS_PER_SCALE] * 2 and set(sc._plan_cache.ghosts) == {1, 2}
    finally:
        sc.close()


def test_posing_only_the_drawn_steps_gives_the_poses_of_the_whole_path():
    """A ghost's few steps are posed alone (Adroit fits each step's arm slide): the same qpos as posing every step."""
    from mage_core.tasks import get_task as task_of

    task = task_of("adroit-door")
    sc = R.TaskScene(task)
    try:
        env = task.make_env(mode="eval")
        obs = [task.flatten_obs(env.reset(seed=0)[0])]
        for _ in range(7):
            obs.append(task.flatten_obs(env.step(env.action_space.sample())[0]))
        env.close()
        states_HD = np.asarray(obs, np.float64)
        full = task.suite.pose_path(task, sc.model, states_HD)
        few = task.suite.pose_path(task, sc.model, states_HD, steps=[0, 3, 7])
        assert len(full) == 8 and len(few) == 3
        for q, i in zip(few, (0, 3, 7)):
            np.testing.assert_allclose(q, full[i], atol=1e-6)
        assert not np.allclose(full[0], full[7])  # the hand moved: the check compares different poses
    finally:
        sc.close()


def _door_plans(task, n_plans=2, H=8):
    """(K=2, H, D) door 'plans' made of real observations: each plan a different stretch of random actions."""
    env = task.make_env(mode="eval")
    obs = [task.flatten_obs(env.reset(seed=0)[0])]
    for _ in range(n_plans * H * 3):
        obs.append(task.flatten_obs(env.step(env.action_space.sample())[0]))
    env.close()
    obs = np.asarray(obs, np.float32)
    return obs[0], [np.stack([obs[i * 3 * H: i * 3 * H + 3 * H: 3]] * 2) for i in range(n_plans)]


def test_a_layered_frame_looks_like_the_single_pass_one_and_a_new_plan_reuses_its_base():
    from mage_core.tasks import get_task as task_of

    task = task_of("adroit-door")
    sc = R.TaskScene(task)
    try:
        start, (plan_a, plan_b) = _door_plans(task)
        sc.set_obs(start)
        pose, size = sc.default_camera(4 / 3), (200, 150)

        def overlay(states):
            ov = R.plan_overlay(states, (1, 8), task=task)
            ov.ghost_scales, ov.paths_in_scene = 1, False
            return ov

        bare = sc.render(pose, R.Overlay(), size)
        single = sc.render(pose, overlay(plan_a), size)
        layered = sc.render(pose, overlay(plan_a), size, layered=True)
        assert sc.layer_hits == 0  # the first layered frame of a view draws both layers
        ghosts = np.abs(single.astype(int) - bare.astype(int)).max(-1) > 24  # where the ghosts show at all
        assert ghosts.mean() > 0.01
        diff = np.abs(layered.astype(int) - single.astype(int)).max(-1)
        assert np.abs(layered.astype(int) - bare.astype(int)).max(-1)[ghosts].mean() > 12  # the layer draws them
        assert (diff > 48).mean() < 0.02 and diff.mean() < 3  # ... and looks like the single pass
        assert sc.layer_cached(pose, overlay(plan_b), size)  # a new plan, the same view: only the ghosts are drawn
        sc.render(pose, overlay(plan_b), size, layered=True)
        assert sc.layer_hits == 1
        np.testing.assert_array_equal(sc.render(pose, overlay(plan_a), size, layered=True), layered)
        assert not sc.layer_cached(pose.orbit(5, 0), overlay(plan_b), size)  # the camera moved
        assert not sc.layer_cached(pose, overlay(plan_b), (160, 120))  # another size
        sc.set_obs(plan_b[0, -1])
        assert not sc.layer_cached(pose, overlay(plan_b), size)  # the robot moved
    finally:
        sc.close()


def test_a_coarse_scales_key_point_paths_are_posed_at_its_tokens_resolution():
    """Key-point paths are posed at 3 points per token (at least 16), ends included: a 1-token scale of a 64-step plan
    is a 17-point path through the plan's first and last states; a 64-token scale keeps every step."""
    from mage_core.tasks import get_task as task_of

    task = task_of("adroit-door")
    sc = R.TaskScene(task)
    try:
        start, plans = _door_plans(task, n_plans=1, H=22)
        states = np.concatenate([plans[0], plans[0], plans[0][:, :20]], axis=1)  # (2, 64, D)
        ov = R.plan_overlay(states, (1, 64), task=task)
        ov.ghost_scales, ov.paths_in_scene = 1, False
        sc.render(sc.default_camera(4 / 3), ov, (120, 90))
        coarse, fine = sc.last_paths_xyz
        assert {len(p) for p in coarse.values()} == {17} and {len(p) for p in fine.values()} == {64}
        ends = task.suite.key_points(task, sc.model, states[0][[0, -1]])
        for name, path in coarse.items():
            np.testing.assert_allclose(path[[0, -1]], ends[name], atol=1e-9)
    finally:
        sc.close()


def test_pngs_are_written_through_pillow_and_a_bad_path_is_one_clear_error(tmp_path):
    from PIL import Image

    img = np.zeros((4, 6, 3), np.uint8)
    img[1, 2] = (10, 200, 30)
    R.write_png(tmp_path / "x.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x.png").convert("RGB")), img)
    with pytest.raises(MageError, match="cannot write"):
        R.write_png("/nonexistent-dir/x.png", np.zeros((4, 4, 3), np.uint8))
