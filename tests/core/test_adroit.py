"""Tests of the Adroit suite: the DAPG expert, the human and cloned recipes, reference scores, bad files, poses."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from mage_core.errors import MageError
from mage_core.suites import adroit as A
from mage_core.suites.adroit.data import demo_buffers
from mage_core.suites.adroit.scene import Names
from mage_core.tasks import get_task


@pytest.fixture(scope="module")
def door():
    return get_task("adroit-door")


@pytest.fixture(scope="module")
def human_dataset(minari_root, door):
    """The door human variant made through `mage data make`'s path, with 1 reference episode per policy."""
    from mage_core.data.generate import GenerateConfig, make_dataset

    return make_dataset(door, GenerateConfig(steps=10 ** 6, seed=0, variant="human", ref_episodes=1), force=True).id


def _cfg(**kw):
    from mage_core.data.generate import GenerateConfig

    return GenerateConfig(**kw)


def test_registry_and_protocol(door):
    suite = door.suite
    assert suite.name == "adroit" and door.env_id == "AdroitHandDoor-v1" and door.rtg_mode == "dense"
    assert [get_task(f"adroit-{k}").eval_steps for k in A.KINDS] == [200, 200, 100, 200]  # Minari D4RL adroit specs
    assert suite.variants(door) == ("expert", "mixed", "human", "cloned")
    assert suite.variants(get_task("adroit-pen")) == ("expert", "mixed")
    assert suite.matches_builtin(door, {"dataset_id": "mage/adroit-door/mixed-v0"}, {})
    assert suite.claims("AdroitHandDoorSparse-v1", {}, {}) and not suite.claims("PointMaze_UMaze-v3", {}, {})
    assert suite.dataset_id(door, "human") == "mage/adroit-door/human-v0"
    assert suite.matches_builtin(door, {"dataset_id": "mage/adroit-door/cloned-v0"}, {})
    assert suite.default_data_steps(door, "human") == 6729 - 25  # every demo, less its unpaired last action


def test_expert_policy_solves_door(door):
    from mage_core.evaluate import evaluate

    res = evaluate(door, door.suite.expert_policy(door), episodes=3, seeds=(0,))
    assert np.mean(res.successes) == 1.0  # README of assets/adroit: 100 % on door
    assert res.mean > 2500


def test_expert_data_is_deterministic_and_noisy(door):
    suite = door.suite
    a = suite.collect_buffers(door, _cfg(steps=250, seed=3, variant="expert"))
    b = suite.collect_buffers(door, _cfg(steps=250, seed=3, variant="expert"))
    c = suite.collect_buffers(door, _cfg(steps=250, seed=4, variant="expert"))
    assert [len(x.rewards) for x in a] == [200, 50] and a[0].truncations[-1] and a[1].truncations[-1]
    assert np.array_equal(a[1].actions, b[1].actions) and not np.array_equal(a[0].actions, c[0].actions)
    mean_TA = suite.policy(door).mean(a[0].observations[:-1])
    noise = a[0].actions - np.clip(mean_TA, -1, 1)
    assert 0.01 < np.abs(noise).mean() < 1.0  # the policy's own exp(log_std) noise is there


def test_human_variant_equals_shipped_demos(door, human_dataset):
    from mage_core.data.store import load_episodes

    demos = door.suite.demos(door)
    task, episodes, _ = load_episodes(human_dataset)
    assert task.name == "adroit-door" and len(episodes) == len(demos) == 25
    for ep, d in zip(episodes, demos):
        assert np.allclose(ep.obs_TD, d.obs_TD, atol=1e-6)  # every recorded observation, in order
        assert np.allclose(ep.actions_TA, d.actions_TA[:-1], atol=1e-6)  # the last action has no next observation
        assert np.allclose(ep.rewards_T, d.rewards_T[:-1], atol=1e-5)
    import minari

    ep0 = next(minari.load_dataset(human_dataset).iterate_episodes())
    assert ep0.infos["success"].shape == (len(demos[0].obs_TD),)


def test_human_start_state_places_the_recorded_door(door):
    """Each demo's start state (stored in its episode options) resets the env to the door the demo was recorded
    with. Its hand joints are all zero while the first recorded observation's arm is already moved, so only the
    door (handle position, hinge, latch) is compared."""
    sl = door.suite.obs_slices(door)
    for d in door.suite.demos(door)[:5]:
        buf = demo_buffers([d], 10, tiled=False, tick=lambda n: None)[0]
        env = door.make_env()
        obs, _ = env.reset(seed=0, options=buf.options)
        env.close()
        for name in ("handle_xyz", "door_hinge", "latch"):
            assert np.allclose(obs[sl[name]], d.obs_TD[0][sl[name]], atol=1e-5), name


def test_cloned_recipe_halves(door):
    suite = A.AdroitSuite(A.AdroitDataConfig(bc_steps=60, bc_hidden=32))
    demos = suite.demos(door)
    bufs = suite.collect_buffers(door, _cfg(steps=1000, seed=1, variant="cloned"))
    tiled = [b for b in bufs if b.options is not None]
    rolled = [b for b in bufs if b.options is None]
    assert bufs[:len(tiled)] == tiled  # the demos first, then the BC rollouts
    assert sum(len(b.rewards) for b in tiled) == 500 and sum(len(b.rewards) for b in rolled) == 500
    for b, d in zip(tiled, demos):
        n = len(b.rewards)
        assert np.array_equal(b.observations, d.obs_TD[:n + 1]) and np.array_equal(b.actions, d.actions_TA[:n])
    env = door.make_env(mode="data")
    for b in rolled:  # real env rollouts from seeded resets, in the action space
        obs, _ = env.reset(seed=b.seed)
        assert np.allclose(b.observations[0], obs) and np.abs(b.actions).max() <= 1.0
    env.close()
    assert [len(b.rewards) for b in rolled] == [200, 200, 100]


def test_mixed_variant_spans_random_to_expert(door):
    """The lagged expert: per-episode returns run from a hand too slow to act to the expert's own level."""
    suite = door.suite
    bufs = suite.collect_buffers(door, _cfg(steps=200 * 12, seed=0, variant="mixed"))
    lo, hi = suite.builtin_reference_scores(door)
    norm = np.array([100 * (sum(b.rewards) - lo) / (hi - lo) for b in bufs])
    assert len(bufs) == 12 and norm.min() < 15 and norm.max() > 90, norm.round()
    assert 0.2 < np.mean(norm > 50) < 0.8  # neither all expert nor all failing
    again = suite.collect_buffers(door, _cfg(steps=200 * 12, seed=0, variant="mixed"))
    assert all(np.array_equal(a.actions, b.actions) for a, b in zip(bufs, again))  # seeded
    with pytest.raises(MageError, match="variants: expert, mixed"):
        get_task("adroit-hammer").suite.collect_buffers(get_task("adroit-hammer"), _cfg(steps=10, variant="replay"))


def test_tiled_demos_cycle(door):
    demos = door.suite.demos(door)
    total = sum(len(d.obs_TD) - 1 for d in demos)
    bufs = demo_buffers(demos, total + 10, tiled=True, tick=lambda n: None)
    assert len(bufs) == 26 and np.array_equal(bufs[25].observations, demos[0].obs_TD[:11])


def test_reference_scores_land_in_metadata(human_dataset):
    import minari

    meta = minari.load_dataset(human_dataset).storage.metadata
    lo, hi = meta["ref_min_score"], meta["ref_max_score"]
    assert lo < 0 < 2500 < hi  # random about -46, expert about 3000 on door's 200-step protocol
    assert "human demonstrations" in meta["description"]


def test_dataset_without_reference_scores_uses_the_suites(minari_root, door):
    """A user's Minari dataset of the door env that carries no reference scores is normalised with the suite's."""
    import minari

    from mage_core.data import store

    bufs = demo_buffers(door.suite.demos(door)[:2], 400, tiled=False, tick=lambda n: None)
    env = door.make_env(mode="data", max_episode_steps=200)
    minari.create_dataset_from_buffers(dataset_id="user/door-mine-v0", buffer=bufs, env=env.spec,
                                       algorithm_name="mine", data_format="hdf5")
    env.close()
    task, _, meta = store.load_episodes("user/door-mine-v0")
    assert meta.get("ref_max_score") is None
    assert task.suite.name == "adroit" and task.eval_steps == 200 and task.rtg_mode == "dense"
    assert store.reference_scores("user/door-mine-v0", task) == list(A.BUILTIN_REFERENCE_SCORES["AdroitHandDoor-v1"])
    info = store.dataset_info("user/door-mine-v0")
    assert info["ref_max_score"] == A.BUILTIN_REFERENCE_SCORES["AdroitHandDoor-v1"][1]
    assert "suite" in info["ref_scores_from"]


def test_bad_files_name_the_file(tmp_path, door):
    shutil.copytree(A.ASSET_DIR, tmp_path / "a")
    suite = A.AdroitSuite(asset_dir=tmp_path / "a")
    (tmp_path / "a" / "door-expert-policy.npz").unlink()
    with pytest.raises(MageError, match="missing .*door-expert-policy.npz"):
        suite.expert_policy(door)
    (tmp_path / "a" / "door-expert-policy.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(MageError, match="damaged .*door-expert-policy.npz"):
        suite.expert_policy(door)
    good = dict(np.load(A.ASSET_DIR / "door-expert-policy.npz"))
    np.savez(tmp_path / "a" / "door-expert-policy.npz", **{**good, "w0": good["w0"][:, :10]})
    with pytest.raises(MageError, match="door-expert-policy.npz.*shapes"):
        suite.expert_policy(door)
    demos = (tmp_path / "a" / "door-human-demos.npz")
    demos.write_bytes(demos.read_bytes()[: 200_000])  # truncated download
    with pytest.raises(MageError, match="damaged .*door-human-demos.npz"):
        suite.collect_buffers(door, _cfg(steps=10, variant="human"))
    z = dict(np.load(A.ASSET_DIR / "door-human-demos.npz"))
    del z["ep07_actions"]
    np.savez(demos, **z)
    with pytest.raises(MageError, match="door-human-demos.npz: episode 7 lacks actions"):
        suite.demos(door)


def test_human_variant_on_a_task_without_demos():
    from mage_core.data.generate import resolve_variant

    hammer = get_task("adroit-hammer")
    with pytest.raises(MageError, match="variants: expert"):
        resolve_variant(hammer, "human")
    with pytest.raises(MageError, match="tasks with 'human' data: adroit-door"):
        hammer.suite.collect_buffers(hammer, _cfg(steps=10, variant="human"))


def test_wrong_observation_size(door):
    with pytest.raises(MageError, match="39"):
        door.suite.check_obs(door, np.zeros(45))
    env = door.make_env()
    model = env.unwrapped.model
    env.close()
    assert door.suite.can_pose(door, model, 39) and not door.suite.can_pose(door, model, 45)


def _consistent_obs(task, seed: int, steps: int):
    """An observation whose qpos and site positions agree (recomputed after the expert's steps) and the true qpos."""
    import mujoco

    env = task.make_env()
    pol = task.suite.expert_policy(task)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        obs, *_ = env.step(pol.act(obs[None], None)[0])
    u = env.unwrapped
    mujoco.mj_forward(u.model, u.data)
    out = u._get_obs().copy(), u.data.qpos.copy()
    env.close()
    return out


@pytest.mark.parametrize("kind", A.KINDS)
def test_pose_then_key_points_read_back(kind):
    """Posing a model (from another reset) from an observation puts palm, object and target where it says."""
    import mujoco

    task = get_task(f"adroit-{kind}")
    suite = task.suite
    obs_D, qpos_true = _consistent_obs(task, seed=5, steps=25)
    env = task.make_env()
    env.reset(seed=77)  # another door position, board height, pen target, ball and target placement
    model = env.unwrapped.model
    env.close()
    data = mujoco.MjData(model)
    suite.pose(task, model, data, obs_D)
    names = Names(model)
    kp = suite.key_points(task, model, obs_D[None])
    assert set(kp) == set(suite.key_point_names(task))
    posed = {"palm": data.site_xpos[names.site("S_grasp")]}
    if kind == "door":
        posed["object"] = data.site_xpos[names.site("S_handle")]
    elif kind == "hammer":
        posed["object"], posed["target"] = data.xpos[names.body("Object")], data.site_xpos[names.site("S_target")]
    elif kind == "pen":
        posed["object"], posed["target"] = data.xpos[names.body("Object")], data.site_xpos[names.site("eps_ball")]
    else:
        posed["object"], posed["target"] = data.xpos[names.body("Object")], data.site_xpos[names.site("target")]
    for name, xyz in posed.items():
        assert np.allclose(kp[name][0], xyz, atol=1e-5), name
    # the whole qpos where the observation fixes it; relocate's ball is placed by its slides on this model's own
    # (differently drawn) ball body position, and the pen's roll about its own axis is not observed
    observed = {"door": slice(None), "hammer": slice(None), "pen": slice(0, 27), "relocate": slice(0, 30)}[kind]
    assert np.allclose(data.qpos[observed], qpos_true[observed], atol=1e-4)


@pytest.mark.parametrize("kind", ["door", "hammer", "pen", "relocate"])
def test_ghosts_are_posed_in_the_scene_without_moving_it(kind):
    """pose_in_scene (ghosts along a plan) fits the hand and the moving object and keeps the scene's constants (door
    frame, nail board, pen target, relocate target) as the condition set them; pose() fits those too."""
    import mujoco

    task = get_task(f"adroit-{kind}")
    suite = task.suite
    obs_D, qpos_true = _consistent_obs(task, seed=5, steps=25)
    env = task.make_env()
    env.reset(seed=77)  # another episode's scene constants
    model = env.unwrapped.model
    env.close()
    constants = lambda: np.concatenate([model.body_pos.ravel(), model.body_quat.ravel(), model.site_pos.ravel()])
    before = constants()
    data = mujoco.MjData(model)
    suite.pose_in_scene(task, model, data, obs_D)
    np.testing.assert_array_equal(constants(), before)
    kp = suite.key_points(task, model, obs_D[None])
    np.testing.assert_allclose(data.site_xpos[Names(model).site("S_grasp")], kp["palm"][0], atol=1e-4)
    if kind != "door":  # the object where the observation puts it, in this scene
        np.testing.assert_allclose(data.xpos[Names(model).body("Object")], kp["object"][0], atol=2e-3)
    suite.pose(task, model, data, obs_D)
    assert not np.array_equal(constants(), before)  # the full pose fits the scene constants: the check can fail


@pytest.mark.parametrize("kind", ["door", "relocate"])
def test_reset_env_to_a_dataset_state(kind):
    """An eval env reset elsewhere, moved to an observation, reports that observation back (Run from a state)."""
    task = get_task(f"adroit-{kind}")
    obs_D, _ = _consistent_obs(task, seed=2, steps=30)
    env = task.make_env()
    env.reset(seed=41)
    back = task.suite.reset_env_to_obs(task, env, obs_D)
    env.close()
    assert np.allclose(back, obs_D, atol=1e-5)
    with pytest.raises(MageError, match="dims"):
        task.suite.reset_env_to_obs(task, env, obs_D[:-1])


def test_success_comes_from_the_envs_signal_and_a_missing_variant_names_who_has_it(human_dataset):
    """Episode success is the env's recorded infos['success'] (Adroit never terminates), and asking a task for a
    variant it lacks names the tasks that have it."""
    from mage_core.data.generate import resolve_variant
    from mage_core.data.store import load_episodes
    from mage_core.errors import MageError
    from mage_core.tasks import get_task

    _, episodes, _ = load_episodes(human_dataset)
    n_ok = sum(e.success for e in episodes)
    assert 0 < n_ok < len(episodes)  # some demos open the door past the success angle, most do not (README)
    with pytest.raises(MageError, match="tasks with 'human' data: adroit-door"):
        resolve_variant(get_task("adroit-hammer"), "human")
