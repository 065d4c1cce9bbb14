"""Suites as plug-ins: registry, task recovery from datasets, and per-scale ghosts on non-maze MuJoCo tasks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mage_core.errors import MageError
from mage_core.suites import SUITES, all_tasks, get_suite
from mage_core.tasks import get_task


def random_minari_dataset(env_id: str, dataset_id: str, steps: int = 1500, seed: int = 0, **make_kwargs) -> str:
    """A small Minari dataset of a random policy in `env_id` (the shape of a user's own data)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    from mage_core.suites import gym_make

    env = gym_make(env_id, dataset_id, **make_kwargs)
    env.action_space.seed(seed)
    buffers, done, ep = [], 0, 0

    def stack(obs_list):
        if isinstance(obs_list[0], dict):
            return {k: np.asarray([o[k] for o in obs_list], np.float64) for k in obs_list[0]}
        return np.asarray(obs_list, np.float64)

    while done < steps:
        obs, _ = env.reset(seed=seed + ep)
        obs_l, acts, rews, terms, truncs = [obs], [], [], [], []
        for i in range(200):
            a = env.action_space.sample()
            obs, r, term, trunc, _ = env.step(a)
            done += 1
            trunc = trunc or i == 199 or done >= steps
            obs_l.append(obs), acts.append(a)
            rews.append(float(r)), terms.append(bool(term)), truncs.append(bool(trunc and not term))
            if term or trunc:
                break
        buffers.append(EpisodeBuffer(id=ep, observations=stack(obs_l), actions=np.asarray(acts, np.float32),
                                     rewards=rews, terminations=terms, truncations=truncs))
        ep += 1
    minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=buffers, env=env.spec, algorithm_name="random",
                                       author="tests", author_email="n/a", code_permalink="tests/core/test_suites.py",
                                       data_format="hdf5")
    env.close()
    return dataset_id


def test_every_builtin_task_belongs_to_a_registered_suite():
    tasks = all_tasks()
    assert {"pointmaze-umaze", "pointmaze-medium", "pointmaze-large"} <= set(tasks)
    for t in tasks.values():
        assert t.suite is SUITES[t.suite_name]
    assert list(SUITES)[-1] == "generic"  # the fallback is asked last
    with pytest.raises(MageError, match="known suites"):
        get_suite("nope")


def test_suites_say_whether_the_agent_path_is_an_xy_trail():
    for name, floor in (("pointmaze-umaze", True), ("antmaze-umaze", True), ("adroit-door", False)):
        task = get_task(name)
        assert task.suite.draws_floor_path(task) is floor, name


def test_suites_say_whether_the_reward_pays_only_at_the_goal():
    """IQL's terminal flags and reward scale and the loader's success flag ask this, not the task's RTG mode."""
    for name, sparse in (("pointmaze-umaze", True), ("antmaze-umaze", True), ("adroit-door", False)):
        task = get_task(name)
        assert task.suite.sparse_goal_reward(task) is sparse, name


def test_suites_say_whether_a_task_reaches_a_goal_point_and_where_it_is():
    for name, reaching in (("pointmaze-umaze", True), ("antmaze-umaze", True), ("adroit-door", False)):
        task = get_task(name)
        suite = task.suite
        assert suite.goal_reaching(task) is reaching, name
        obs_D = np.arange(200, dtype=float)  # longer than any of these observations
        goal = suite.goal_point(task, obs_D)
        agent = suite.agent_point(task, np.stack([obs_D, obs_D + 1]))  # works on a batch of observations too
        if reaching:
            assert np.array_equal(goal, obs_D[suite.obs_slices(task)["goal_xy"]]) and goal.shape == (2,)
            assert agent.shape == (2, 2) and np.array_equal(agent[1], obs_D[suite.obs_slices(task)["agent_xy"]] + 1)
        else:
            assert goal is None and agent is None


def test_pointmaze_suite_owns_the_maze_knowledge():
    task = get_task("pointmaze-umaze")
    s = task.suite
    pts = s.default_points(task)
    obs = s.condition_obs(task, pts, 6)
    np.testing.assert_allclose(obs[s.obs_slices(task)["agent_xy"]], pts["start"])
    np.testing.assert_allclose(obs[s.obs_slices(task)["goal_xy"]], pts["goal"])
    with pytest.raises(MageError, match="wall"):
        s.check_point(task, "start", (0.0, 0.0))
    # the tracker steers towards a planned position
    a = s.track_action(task, obs[None], np.r_[pts["start"] + [0.3, 0.0], 0, 0, pts["goal"]][None])
    assert a.shape == (1, 2) and a[0, 0] > 0.5


@pytest.fixture(scope="module")
def hopper_dataset(minari_root):
    return random_minari_dataset("Hopper-v5", "tests/hopper/random-v0", steps=1200)


@pytest.fixture(scope="module")
def hopper_checkpoint(hopper_dataset, tmp_path_factory):
    from _helpers_model import train_micro

    return train_micro(hopper_dataset, tmp_path_factory.mktemp("hopper") / "hopper.pt")


def test_a_hopper_dataset_is_claimed_by_the_locomotion_suite_and_posed_from_its_observations(hopper_dataset):
    from mage_core.data.store import dataset_task
    from mage_core.render import TaskScene

    task = dataset_task(hopper_dataset)
    assert task.suite_name == "locomotion" and task.env_id == "Hopper-v5" and task.rtg_mode == "dense"
    scene = TaskScene(task)
    try:
        m, d = scene.model, scene.data
        suite = task.suite
        assert suite.can_pose(task, m, 11) and not suite.can_pose(task, m, 5)
        obs = np.zeros(11)
        suite.pose(task, m, d, obs)
        z0 = suite.key_points(task, m, obs[None])["torso"][0, 2]
        obs[0] += 0.3  # Hopper's observation starts with rootz (its x is left out)
        suite.pose(task, m, d, obs)
        np.testing.assert_allclose(d.xpos[1, 2] - z0, 0.3, atol=1e-9)
        np.testing.assert_allclose(suite.key_points(task, m, obs[None])["torso"][0, 2] - z0, 0.3, atol=1e-9)
    finally:
        scene.close()


def test_ghost_poses_are_the_planned_observations(hopper_dataset):
    """Set a ghost from a plan, read back the key point: it is where the planned observation puts the torso."""
    import mujoco

    from mage_core.data.store import dataset_task
    from mage_core.render import TaskScene, plan_overlay

    task = dataset_task(hopper_dataset)
    rng = np.random.default_rng(0)
    states_KHD = rng.normal(0, 0.1, size=(3, 16, 11))
    states_KHD[..., 0] = np.linspace(0.0, 0.4, 16)  # rootz rises along the plan
    scene = TaskScene(task)
    try:
        ov = plan_overlay(states_KHD, (1, 4, 16), task=task, model=scene.model, ghosts_per_scale=4)
        assert len(ov.ghosts) == 3 and all(len(g) == 4 for g in ov.ghosts) and len(ov.paths_xyz) == 3
        d = mujoco.MjData(scene.model)
        steps = np.unique(np.linspace(0, 15, 4).round().astype(int))
        for k in range(3):
            for q, i in zip(ov.ghosts[k], steps):
                d.qpos[:] = q
                mujoco.mj_kinematics(scene.model, d)
                np.testing.assert_allclose(d.xpos[1], ov.paths_xyz[k]["torso"][i], atol=1e-9)
                np.testing.assert_allclose(q[1:], states_KHD[k, i, :5], atol=1e-9)  # qpos[1:] = obs[:nq-1]
        img = scene.render(scene.default_camera(4 / 3), ov, (320, 240))
        assert img.shape == (240, 320, 3) and scene.dropped_geoms == 0
        bare = scene.render(scene.default_camera(4 / 3), None, (320, 240))
        assert np.abs(img.astype(int) - bare.astype(int)).sum() > 0  # ghosts and paths are drawn
    finally:
        scene.close()


def test_hopper_trains_plans_and_draws_per_scale_ghosts(hopper_checkpoint, tmp_path, capsys):
    from mage_core.cli import main

    png = tmp_path / "hopper.png"
    assert main(["plan", "--checkpoint", str(hopper_checkpoint), "--png", str(png), "--size", "320x240"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert main(["plan", "--checkpoint", str(hopper_checkpoint), "--start", "1,1", "--png", str(png)]) == 2
    assert "reset-seed" in capsys.readouterr().err
    assert main(["plan", "--checkpoint", str(hopper_checkpoint), "--state", "0:3", "--png", str(png)]) == 0
    demo = tmp_path / "demo.png"  # closed loop on the real env, the executed torso path drawn against the first plan
    assert main(["demo", "--checkpoint", str(hopper_checkpoint), "--png", str(demo)]) == 0
    assert "episode return" in capsys.readouterr().out and demo.stat().st_size > 2000


def test_a_checkpoint_alone_rebuilds_a_task_no_suite_has_built_in(minari_root, tmp_path):
    from _helpers_model import train_micro

    from mage_core.checkpoint import load_checkpoint
    from mage_core.task_spec import task_from_checkpoint

    ds = random_minari_dataset("Swimmer-v5", "tests/swimmer/random-v0", steps=600)
    ckpt = load_checkpoint(train_micro(ds, tmp_path / "swimmer.pt"))
    ckpt["dataset"]["id"] = "gone/dataset-v0"  # the dataset is not needed to know the task
    task = task_from_checkpoint(ckpt)
    assert task.env_id == "Swimmer-v5" and task.suite_name == "generic" and task.rtg_mode == "dense"


def test_dict_observations_keep_the_agents_own_position(minari_root):
    """AntMaze's Dict observation: the flattened observation holds achieved_goal (the ant's xy) and the goal."""
    from mage_core.data.store import load_episodes

    ds = random_minari_dataset("AntMaze_UMaze-v5", "tests/antmaze/random-v0", steps=300)
    task, episodes, _ = load_episodes(ds)
    env = task.make_env(mode="data")
    n_obs = env.observation_space["observation"].shape[0]
    o, _ = env.reset(seed=0)
    env.close()
    assert "achieved_goal" in task.obs_keys and episodes[0].obs_TD.shape[1] == n_obs + 2 + 2
    np.testing.assert_allclose(task.flatten_obs(o)[n_obs:n_obs + 2], o["achieved_goal"], atol=1e-6)
    assert task.suite.obs_slices(task) == {} or "agent_xy" in task.suite.obs_slices(task)


def test_one_algorithm_registry_and_flags_that_do_not_apply_are_refused(capsys):
    from mage_core.algos import ALGOS
    from mage_core.baselines import ALGOS as BASELINES
    from mage_core.cli import main

    assert ALGOS == ("mage", *BASELINES)
    assert main(["train", "--task", "pointmaze-umaze", "--algo", "bc", "--stage2-steps", "5"]) == 2
    assert "--stage2-steps does not apply to --algo bc" in capsys.readouterr().err
    assert main(["train", "--task", "pointmaze-umaze", "--steps", "5"]) == 2
    assert "--steps does not apply to --algo mage" in capsys.readouterr().err


def test_steps_scale_applies_to_baselines_too(monkeypatch, tmp_path, capsys):
    import mage_core.baselines as B
    from mage_core.baselines import bc
    from mage_core.cli import main

    seen = {}
    monkeypatch.setattr(B, "train_baseline", lambda algo, **kw: seen.update(kw) or kw["out"])
    assert main(["train", "--task", "pointmaze-umaze", "--algo", "bc", "--steps-scale", "0.5", "--out",
                 str(tmp_path)]) == 0
    assert seen["steps"] == round(bc.preset("small").steps * 0.5)
    assert seen["progress"] is True
    seen.clear()  # --no-progress reaches a baseline's training too (it was dropped: the bar showed anyway)
    assert main(["train", "--task", "pointmaze-umaze", "--algo", "bc", "--no-progress", "--out", str(tmp_path)]) == 0
    assert seen["progress"] is False


def test_a_dataset_without_an_env_still_trains_and_a_non_mujoco_env_has_no_scene(minari_root, tmp_path):
    import json

    from mage_core.data.store import load_episodes, open_dataset
    from mage_core.render import TaskScene

    ds = random_minari_dataset("CartPole-v1", "tests/cartpole/random-v0", steps=300)
    task, episodes, _ = load_episodes(ds)
    assert task.suite_name == "generic" and len(episodes) > 0
    with pytest.raises(MageError, match="not a MuJoCo environment"):
        TaskScene(task)
    meta_file = Path(open_dataset(ds).storage.data_path) / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta.pop("env_spec", None)
    meta.pop("eval_env_spec", None)
    meta_file.write_text(json.dumps(meta))
    task, episodes, _ = load_episodes(ds)  # no env recorded: still loads (and so trains)
    assert task.env_id == "" and len(episodes) > 0
    with pytest.raises(MageError, match="records no environment"):
        task.make_env(mode="eval")


def test_a_maze_suite_with_a_robot_gets_xy_paths_and_ghosts_expanded_by_the_scene():
    """AntMaze: the overlay built without a model (the studio's UI thread) has the xy paths and leaves the ghost ants
    to the render thread's scene, which poses them at the planned xy."""
    import mujoco

    from mage_core.render import TaskScene, plan_overlay

    task = get_task("antmaze-umaze")
    s = task.suite
    obs = s.condition_obs(task, s.default_points(task), None)
    states_KHD = np.repeat(np.repeat(obs[None, None], 2, 0), 8, 1).astype(np.float64)
    sl = s.obs_slices(task)["agent_xy"]
    states_KHD[:, :, sl] += np.linspace(0, 2.0, 8)[None, :, None]  # the plan walks +2 in x and y
    ov = plan_overlay(states_KHD, (1, 8), task=task)
    assert len(ov.plans_xy) == 2 and ov.plan_states is not None and ov.ghosts == []
    scene = TaskScene(task)
    try:
        full = scene._expand(ov)
        assert len(full.ghosts) == 2 and full.plans_xy == ov.plans_xy
        d = mujoco.MjData(scene.model)
        d.qpos[:] = full.ghosts[1][-1]
        mujoco.mj_kinematics(scene.model, d)
        np.testing.assert_allclose(d.qpos[:2], states_KHD[1, -1, sl], atol=1e-6)
        scene.render(scene.default_camera(4 / 3), ov, (160, 120))
        assert scene.dropped_geoms == 0
    finally:
        scene.close()


def test_threads_reach_a_baselines_training_loop(monkeypatch, tmp_path):
    """`mage train --algo bc --threads N` sets the training loop's thread count (not silently auto)."""
    import mage_core.baselines.common as common
    from mage_core.cli import main

    seen = {}

    def fake_run_training(model, stages, dataset, tcfg, **kw):
        seen["threads"] = tcfg.num_threads
        raise SystemExit(0)

    monkeypatch.setattr(common, "run_training", fake_run_training)
    episodes_task = pytest.importorskip("_helpers_model").umaze_episodes(600)
    monkeypatch.setattr("mage_core.data.store.load_episodes", lambda ds: (episodes_task[0], list(episodes_task[1]), {}))
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "x", "--algo", "bc", "--threads", "3", "--out", str(tmp_path)])
    assert seen["threads"] == 3


@pytest.mark.parametrize("env_id", ["AdroitHandDoor-v1", "AntMaze_UMaze-v4"])
def test_a_random_dataset_of_a_robot_suite_trains_and_plans_with_ghosts(env_id, minari_root, tmp_path):
    """A user's small random-policy Minari dataset of a hand task and of AntMaze: claimed by its suite, trains
    (micro preset), and `mage plan --png` draws per-scale ghosts over the scene."""
    from _helpers_model import train_micro
    from mage_core.cli import main
    from mage_core.data.store import load_episodes
    from mage_core.render import TaskScene, plan_overlay

    ds = random_minari_dataset(env_id, f"tests/{env_id.lower()}/random-v0", steps=500)
    task, episodes, _ = load_episodes(ds)
    assert task.suite_name in ("adroit", "antmaze")
    ckpt = train_micro(ds, tmp_path / "robot.pt", steps=10)
    png = tmp_path / "plan.png"
    assert main(["plan", "--checkpoint", str(ckpt), "--png", str(png), "--size", "320x240"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scene = TaskScene(task)  # the ghosts that PNG drew: one set per scale, posed from the plan
    try:
        states_KHD = np.repeat(episodes[0].obs_TD[None, :8], 2, 0).astype(np.float64)
        ov = plan_overlay(states_KHD, (1, 8), task=task, model=scene.model)
        assert len(ov.ghosts) == 2 and all(len(g) > 0 for g in ov.ghosts)
    finally:
        scene.close()


def test_maze_wall_depth_is_zero_in_free_cells_and_grows_into_the_walls():
    from mage_core.suites.pointmaze import geometry

    task = get_task("pointmaze-umaze")  # row 2 is [1, 1, 1, 0, 1]: cells (2, 0)-(2, 2) are walls, (2, 3) is free
    g = geometry(task)
    free, edge_wall, deep_wall = g.cell_to_xy((1, 1)), g.cell_to_xy((2, 2)), g.cell_to_xy((2, 1))
    d = g.wall_depth(np.stack([free, edge_wall, deep_wall]))
    assert d[0] == 0.0
    assert abs(d[1] - 0.5) < 1e-9  # the centre of a wall cell half a cell from free cells above and below
    assert abs(d[2] - 0.5) < 1e-9
    assert g.wall_depth(np.array([[100.0, 0.0]]))[0] > 90  # far outside the map counts as wall
    obs = np.zeros((2, 3, 6))
    obs[..., :2] = edge_wall
    obs[0, 1, :2] = free
    assert task.suite.wall_depth(task, obs).shape == (2, 3)
    assert task.suite.wall_depth(task, obs)[0, 1] == 0.0
    ant = get_task("antmaze-umaze")  # the same map in 4 m cells: depth is still measured in cells
    ga = geometry(ant)
    sl = ant.suite.obs_slices(ant)["agent_xy"]
    obs_a = np.zeros((1, ant.suite.obs_slices(ant)["goal_xy"].stop))
    obs_a[0, sl] = ga.cell_to_xy((2, 2))
    assert abs(ant.suite.wall_depth(ant, obs_a)[0] - 0.5) < 1e-9
    assert task.suite.has_obstacles(task) and ant.suite.has_obstacles(ant)
    assert not get_task("adroit-door").suite.has_obstacles(get_task("adroit-door"))


def test_a_suite_names_the_condition_a_warm_up_plans_from():
    """Suites with points to place give their default points' condition; robots give none (the studio then warms up
    on the data's mean state)."""
    maze, hand = get_task("pointmaze-umaze"), get_task("adroit-door")
    obs = maze.suite.example_condition(maze, None)
    assert obs is not None and obs.shape == (6,) and np.all(np.isfinite(obs))
    assert hand.suite.example_condition(hand, None) is None
