"""Tests of the locomotion suite: D4RL-style data from (tiny, random) policy files, reference scores, falls, Minari's
mujoco datasets, other env versions, bad files and variants, and ghosts posed from a plan."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mage_core.errors import MageError
from mage_core.suites import SUITES, register_suite, task_for_dataset
from mage_core.suites.locomotion import D4RL_REFERENCE_SCORES, VARIANTS, LocomotionSuite
from mage_core.suites.locomotion.assets import load_actor, policy_path, save_actor
from mage_core.suites.locomotion.actor import ASSETS, ENVS
from mage_core.suites.locomotion.suite import ACT_DIM, OBS_DIM

REPLAY_STEPS, REPLAY_LIMIT = 100, 40  # the test replay log: 100 transitions, episodes cut at 40 steps at most


def tiny_actor(obs_dim: int, act_dim: int, seed: int, hidden: int = 8) -> dict:
    """A random-init SAC actor in behaviour.actor_arrays' layout (two hidden layers of `hidden`)."""
    rng = np.random.default_rng(seed)
    sizes = [obs_dim, hidden, hidden]
    a = {"n_layers": np.array(2)}
    for i in range(2):
        a[f"w{i}"] = rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i + 1], sizes[i])).astype(np.float32)
        a[f"b{i}"] = np.zeros(sizes[i + 1], np.float32)
    a["w_mu"] = rng.normal(0, 0.5, (act_dim, hidden)).astype(np.float32)
    a["b_mu"] = np.zeros(act_dim, np.float32)
    a["w_logstd"] = np.zeros((act_dim, hidden), np.float32)
    a["b_logstd"] = np.full(act_dim, -1.0, np.float32)
    return a


def tiny_replay(env_id: str, seed: int = 0) -> dict:
    """A replay log as behaviour.py writes it (terminals: SB3's done, termination or time limit; timeouts: time
    limit), of uniform random actions with a REPLAY_LIMIT-step time limit; its last episode is still running."""
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts")}
    obs, _ = env.reset(seed=seed)
    t = 0
    for _ in range(REPLAY_STEPS):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        nxt, r, term, _, _ = env.step(a)
        t += 1
        timeout = t >= REPLAY_LIMIT and not term
        for k, v in zip(out, (obs, nxt, a, r, term or timeout, timeout)):
            out[k].append(v)
        if term or timeout:
            (obs, _), t = env.reset(), 0
        else:
            obs = nxt
    env.close()
    return {k: np.asarray(v, np.float32 if k in ("terminals", "timeouts", "actions", "rewards") else np.float64)
            for k, v in out.items()}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A folder of tiny policies and replay logs for every env, as the suite's shipped files are named."""
    folder = tmp_path_factory.mktemp("locomotion-assets")
    for i, key in enumerate(ENVS):
        for j, which in enumerate(("medium", "expert")):
            save_actor(policy_path(folder, key, which), tiny_actor(OBS_DIM[key], ACT_DIM[key], 10 * i + j),
                       {"env_id": ENVS[key], "steps": 1000 * (j + 1), "eval_returns": [float(j)]})
        np.savez(policy_path(folder, key, "medium-replay"), **tiny_replay(ENVS[key], seed=i))
        np.savez(policy_path(folder, key, "replay-tail"), **tiny_replay(ENVS[key], seed=100 + i))
    return folder


@pytest.fixture(scope="module")
def suite(assets, minari_root):
    """The suite, reading the tiny files, registered for this module only (the registry is restored after)."""
    saved = dict(SUITES)
    s = register_suite(LocomotionSuite(assets=assets))
    yield s
    SUITES.clear()
    SUITES.update(saved)


def _task(suite, key):
    return next(t for t in suite.tasks() if t.name == key)


def _cfg(**kw):
    from mage_core.data.generate import GenerateConfig

    return GenerateConfig(**kw)


def test_tasks_follow_d4rls_protocol(suite):
    assert [t.name for t in suite.tasks()] == ["hopper", "halfcheetah", "walker2d"]
    for t in suite.tasks():
        assert t.env_id == ENVS[t.name] and t.env_id.endswith("-v5") and t.suite is suite
        assert t.rtg_mode == "dense" and t.eval_steps == 1000 and t.obs_keys == ()
        assert suite.variants(t) == VARIANTS and set(VARIANTS) == {"random", "medium", "medium-replay",
                                                                   "medium-expert", "expert", "full-replay"}
        assert suite.dataset_id(t, "medium-replay") == f"mage/{t.name}/medium-replay-v0"
        assert suite.builtin_reference_scores(t) == D4RL_REFERENCE_SCORES[t.name]
        # no goal: nothing reads a termination or a positive reward as reaching one
        assert not suite.reports_success(t) and not suite.goal_reaching(t) and not suite.sparse_goal_reward(t)
        assert suite.regoal_steps(t) == 0 and suite.goal_point(t, np.zeros(OBS_DIM[t.name])) is None
    assert D4RL_REFERENCE_SCORES["hopper"] == (-20.272305, 3234.3)


@pytest.mark.parametrize("key", list(ENVS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_env_and_variant_makes_a_minari_dataset(suite, key, variant):
    import minari

    from mage_core.data.generate import make_dataset

    task = _task(suite, key)
    ds = make_dataset(task, _cfg(steps=150, seed=0, variant=variant, ref_episodes=1), force=True)
    assert ds.id == f"mage/{key}/{variant}-v0"
    loaded = minari.load_dataset(ds.id)
    assert loaded.total_steps == min(150, REPLAY_STEPS if variant == "medium-replay" else 150)
    meta = loaded.storage.metadata
    assert np.isfinite(meta["ref_min_score"]) and np.isfinite(meta["ref_max_score"])
    assert json.loads(meta["env_spec"])["id"] == ENVS[key]
    assert variant in meta["algorithm_name"] and "ref_max_score" in meta["description"]
    for ep in loaded.iterate_episodes():
        assert ep.observations.shape == (len(ep.actions) + 1, OBS_DIM[key])
        assert np.all(np.abs(ep.actions) <= 1.0)
        assert not ep.terminations[:-1].any() and not ep.truncations[:-1].any()  # an episode ends only at its end
        assert ep.terminations[-1] != ep.truncations[-1]  # a fall, or cut by the time limit or the budget
    assert task_for_dataset(meta) is not None and task_for_dataset(meta).name == key


def test_medium_expert_is_medium_then_expert_half_and_half(suite):
    task = _task(suite, "hopper")
    bufs = suite.collect_buffers(task, _cfg(steps=400, seed=1, variant="medium-expert"))
    ends = np.cumsum([len(b.actions) for b in bufs])
    assert ends[-1] == 400 and 200 in ends  # the medium rollouts stop at exactly half the steps
    first_expert = int(np.searchsorted(ends, 200)) + 1
    medium, expert = suite.actor(task, "medium"), suite.actor(task, "expert")
    for b, who in ((bufs[0], medium), (bufs[first_expert], expert)):
        o, a = b.observations[0], b.actions[0]
        mu, logstd = who._head(o)
        z = np.arctanh(np.clip(a.astype(np.float64), -0.999999, 0.999999))
        assert np.all(np.abs(z - mu) < 6 * np.exp(logstd))  # a sample of that actor's own Gaussian ...
        assert not np.allclose(a, who.act(o), atol=1e-4)  # ... not its deterministic action
    again = suite.collect_buffers(task, _cfg(steps=400, seed=1, variant="medium-expert"))
    assert all(np.array_equal(x.actions, y.actions) for x, y in zip(bufs, again))  # the same seed, the same data


def test_medium_replay_is_the_log_split_into_episodes(suite):
    task = _task(suite, "hopper")
    log = suite.replay(task)
    assert suite.default_data_steps(task, "medium-replay") == REPLAY_STEPS
    assert suite.default_data_steps(task, "medium") == 200_000
    bufs = suite.collect_buffers(task, _cfg(steps=10 ** 6, seed=0, variant="medium-replay"))
    assert sum(len(b.actions) for b in bufs) == REPLAY_STEPS
    np.testing.assert_array_equal(np.concatenate([b.actions for b in bufs]), log["actions"])
    fell = (log["terminals"] > 0) & (log["timeouts"] == 0)
    assert sum(b.terminations[-1] for b in bufs) == fell.sum() > 0  # hopper falls under random actions
    assert sum(b.truncations[-1] for b in bufs) == (log["timeouts"] > 0).sum() + 1  # + the last, still running
    assert bufs[-1].truncations[-1] and not bufs[-1].terminations[-1]
    # full-replay: the log up to the expert snapshot, i.e. the medium part followed by the shipped tail
    tail = dict(np.load(policy_path(suite.assets, "hopper", "replay-tail")))
    assert suite.default_data_steps(task, "full-replay") == REPLAY_STEPS + len(tail["rewards"])
    full = suite.collect_buffers(task, _cfg(steps=10 ** 6, seed=0, variant="full-replay"))
    np.testing.assert_array_equal(np.concatenate([b.actions for b in full]),
                                  np.concatenate([log["actions"], tail["actions"]]))
    np.testing.assert_allclose(bufs[0].observations[-1], log["next_observations"][len(bufs[0].actions) - 1])


def test_a_fall_is_not_a_success(suite):
    """Random actions make the hopper fall: the episode ends by termination, and the suite reports no success."""
    from mage_core.evaluate import RandomPolicy, evaluate

    task = _task(suite, "hopper")
    bufs = suite.collect_buffers(task, _cfg(steps=300, seed=0, variant="random"))
    assert bufs[0].terminations[-1] and len(bufs[0].actions) < task.eval_steps
    res = evaluate(task, RandomPolicy(act_dim=3, seed=0), episodes=2, seeds=(0,))
    assert res.n == 2 and max(res.returns) < 200  # fell early
    assert not suite.reports_success(task)


def _minari_dataset(dataset_id: str, env_id: str, steps: int = 300, **meta) -> str:
    """A dataset shaped like Minari's own mujoco datasets (the env spec of gym.make(env_id), eval env, ref scores in
    the metadata), of random actions. minari's DataCollector makes the same metadata but needs jax
    (`minari[create]`), which this project does not install; create_dataset_from_buffers is what it calls."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    bufs, done = [], 0
    while done < steps:
        obs, _ = env.reset(seed=len(bufs))
        o, a, r, te, tr = [obs], [], [], [], []
        while True:
            act = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, rew, term, trunc, _ = env.step(act)
            done += 1
            trunc = bool(trunc or done >= steps) and not term
            o.append(obs), a.append(act), r.append(float(rew)), te.append(bool(term)), tr.append(trunc)
            if term or trunc:
                break
        bufs.append(EpisodeBuffer(id=len(bufs), observations=np.asarray(o), actions=np.asarray(a), rewards=r,
                                  terminations=te, truncations=tr))
    minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=bufs, env=env.spec, eval_env=env_id,
                                       algorithm_name="SAC", author="tests", author_email="n/a",
                                       code_permalink="tests/core/test_locomotion.py", description="random actions",
                                       data_format="hdf5", **meta)
    env.close()
    return dataset_id


@pytest.fixture(scope="module")
def minari_hopper(suite):
    return _minari_dataset("mujoco/hopper/medium-v0", "Hopper-v5", ref_min_score=-5.0, ref_max_score=1995.0)


def test_a_minari_mujoco_dataset_is_claimed_and_normalised_with_its_own_scores(suite, minari_hopper):
    from mage_core.data.store import dataset_info, dataset_task, reference_scores
    from mage_core.evaluate import EvalResult

    task = dataset_task(minari_hopper)
    assert task.suite is suite and task.name == "hopper" and task.eval_steps == 1000 and task.rtg_mode == "dense"
    assert reference_scores(minari_hopper, task) == [-5.0, 1995.0]
    info = dataset_info(minari_hopper)
    assert info["task"] == "hopper" and info["ref_scores_from"] == "dataset"
    res = EvalResult(task.name, [995.0, 1995.0], [0, 0], [False, False], *reference_scores(minari_hopper, task), 1000)
    assert res.normalised_mean == pytest.approx(75.0)
    # the same env's data without scores of its own is normalised with D4RL's published ones
    bare = _minari_dataset("tests/hopper/bare-v0", "Hopper-v5", steps=60)
    assert reference_scores(bare, dataset_task(bare)) == list(D4RL_REFERENCE_SCORES["hopper"])


def test_the_micro_preset_trains_on_a_minari_dataset(suite, minari_hopper, tmp_path):
    from _helpers_model import train_micro

    from mage_core.checkpoint import load_checkpoint

    path = train_micro(minari_hopper, tmp_path / "hopper.pt", steps=4)
    ckpt = load_checkpoint(path)
    assert ckpt["task"] == "hopper" and ckpt["dataset"]["id"] == minari_hopper
    assert ckpt["dataset"]["success_rate"] is None  # its falls are recorded as no success rate, not as arrivals


def test_other_env_versions_and_observation_sizes(suite):
    def meta(env_id, obs_dim, kwargs=None):
        spec = json.dumps({"id": env_id, "kwargs": kwargs or {}, "max_episode_steps": 1000})
        space = json.dumps({"type": "Box", "dtype": "float64", "shape": [obs_dim]})
        return {"dataset_id": f"mujoco/x/{env_id}-v0", "env_spec": spec, "observation_space": space}

    t = task_for_dataset(meta("Hopper-v4", 11))
    assert t.suite is suite and t.env_id == "Hopper-v4" and t.eval_steps == 1000 and t.rtg_mode == "dense"
    assert suite.builtin_reference_scores(t) == D4RL_REFERENCE_SCORES["hopper"]
    t = task_for_dataset(meta("Walker2d-v5", 18, {"exclude_current_positions_from_observation": False}))
    assert t.suite is suite and t.env_kwargs == {"exclude_current_positions_from_observation": False}
    with pytest.raises(MageError, match=r"12-dim observations, but Hopper-v5 observations have 11"):
        task_for_dataset(meta("Hopper-v5", 12))
    with pytest.raises(MageError, match=r"HalfCheetah-v2.*HalfCheetah-v5"):
        task_for_dataset(meta("HalfCheetah-v2", 17))
    with pytest.raises(MageError, match="observations have 11"):
        suite.check_obs(_task(suite, "hopper"), np.zeros(17))


def test_an_unknown_variant_lists_the_variants(suite):
    from mage_core.data.generate import resolve_variant

    task = _task(suite, "walker2d")
    for call in (lambda: resolve_variant(task, "replay"),
                 lambda: suite.collect_buffers(task, _cfg(steps=10, variant="replay"))):
        with pytest.raises(MageError, match="medium, medium-replay, medium-expert, expert, random, full-replay"):
            call()


def test_missing_or_damaged_policy_files_are_named(suite, assets, tmp_path):
    task = _task(suite, "hopper")
    empty = LocomotionSuite(assets=tmp_path)
    for variant, name in (("medium", "hopper-medium.npz"), ("medium-expert", "hopper-medium.npz"),
                          ("expert", "hopper-expert.npz"), ("medium-replay", "hopper-medium-replay.npz")):
        with pytest.raises(MageError, match=rf"missing .*{name}.*locomotion\.behaviour hopper"):
            empty.collect_buffers(task, _cfg(steps=10, variant=variant))
    with pytest.raises(MageError, match="hopper-expert.npz"):
        empty.expert_policy(task)
    empty.collect_buffers(task, _cfg(steps=10, variant="random"))  # needs no file
    (tmp_path / "hopper-medium.npz").write_bytes(b"not a zip file")
    with pytest.raises(MageError, match=r"damaged .*hopper-medium.npz"):
        empty.actor(task, "medium")
    arrays = tiny_actor(OBS_DIM["halfcheetah"], ACT_DIM["halfcheetah"], 0)  # another env's sizes
    save_actor(tmp_path / "hopper-expert.npz", arrays, {})
    with pytest.raises(MageError, match=r"damaged .*hopper-expert.npz.*layer 0"):
        empty.actor(task, "expert")
    arrays = tiny_actor(OBS_DIM["hopper"], ACT_DIM["hopper"], 0)
    arrays["w_mu"][0, 0] = np.nan
    save_actor(tmp_path / "hopper-expert.npz", arrays, {})
    with pytest.raises(MageError, match="NaN"):
        load_actor(tmp_path / "hopper-expert.npz", "hopper", 11, 3)
    log = dict(np.load(policy_path(assets, "hopper", "medium-replay")))
    del log["timeouts"]
    np.savez(tmp_path / "hopper-medium-replay.npz", **log)
    with pytest.raises(MageError, match=r"damaged .*hopper-medium-replay.npz: missing timeouts"):
        empty.replay(task)


def test_a_ghost_set_from_a_plan_puts_the_torso_where_the_plan_does(suite):
    """Hopper's observation is qpos[1:] then qvel: a ghost takes them as they are, its x integrated from the planned
    x velocity, and the torso read back from the posed ghost is the plan's torso key point."""
    import mujoco

    from mage_core.render import TaskScene, plan_overlay

    task = _task(suite, "hopper")
    rng = np.random.default_rng(0)
    H, vx = 16, 2.0
    states_KHD = rng.normal(0, 0.05, size=(2, H, 11))
    states_KHD[..., 0] = 1.25 + np.linspace(0.0, 0.2, H)  # rootz rises along the plan
    states_KHD[..., 5] = vx  # planned x velocity (qvel[0])
    scene = TaskScene(task)
    try:
        m = scene.model
        dt = scene.env.unwrapped.dt
        ov = plan_overlay(states_KHD, (1, H), task=task, model=m, ghosts_per_scale=4)
        steps = np.unique(np.linspace(0, H - 1, 4).round().astype(int))
        d = mujoco.MjData(m)
        torso = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "torso")
        for k in range(2):
            assert len(ov.ghosts[k]) == len(steps)
            for q, i in zip(ov.ghosts[k], steps):
                np.testing.assert_allclose(q[1:], states_KHD[k, i, :5], atol=1e-12)  # qpos[1:] = obs[:5]
                assert q[0] == pytest.approx(vx * dt * i)  # x integrated from the planned velocity
                d.qpos[:] = q
                mujoco.mj_kinematics(m, d)
                np.testing.assert_allclose(d.xpos[torso], ov.paths_xyz[k]["torso"][i], atol=1e-12)
                assert d.xpos[torso][2] == pytest.approx(states_KHD[k, i, 0])  # the torso's height is rootz
        # the side camera follows the torso of the posed scene
        assert scene.set_obs(states_KHD[0, 0])
        scene.data.qpos[0] = 3.0
        mujoco.mj_kinematics(m, scene.data)
        cam = suite.camera(task, m, 4 / 3, scene.data)
        assert cam.azimuth == 90.0 and -30 < cam.elevation < 0 and 3.0 < cam.lookat[0] < 4.0
    finally:
        scene.close()


def test_a_dataset_state_can_be_run_from(suite):
    task = _task(suite, "walker2d")
    env = task.make_env(mode="eval")
    try:
        env.reset(seed=0)
        obs = env.reset(seed=1)[0]
        for _ in range(5):
            obs = env.step(env.action_space.sample())[0]
        env.reset(seed=2)
        np.testing.assert_allclose(suite.reset_env_to_obs(task, env, obs), obs, atol=1e-12)
    finally:
        env.close()


def test_export_picks_the_expert_the_medium_snapshot_and_the_replay_up_to_it(tmp_path):
    from mage_core.suites.locomotion.assets import export
    from mage_core.suites.locomotion.actor import sha256

    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    for steps, ret in ((20, 100.0), (40, 900.0), (60, 1400.0), (80, 3000.0)):  # a third of 3000: the 900 one
        save_actor(run / "snapshots" / f"hopper-{steps:07d}.npz", tiny_actor(11, 3, steps),
                   {"env_id": "Hopper-v5", "steps": steps, "eval_returns": [ret]})
    np.savez(run / "replay.npz", **tiny_replay("Hopper-v5"))
    written = export("hopper", run, tmp_path / "out")
    assert written["hopper-expert.npz"]["steps"] == 80 and written["hopper-medium.npz"]["steps"] == 40
    assert written["hopper-medium-replay.npz"]["steps"] == 40
    assert written["hopper-replay-tail.npz"]["steps"] == 80 - 40  # the rest of the log up to the expert snapshot
    suite = LocomotionSuite(assets=tmp_path / "out")
    task = _task(suite, "hopper")
    assert len(suite.replay(task)["rewards"]) == 40
    np.testing.assert_array_equal(suite.actor(task, "medium").w[0], tiny_actor(11, 3, 40)["w0"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["hopper-medium.npz"]["sha256"] == sha256(tmp_path / "out" / "hopper-medium.npz")
    assert export("hopper", run, tmp_path / "out", medium_steps=60)["hopper-medium.npz"]["steps"] == 60
    # a late collapse of a good policy to a third of the expert's return is not the medium policy
    save_actor(run / "snapshots" / "hopper-0000100.npz", tiny_actor(11, 3, 100),
               {"env_id": "Hopper-v5", "steps": 100, "eval_returns": [1000.0]})
    save_actor(run / "snapshots" / "hopper-0000120.npz", tiny_actor(11, 3, 120),
               {"env_id": "Hopper-v5", "steps": 120, "eval_returns": [3000.0]})
    assert export("hopper", run, tmp_path / "out")["hopper-medium.npz"]["steps"] == 40
    with pytest.raises(MageError, match="no snapshot at 50 steps"):
        export("hopper", run, tmp_path / "out", medium_steps=50)


def test_a_long_replay_log_ships_in_parts_that_the_suite_joins(tmp_path, monkeypatch):
    """A log over PART_BYTES is written as `-2`, `-3`, ... parts, each under the limit; the suite reads the parts
    back in order as one log, a re-export with fewer parts leaves no stale part, and a damaged part is named."""
    from mage_core.suites.locomotion import assets as A

    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    for steps, ret in ((40, 900.0), (90, 3000.0)):
        save_actor(run / "snapshots" / f"hopper-{steps:07d}.npz", tiny_actor(11, 3, steps),
                   {"env_id": "Hopper-v5", "steps": steps, "eval_returns": [ret]})
    log = tiny_replay("Hopper-v5")
    np.savez(run / "replay.npz", **log)
    row_bytes = sum(np.asarray(log[k][:1], np.float32).nbytes for k in A.REPLAY_KEYS)
    monkeypatch.setattr(A, "PART_BYTES", 15 * row_bytes)  # 15 transitions per file
    out = tmp_path / "out"
    written = A.export("hopper", run, out)
    head = [p.name for p in A.replay_part_paths(out, "hopper", "medium-replay")]
    tail = [p.name for p in A.replay_part_paths(out, "hopper", "replay-tail")]
    assert head == ["hopper-medium-replay.npz", "hopper-medium-replay-2.npz", "hopper-medium-replay-3.npz"]  # 40
    assert len(tail) == 4 and [written[n]["steps"] for n in tail] == [15, 15, 15, 5]  # 50 = 90 - 40
    suite = LocomotionSuite(assets=out)
    task = _task(suite, "hopper")
    full = suite.replay(task, full=True)
    np.testing.assert_array_equal(full["actions"], log["actions"][:90].astype(np.float32))
    assert suite.default_data_steps(task, "medium-replay") == 40 and "full-replay" in suite.variants(task)
    assert "hopper-replay-tail-4.npz" in suite.data_description(task, _cfg(variant="full-replay", steps=90))[1]
    monkeypatch.setattr(A, "PART_BYTES", 10 ** 9)
    A.export("hopper", run, out)
    assert [p.name for p in A.replay_part_paths(out, "hopper", "replay-tail")] == ["hopper-replay-tail.npz"]
    assert not (out / "hopper-replay-tail-2.npz").exists()
    monkeypatch.setattr(A, "PART_BYTES", 15 * row_bytes)
    A.export("hopper", run, out)
    (out / "hopper-medium-replay-2.npz").write_bytes(b"not a zip")
    with pytest.raises(MageError, match="hopper-medium-replay-2.npz"):
        LocomotionSuite(assets=out).replay(_task(suite, "hopper"))
    # the command line: a run with no snapshots is one line naming the command that makes them
    from mage_core.suites.locomotion.export import main as export_main

    # exported without the tail: its parts and manifest entries go, and the task offers no full-replay
    export_main(["hopper", "--run-dir", str(run), "--out-dir", str(out), "--no-replay-tail"])
    assert A.replay_part_paths(out, "hopper", "medium-replay")[-1].name == "hopper-medium-replay-3.npz"
    assert not list(out.glob("hopper-replay-tail*")) and not any("tail" in n for n in json.loads(
        (out / A.MANIFEST).read_text()))
    bare = LocomotionSuite(assets=out)
    assert "full-replay" not in bare.variants(_task(bare, "hopper"))
    from mage_core.data.generate import resolve_variant
    from mage_core.tasks import get_task

    monkeypatch.setitem(SUITES, bare.name, bare)  # what `mage data make hopper --variant full-replay` then says
    with pytest.raises(MageError, match="no 'full-replay' data; its variants: medium, medium-replay"):
        resolve_variant(get_task("hopper"), "full-replay")

    with pytest.raises(SystemExit, match="0 actor snapshots of walker2d.*locomotion.behaviour walker2d"):
        export_main(["walker2d", "--run-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path / "x")])


SHIPPED = json.loads((ASSETS / "manifest.json").read_text()) if (ASSETS / "manifest.json").is_file() else {}
SHIPPED_ENVS = sorted({name.split("-")[0] for name in SHIPPED})


@pytest.mark.parametrize("key", SHIPPED_ENVS)
def test_the_shipped_policies_match_their_manifest_and_make_every_variant(key, tmp_path):
    """Each shipped file has its manifest's sha256; the shipped actors make small datasets of every variant, and over
    the same seeded starts the expert walks further per step than the medium policy, and the medium policy further
    than uniform random actions (D4RL's quality order)."""
    from mage_core.suites.locomotion.actor import sha256

    for name, entry in SHIPPED.items():
        if name.startswith(f"{key}-"):
            assert sha256(ASSETS / name) == entry["sha256"], f"{name} differs from its manifest"
    suite = LocomotionSuite(assets=ASSETS)
    task = _task(suite, key)
    per_step = {}
    assert set(VARIANTS) - set(suite.variants(task)) <= {"full-replay"}
    for variant in suite.variants(task):
        bufs = suite.collect_buffers(task, _cfg(steps=300, seed=3, variant=variant))
        assert sum(len(b.actions) for b in bufs) == 300
        obs = np.concatenate([b.observations for b in bufs])
        assert obs.shape[1] == OBS_DIM[key] and np.all(np.isfinite(obs))
        per_step[variant] = np.concatenate([np.asarray(b.rewards) for b in bufs]).mean()
    assert per_step["expert"] > per_step["medium"] > per_step["random"], per_step
    assert len(suite.replay(task, full="full-replay" in suite.variants(task))["rewards"]) == sum(
        e["steps"] for n, e in SHIPPED.items() if n.startswith(f"{key}-") and "replay" in n)


def test_no_success_rate_is_reported(suite):
    """A hopper that falls is no success: data info and evaluation report 'n/a', not a rate."""
    from mage_core.data.generate import make_dataset
    from mage_core.data.store import dataset_info
    from mage_core.evaluate import RandomPolicy, evaluate

    task = _task(suite, "hopper")
    ds = make_dataset(task, _cfg(steps=300, seed=0, variant="random", ref_episodes=1), force=True)
    assert dataset_info(ds.id)["success_rate"] is None
    res = evaluate(task, RandomPolicy(act_dim=3, seed=0), episodes=2, seeds=(0,))
    assert res.success_rate is None and "success n/a" in res.summary()


def test_behaviour_training_resumes_and_logs_each_checkpoint_once(tmp_path):
    """SAC behaviour training (the optional controller extra) checkpoints every N steps, resumes from its last save
    and, ending on a checkpoint step or run again when finished, writes no second record of the same step."""
    pytest.importorskip("stable_baselines3", reason="the controller extra is not installed (pip install -e '.[controller]')")
    from mage_core.suites.locomotion.behaviour import BehaviourTrainConfig, train

    cfg = dict(env="hopper", out_dir=str(tmp_path), checkpoint_every=100, learning_starts=1000, eval_episodes=1)
    train(BehaviourTrainConfig(steps=200, **cfg))
    train(BehaviourTrainConfig(steps=300, **cfg))  # resumed
    train(BehaviourTrainConfig(steps=300, **cfg))  # finished: nothing to do
    steps = [json.loads(line)["steps"] for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert steps == [100, 200, 300]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        f"hopper-{s:07d}.npz" for s in (100, 200, 300)]
    with np.load(tmp_path / "replay.npz") as z:  # every step once, in order, across the resume
        assert len(z["rewards"]) == 300
        going = z["terminals"][:-1] == 0
        np.testing.assert_allclose(z["next_observations"][:-1][going], z["observations"][1:][going], atol=1e-5)
