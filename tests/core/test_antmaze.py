"""AntMaze suite: the shipped controller walks, generated data opens with reference scores, ghost ants pose at the plan."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mage_core.errors import MageError
from mage_core.suites import get_suite, task_for_dataset
from mage_core.suites.antmaze import GOAL, OBS_DIM, POS, SUITE, AntMazeRecipe, recipe_of
from mage_core.suites.antmaze.controller import DEFAULT_FILE, AntController
from mage_core.suites.pointmaze import geometry


def _short(size="umaze", eval_steps=60):
    return dataclasses.replace(SUITE.task(size), eval_steps=eval_steps)


def test_registered_with_three_sizes():
    s = get_suite("antmaze")
    assert [t.name for t in s.tasks()] == ["antmaze-umaze", "antmaze-medium", "antmaze-large"]
    t = s.task("umaze")
    assert t.params["cell_size"] == 4.0 and t.eval_steps == 700 and s.task("large").eval_steps == 1000
    assert s.variants(t) == ("diverse", "play", "paced")


def test_controller_walks_towards_a_waypoint():
    """Seeded: the ant at the U-maze's bottom-left cell walks to the next cell centre 4 m away."""
    task = SUITE.task("umaze")
    ctl = AntController()
    g = geometry(task)
    env = task.make_env(mode="data", max_episode_steps=1000)
    try:
        obs, _ = env.reset(seed=3, options={"reset_cell": np.array([3, 1]), "goal_cell": np.array([1, 1])})
        target = g.cell_to_xy((3, 2))
        d0 = float(np.linalg.norm(obs["achieved_goal"] - target))
        dists = []
        for _ in range(150):
            qpos = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
            obs, *_ = env.step(ctl.act(qpos, obs["observation"][13:27], target))
            dists.append(float(np.linalg.norm(obs["achieved_goal"] - target)))
    finally:
        env.close()
    assert d0 > 2.5
    assert min(dists) < 1.0, f"closest approach {min(dists):.2f} m from {d0:.2f} m"
    assert dists[49] < d0 - 0.5  # progress within the first 2.5 s of simulated time


def test_generated_dataset_opens_and_carries_reference_scores(minari_root):
    import minari

    from mage_core.data.generate import GenerateConfig, make_dataset

    task = _short()
    ds = make_dataset(task, GenerateConfig(steps=400, seed=1, variant="play", ref_episodes=1), force=True)
    d = minari.load_dataset(ds.id)
    assert d.total_steps == 400
    meta = d.storage.metadata
    assert meta["ref_min_score"] is not None and meta["ref_max_score"] is not None
    assert ds.id == "mage/antmaze-umaze/play-v1" and "waypoints passed" in meta["description"]
    assert '"continuing_task": true' in meta["eval_env_spec"]  # the evaluation protocol travels with the data
    ep = next(d.iterate_episodes())
    assert ep.observations["observation"].shape[1] == 27 and ep.observations["achieved_goal"].shape[1] == 2
    t = task_for_dataset(meta)
    assert t.suite_name == "antmaze" and t.name == "antmaze-umaze"
    flat = t.flatten_obs({k: v[0] for k, v in ep.observations.items()})
    assert flat.shape == (OBS_DIM,)
    np.testing.assert_allclose(flat[POS], ep.observations["achieved_goal"][0], rtol=1e-5)
    stats = SUITE.last_stats
    assert stats["waypoints_passed"] + stats["waypoints_abandoned"] > 0


# two free cells side by side: every goal is one cell (4 m, +-1 m goal noise) from the ant, so a few hundred steps
# hold several arrivals
TWO_CELLS = [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]]


def _two_cell_task():
    t = SUITE.task("umaze")
    return dataclasses.replace(t, env_kwargs={**t.env_kwargs, "maze_map": TWO_CELLS},
                               params={**t.params, "maze_map": TWO_CELLS, "play_cells": [(1, 1), (1, 2)],
                                       "eval_start_cell": (1, 1), "eval_goal_cell": (1, 2)})


def test_data_holds_each_goal_then_draws_the_next_on_the_continuing_task():
    """The continuing protocol in the data: reward every step inside the goal radius, the goal held dwell_steps after
    the first reward, then a cut (a truncation, never a termination) and a new goal from where the ant stands."""
    from mage_core.data.generate import GenerateConfig

    task = _two_cell_task()
    dwell = 15
    cfg = GenerateConfig(steps=1200, seed=2, recipe=AntMazeRecipe(action_noise=0.1, dwell_steps=dwell))
    bufs = SUITE.collect_buffers(task, cfg)
    assert sum(len(b.actions) for b in bufs) == 1200
    held = 0
    for prev, ep in zip(bufs, bufs[1:] + [None]):
        r = np.asarray(prev.rewards)
        assert not any(prev.terminations) and prev.truncations[-1] and not any(prev.truncations[:-1])
        goal = prev.observations["desired_goal"]
        assert np.all(goal == goal[0])  # one goal per episode
        hits = np.flatnonzero(r > 0)
        if len(hits):
            assert len(r) - 1 - hits[0] <= dwell  # never held longer than the recipe says
        if len(hits) and len(r) - 1 - hits[0] == dwell and ep is not None:
            held += 1
            assert r[hits[0]:].mean() > 0.5  # the controller stays inside the radius while it holds the goal
            # continuing: the next episode starts where this one stopped, towards a new goal
            np.testing.assert_allclose(ep.observations["achieved_goal"][0], prev.observations["achieved_goal"][-1])
            assert np.linalg.norm(ep.observations["desired_goal"][0] - goal[0]) > 1.0
    assert held >= 2
    s = SUITE.last_stats
    assert s["goals_reached"] >= held and s["hold_steps"] >= held * dwell
    _, desc = SUITE.data_description(task, cfg)
    assert "N(0,0.1)" in desc and f"holds a reached goal {dwell} steps" in desc


def test_paced_data_walks_each_episode_at_its_own_speed_so_goals_are_reached_later():
    """'paced': each episode's actions are scaled by a drawn factor (a slower gait on the same routes), so the first
    reward comes later than in 'diverse' data made with the same seed; the description says the range."""
    from mage_core.data.generate import GenerateConfig
    from mage_core.tasks import get_task

    task = get_task("antmaze-umaze")
    first_hit, speed = {}, {}
    for variant in ("diverse", "paced"):
        cfg = GenerateConfig(steps=3000, seed=4, variant=variant, recipe=AntMazeRecipe(pace_range=(0.3, 0.5)))
        bufs = SUITE.collect_buffers(task, cfg)
        hits = [int(np.flatnonzero(np.asarray(b.rewards) > 0)[0]) for b in bufs if np.any(np.asarray(b.rewards) > 0)]
        assert hits, variant
        first_hit[variant] = float(np.mean(hits))
        xy = np.concatenate([np.diff(b.observations["achieved_goal"], axis=0) for b in bufs])
        speed[variant] = float(np.linalg.norm(xy, axis=1).mean())
        assert np.abs(np.concatenate([b.actions for b in bufs])).max() <= (0.5 if variant == "paced" else 1.0) + 1e-6
    assert speed["paced"] < 0.8 * speed["diverse"] and first_hit["paced"] > first_hit["diverse"]
    _, desc = SUITE.data_description(task, cfg)
    assert "U(0.3, 0.5)" in desc


def test_a_slower_gait_walks_the_evaluation_route_more_slowly_and_the_pace_tool_checks_its_input(capsys):
    """The measurement behind 'paced': the controller's actions scaled down move the torso less per step."""
    from mage_core.suites.antmaze.pace import main, measure
    from mage_core.tasks import get_task

    fast, slow = measure(get_task("antmaze-umaze"), (1.0, 0.3), episodes=1, noise=0.0, jitter=0.0, steps=150)
    assert slow["mean_speed"] < 0.8 * fast["mean_speed"] and fast["episodes"][0]["flip"] is None
    assert main(["--scales", "1.5"]) == 2 and "--scales" in capsys.readouterr().err


def test_the_recipe_is_the_suites_default_and_checked():
    from mage_core.data.generate import GenerateConfig

    assert recipe_of(GenerateConfig()) == AntMazeRecipe()
    assert AntMazeRecipe().action_noise == 0.2  # Minari's AntMaze noise, not PointMaze's 0.5 in GenerateConfig
    with pytest.raises(MageError, match="AntMazeRecipe"):
        recipe_of(GenerateConfig(recipe={"action_noise": 0.3}))
    with pytest.raises(MageError, match="dwell_steps"):
        recipe_of(GenerateConfig(recipe=AntMazeRecipe(dwell_steps=-1)))
    for bad in ((0.0, 0.5), (0.6, 0.5), (0.5, 1.2), (0.5,)):
        with pytest.raises(MageError, match="pace_range"):
            recipe_of(GenerateConfig(recipe=AntMazeRecipe(pace_range=bad)))
    with pytest.raises(MageError, match="action_noise"):
        recipe_of(GenerateConfig(recipe=AntMazeRecipe(action_noise=-0.1)))


def test_evaluation_is_the_continuing_task_with_reward_every_step_at_the_goal():
    """Minari's antmaze eval envs: no termination at the goal, reward 1 for every step inside the radius."""
    task = SUITE.task("umaze")
    env = task.make_env(mode="eval")
    try:
        assert env.spec.kwargs["continuing_task"] is True and env.spec.max_episode_steps == 700
        env.reset(seed=0)
        goal = SUITE.default_points(task)["goal"]
        SUITE.reset_env_to(task, env, {"start": goal, "goal": goal})
        for _ in range(5):
            obs, r, term, trunc, info = env.step(np.zeros(8, np.float32))
            assert r == 1.0 and info["success"] and not term and not trunc
        SUITE.reset_env_to(task, env, {"start": SUITE.default_points(task)["start"]})
        obs, r, term, trunc, info = env.step(np.zeros(8, np.float32))
        assert r == 0.0 and not info["success"] and not term
    finally:
        env.close()


def test_flattened_observation_holds_the_ants_xy():
    task = SUITE.task("medium")
    env = task.make_env(mode="eval")
    try:
        obs, _ = env.reset(seed=0)
        flat = task.flatten_obs(obs)
        u = env.unwrapped
        assert flat.shape == (OBS_DIM,)
        np.testing.assert_allclose(flat[POS], u.ant_env.data.qpos[:2], atol=1e-5)
        np.testing.assert_allclose(flat[GOAL], u.goal, atol=1e-5)
        start, goal = SUITE.default_points(task)["start"], SUITE.default_points(task)["goal"]
        assert np.linalg.norm(flat[POS] - start) <= 1.5 and np.linalg.norm(flat[GOAL] - goal) <= 1.5  # +-1 m noise
    finally:
        env.close()


def test_pose_then_key_points_give_the_planned_xy():
    import mujoco

    task = SUITE.task("umaze")
    env = task.make_env(mode="eval")
    try:
        obs, _ = env.reset(seed=0)
        model = env.unwrapped.ant_env.model
        base = task.flatten_obs(obs)
        states_HD = np.repeat(base[None], 5, axis=0)
        states_HD[:, POS] = np.stack([np.linspace(-4, 4, 5), np.linspace(-4, 0, 5)], axis=1)
        states_HD[:, 0] = 0.6
        assert SUITE.can_pose(task, model, OBS_DIM)
        data = mujoco.MjData(model)
        torso = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        for s in states_HD:
            SUITE.pose(task, model, data, s)
            np.testing.assert_allclose(data.xpos[torso], [s[POS][0], s[POS][1], 0.6], atol=1e-6)
        kp = SUITE.key_points(task, model, states_HD)
        assert set(kp) == {"torso"} and kp["torso"].shape == (5, 3)
        np.testing.assert_allclose(kp["torso"][:, :2], states_HD[:, POS])
        with pytest.raises(MageError, match="31 dims"):
            SUITE.pose(task, model, data, base[:6])
    finally:
        env.close()


def test_missing_or_damaged_controller_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MageError, match="missing"):
        AntController(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(MageError, match="bad.npz.*damaged"):
        AntController(bad)
    monkeypatch.setattr(SUITE, "controller_path", str(tmp_path / "gone.npz"))
    with pytest.raises(MageError, match="gone.npz"):
        SUITE.expert_policy(SUITE.task("umaze"))
    assert DEFAULT_FILE.name in str(AntController().path)


def test_unknown_size_or_variant_lists_the_known_ones():
    from mage_core.data.generate import resolve_variant

    with pytest.raises(MageError, match="umaze, medium, large"):
        SUITE.task("huge")
    with pytest.raises(MageError, match="diverse, play"):
        resolve_variant(SUITE.task("umaze"), "expert")
    with pytest.raises(MageError, match="diverse, play"):
        SUITE.resolve_variant(SUITE.task("umaze"), "expert")


def test_start_or_goal_inside_a_wall_is_refused():
    task = SUITE.task("umaze")
    g = geometry(task)
    wall_xy = g.cell_to_xy((2, 1))  # the U's middle wall
    with pytest.raises(MageError, match="wall"):
        SUITE.check_point(task, "start", wall_xy)
    SUITE.check_point(task, "goal", g.cell_to_xy((1, 1)))  # a free cell is fine
    env = task.make_env(mode="eval")
    try:
        env.reset(seed=0)
        with pytest.raises(MageError, match="goal .* wall"):
            SUITE.reset_env_to(task, env, {"start": g.cell_to_xy((3, 1)), "goal": wall_xy})
        flat = SUITE.reset_env_to(task, env, {"start": g.cell_to_xy((3, 2)), "goal": g.cell_to_xy((1, 1))})
        np.testing.assert_allclose(flat[POS], g.cell_to_xy((3, 2)), atol=1e-5)
    finally:
        env.close()


@pytest.mark.parametrize("size", ["umaze", "large"])
def test_waypoints_lead_through_free_space_to_the_goal(size):
    """A point walking straight at each waypoint (jittered) reaches random goals without touching a wall."""
    from mage_core.suites.antmaze import WaypointFollower

    g = geometry(SUITE.task(size))
    rng = np.random.default_rng(0)
    follower = WaypointFollower(g, controller=None, jitter=0.5, rng=rng)
    free = g.free_cells()
    for _ in range(10):
        follower.reset()
        p = g.cell_to_xy(free[rng.integers(len(free))]) + rng.uniform(-1, 1, 2)
        goal = g.cell_to_xy(free[rng.integers(len(free))]) + rng.uniform(-1, 1, 2)
        for _ in range(3000):
            d = follower.waypoint(p, goal) - p
            p = p + d / max(np.linalg.norm(d), 1e-9) * min(0.1, np.linalg.norm(d))
            assert g.is_free(p, margin=0.5)
            if np.linalg.norm(p - goal) < 0.45:
                break
        assert np.linalg.norm(p - goal) < 0.45


def test_a_users_v5_dataset_gets_the_v5_layout():
    """AntMaze v5 appends 78 contact forces to 'observation': the ant's xy then sits at 105:107, not 27:29."""
    spec = {"id": "AntMaze_Medium-v5", "kwargs": {}, "max_episode_steps": 1000}
    t = SUITE.task_for_spec({"dataset_id": "user/antmaze-v5"}, spec, spec)
    assert SUITE.obs_slices(t)["agent_xy"] == slice(105, 107) and SUITE.obs_slices(t)["goal_xy"] == slice(107, 109)
    assert SUITE.can_pose(t, None, 109) and not SUITE.can_pose(t, None, OBS_DIM)
    assert geometry(t).walls_RC.tolist() == geometry(SUITE.task("medium")).walls_RC.tolist()
    spec4 = {"id": "AntMaze_UMaze-v4", "kwargs": {}, "max_episode_steps": 700}
    assert SUITE.obs_slices(SUITE.task_for_spec({"dataset_id": "u"}, spec4, spec4))["agent_xy"] == POS


def _quat_yaw(phi):
    return np.array([np.cos(phi / 2), 0.0, 0.0, np.sin(phi / 2)])


def _rotate_world(obs_D, rows_LD, phi):
    """The same ant, goal and plan turned by phi about world z (joints and body-frame angular velocity unchanged)."""
    from mage_core.suites.antmaze.controller import _quat_mul

    c, s = np.cos(phi), np.sin(phi)
    R = np.array([[c, -s], [s, c]])
    o = obs_D.copy()
    o[1:5] = _quat_mul(_quat_yaw(phi), obs_D[1:5])
    o[13:15] = R @ obs_D[13:15]  # world linear velocity
    o[POS], o[GOAL] = R @ obs_D[POS], R @ obs_D[GOAL]
    r = rows_LD.copy()
    r[:, 1 + POS.start:1 + POS.stop] = rows_LD[:, 1 + POS.start:1 + POS.stop] @ R.T
    return o, r


def test_the_heads_heading_frame_sees_the_ant_as_its_controller_does():
    """ModelConfig.inv_frame = "ant-heading": the proprioception block equals the controller's own observation, and
    turning the whole scene about z leaves every feature unchanged (the head need not learn the rotation)."""
    import torch

    from mage_core.suites.antmaze.heading import GAIT_STEPS, ant_heading_features
    from mage_core.suites.antmaze.controller import controller_obs

    rng = np.random.default_rng(0)
    obs = rng.normal(size=OBS_DIM)
    obs[1:5] = _unit(rng.normal(size=4))
    obs[GOAL] = obs[POS] + np.array([1.5, -2.0])  # within the controller's 5 m target clip
    steps = (1, 2, 8, 32)
    rows = rng.normal(size=(len(steps), 1 + OBS_DIM))
    frame = SUITE.head_frames()["ant-heading"]
    f = ant_heading_features(torch.tensor(obs[None]), torch.tensor(rows[None]), steps)[0].numpy()
    assert f.shape == (frame.dim(steps),) == (29 + 2 * 4 + 16 * sum(t < GAIT_STEPS for t in steps),)
    ctl = controller_obs(np.concatenate([obs[POS], obs[:13]]), obs[13:27], obs[GOAL])
    np.testing.assert_allclose(f[:27], ctl[:27], atol=1e-5)  # proprioception without xy or heading
    np.testing.assert_allclose(f[27:29], ctl[27:29], atol=1e-5)  # the goal in the heading frame
    for phi in (0.7, -2.5, 3.1):
        o2, r2 = _rotate_world(obs, rows, phi)
        f2 = ant_heading_features(torch.tensor(o2[None]), torch.tensor(r2[None]), steps)[0].numpy()
        np.testing.assert_allclose(f2, f, atol=1e-6)
    moved = rows.copy()
    moved[2, 1 + POS.start] += 1.0  # the planned xy at step 8 moves: its features move, nothing else does
    f3 = ant_heading_features(torch.tensor(obs[None]), torch.tensor(moved[None]), steps)[0].numpy()
    changed = np.flatnonzero(np.abs(f3 - f) > 1e-9)
    assert list(changed) == [29 + 4, 29 + 5]


def _unit(q):
    return q / np.linalg.norm(q)


def test_mage_with_the_heading_frame_head_fits_saves_and_reloads(tmp_path):
    """A MAGE model whose head reads the plan in the ant's heading frame: the frame is fitted on data, the head is
    g(standardised frame(de-normalised decoded rows)), and a saved checkpoint reloads to the same actions."""
    import torch

    from mage_core.checkpoint import load_checkpoint
    from mage_core.data.generate import GenerateConfig
    from mage_core.data.segments import Episode
    from mage_core.factory import build_mage, build_model_from_checkpoint
    from mage_core.progress import EventWriter
    from mage_core.training.mage_stages import make_segment_dataset, train_mage
    from _helpers_model import micro_config

    task = _two_cell_task()
    bufs = SUITE.collect_buffers(task, GenerateConfig(steps=400, seed=1, recipe=AntMazeRecipe(dwell_steps=10)))
    eps = [Episode(np.array([task.flatten_obs({k: b.observations[k][i] for k in task.obs_keys})
                             for i in range(len(b.actions) + 1)], np.float32),
                   np.asarray(b.actions, np.float32), np.asarray(b.rewards, np.float32), False) for b in bufs]
    cfg = micro_config(obs_dim=OBS_DIM, act_dim=8, inv_lookahead=(1, 2, 8), inv_frame="ant-heading")
    cfg.train.stage1_steps, cfg.train.stage2_steps, cfg.train.stage3_steps, cfg.train.warmup_steps = 5, 100, 0, 5
    cfg.train.lr_stage2 = 3e-3
    events = []
    out = train_mage(cfg, eps, task, out_path=tmp_path / "ant.pt", sink=EventWriter(None, [events.append]),
                     progress=False)
    inv = [e["losses"]["inv"] for e in events if e["event"] == "step" and e["stage"] == 2]
    assert np.mean(inv[-3:]) < 0.9 * np.mean(inv[:3]), inv
    model = build_model_from_checkpoint(load_checkpoint(tmp_path / "ant.pt"))
    assert model.cfg.inv_frame == "ant-heading" and model.inv.frame is not None
    ds = make_segment_dataset(eps, task, _config_of(out))
    np.testing.assert_allclose(model.inv.x_mean_D.numpy(), ds.normaliser.x_mean_D)
    assert float(model.inv.f_std_F.min()) > 0 and not torch.all(model.inv.f_std_F == 1)
    cond = ds.get(np.arange(4)).x_BHD[:, 0]
    f = model.sample(cond, generator=torch.Generator().manual_seed(0)).fhat_BCT
    rows = model.decode(f, cond)[:, [1, 2, 8]] * model.inv.x_std_D + model.inv.x_mean_D
    raw_c = cond * model.inv.x_std_D + model.inv.x_mean_D
    from mage_core.suites.antmaze.heading import ant_heading_features
    feats = (ant_heading_features(raw_c[:, 1:], rows, (1, 2, 8)) - model.inv.f_mean_F) / model.inv.f_std_F
    torch.testing.assert_close(model.inverse_dynamics(f, cond), model.inv.net(feats))
    again = build_mage(model.cfg).eval()
    again.load_state_dict(load_checkpoint(tmp_path / "ant.pt")["state_dict"])
    torch.testing.assert_close(again.inverse_dynamics(f, cond), model.inverse_dynamics(f, cond))


def _config_of(ckpt):
    from mage_core.config import MageConfig

    return MageConfig.from_dict(ckpt["config"])


@pytest.mark.parametrize("overrides, message", [
    (dict(obs_dim=OBS_DIM, act_dim=8, inv_lookahead=(1,), inv_frame="no-such"), "known: ant-heading"),
    (dict(obs_dim=OBS_DIM, act_dim=8, inv_frame="ant-heading"), "give --inv-lookahead too"),
    (dict(inv_lookahead=(1,), inv_frame="ant-heading"), "written for 31-dim observations; this data has 6")])
def test_a_bad_head_frame_is_a_clear_error(overrides, message):
    from mage_core.factory import build_mage
    from _helpers_model import micro_config

    with pytest.raises(MageError, match=message):
        build_mage(micro_config(**overrides).model)


def test_diagnostics_tell_a_flipped_ant_from_a_stalled_one():
    task = SUITE.task("umaze")
    g = geometry(task)
    obs = np.zeros((11, OBS_DIM), np.float32)
    obs[:, 1] = 1.0  # upright: quaternion (1, 0, 0, 0)
    obs[:, POS] = g.cell_to_xy((3, 1))
    obs[:, GOAL] = g.cell_to_xy((1, 1))
    d = task.suite.episode_diagnostics(task, obs, np.zeros(10))
    assert d["flipped_at"] is None and d["stall_cell"] == [3, 1]  # stood still: a stall
    obs[7:, 1:5] = [0.0, 1.0, 0.0, 0.0]  # turned 180 degrees about x from step 6 on: upside down
    flipped = task.suite.episode_diagnostics(task, obs, np.zeros(10))
    assert flipped["flipped_at"] == 6
    summary, line = task.suite.diagnostics_summary(task, [d, flipped])
    assert summary["flipped"] == 1 and summary["stall_cells"] == [(3, 1)]  # the flipped one is not also a stall
    assert summary["reach_rate"] == 0.0 and "1 flipped over" in line and "stalled in cells [(3, 1)]" in line


def test_iql_trains_with_the_antmaze_settings_of_its_paper(monkeypatch):
    """The suite, not the baseline, knows IQL's AntMaze settings; other families keep the preset's."""
    from mage_core.baselines import iql, train_baseline
    from mage_core.tasks import get_task

    seen = []
    monkeypatch.setattr(iql, "check_available", lambda: None)
    monkeypatch.setattr(iql, "train", lambda episodes, task, config, **kw: seen.append(config))
    train_baseline("iql", dataset=[object()], task=SUITE.task("umaze"), preset="tiny", out="unused.pt")
    train_baseline("iql", dataset=[object()], task=get_task("pointmaze-umaze"), preset="tiny", out="unused.pt")
    assert (seen[0].expectile, seen[0].temperature) == (0.9, 10.0)
    assert (seen[1].expectile, seen[1].temperature) == (iql.preset("tiny").expectile, iql.preset("tiny").temperature)
    assert SUITE.baseline_settings(SUITE.task("umaze"), "bc") == {}
