"""Tests for the BC, Decision Transformer and Diffuser baselines: shapes, learning, acting interface, checkpoints."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mage_core.suites.pointmaze import geometry
from mage_core.baselines import CORE_ALGOS as ALGOS  # IQL (the optional d3rlpy extra): tests/core/test_iql.py
from mage_core.baselines import algo_module, bc, common, diffuser, dt, load_policy, train_baseline
from mage_core.data.segments import Episode
from mage_core.device import resolve_device
from mage_core.errors import MageError
from mage_core.maze import WaypointExpert
from mage_core.rtg import RTGTracker
from mage_core.tasks import get_task

TASK = "pointmaze-umaze"
OBS_DIM, ACT_DIM = 6, 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def task():
    return get_task(TASK)


@pytest.fixture(scope="module")
def episodes(task):
    """About 1500 steps of the noisy waypoint expert in the data env, cut at success as the data protocol does."""
    env = task.make_env(mode="data")
    rng = np.random.default_rng(0)
    expert = WaypointExpert(geometry(task), waypoint_jitter=0.2, action_noise=0.5, rng=rng)
    eps = []
    obs, _ = env.reset(seed=0)
    O, A, R = [task.flatten_obs(obs)], [], []
    for _ in range(1500):
        o = obs["observation"]
        a = expert(o[:2], o[2:4], obs["desired_goal"])
        obs, r, term, trunc, _ = env.step(a)
        O.append(task.flatten_obs(obs)), A.append(a), R.append(r)
        if term or trunc:
            eps.append(Episode(np.array(O, np.float32), np.array(A, np.float32), np.array(R, np.float32), bool(term)))
            obs, _ = env.reset()
            O, A, R = [task.flatten_obs(obs)], [], []
    env.close()
    assert len(eps) >= 5
    return eps


FIXTURE_STEPS = {"bc": 100, "dt": 100, "diffuser": 80}  # enough for the loss to fall clearly, small enough for CI


def _tiny(algo: str, **kw):
    return replace(algo_module(algo).preset("tiny"), **{"steps": FIXTURE_STEPS[algo], "log_every": 10, **kw})


@pytest.fixture(scope="module")
def checkpoints(episodes, task, tmp_path_factory):
    """One tiny trained checkpoint per algo (dicts), with the events each run emitted."""
    out = {}
    for algo in ALGOS:
        events = []
        ckpt = algo_module(algo).train(episodes, task, _tiny(algo), events=events.append, seed=0,
                                       out=tmp_path_factory.mktemp(algo) / "ckpt.pt")
        out[algo] = (ckpt, events)
    return out


# ---- shapes -------------------------------------------------------------------------------------------------------
def test_model_shapes():
    B, K = 3, 8
    m = bc.BCModel(OBS_DIM, ACT_DIM, bc.preset("tiny"))
    assert m.predict(torch.randn(B, OBS_DIM)).shape == (B, ACT_DIM)
    d = dt.DecisionTransformer(OBS_DIM, ACT_DIM, dt.preset("tiny"))
    out_BKA = d.predict(torch.randn(B, K), torch.randn(B, K, OBS_DIM), torch.randn(B, K, ACT_DIM), torch.arange(K).repeat(B, 1))
    assert out_BKA.shape == (B, K, ACT_DIM)
    cfg = replace(diffuser.preset("small"), horizon=diffuser.task_horizon(get_task(TASK), diffuser.preset("small")))
    assert cfg.horizon == 128
    assert diffuser.task_horizon(get_task("pointmaze-large"), cfg) == 384
    g = diffuser.GaussianDiffusion(OBS_DIM, ACT_DIM, replace(cfg, n_diffusion_steps=4))
    x_BHX = torch.randn(B, cfg.horizon, OBS_DIM + ACT_DIM)
    assert g.model(x_BHX, torch.tensor([0, 1, 3])).shape == x_BHX.shape


def test_dt_is_causal():
    """Changing a later step must not change the action predicted for an earlier one."""
    torch.manual_seed(0)
    d = dt.DecisionTransformer(OBS_DIM, ACT_DIM, dt.preset("tiny")).eval()
    K = 6
    R, s, a, t = torch.randn(1, K), torch.randn(1, K, OBS_DIM), torch.randn(1, K, ACT_DIM), torch.arange(K)[None]
    s2 = s.clone()
    s2[0, 4] += 1.0
    out1, out2 = d.predict(R, s, a, t), d.predict(R, s2, a, t)
    assert torch.allclose(out1[0, :4], out2[0, :4], atol=1e-6)
    assert not torch.allclose(out1[0, 4], out2[0, 4])
    a2 = a.clone()
    a2[0, 2] += 1.0  # a_t comes after s_t: it must not influence the prediction at step t
    assert torch.allclose(d.predict(R, s, a2, t)[0, :3], out1[0, :3], atol=1e-6)


def test_diffuser_inpainting_holds_conditions():
    torch.manual_seed(0)
    cfg = replace(diffuser.preset("tiny"), n_diffusion_steps=3)
    kw = diffuser.diffusion_kwargs(get_task(TASK))  # the suite says where xy and the goal sit
    assert kw == {"goal_inpainting": True, "pos_slice": slice(0, 2), "goal_slice": slice(4, 6)}
    g = diffuser.GaussianDiffusion(OBS_DIM, ACT_DIM, cfg, **kw).eval()
    m_HX = diffuser.condition_mask(OBS_DIM, ACT_DIM, cfg.horizon, True, kw["pos_slice"], kw["goal_slice"])
    assert torch.equal(m_HX, g.cond_mask_HX)
    assert m_HX[0, ACT_DIM:].all() and m_HX[-1, ACT_DIM:ACT_DIM + 2].all() and m_HX[:, -2:].all()
    assert not m_HX[1:-1, ACT_DIM:ACT_DIM + 4].any() and not m_HX[:, :ACT_DIM].any()
    val_BHX = torch.randn(2, cfg.horizon, OBS_DIM + ACT_DIM)
    x_BHX = g.sample(m_HX.expand_as(val_BHX), val_BHX, torch.Generator().manual_seed(0))
    assert torch.equal(x_BHX[m_HX.expand_as(val_BHX) > 0], val_BHX[m_HX.expand_as(val_BHX) > 0])


def test_diffuser_inpainting_needs_the_suites_slices():
    with pytest.raises(MageError, match="suite"):
        diffuser.GaussianDiffusion(OBS_DIM, ACT_DIM, diffuser.preset("tiny"), goal_inpainting=True)


def test_diffuser_horizon_must_fit_unet():
    with pytest.raises(MageError, match="multiple"):
        diffuser.GaussianDiffusion(OBS_DIM, ACT_DIM, replace(diffuser.preset("small"), horizon=30))


def test_segment_timesteps_follow_episodes(episodes, task):
    ds = common.make_segments(episodes[:3], task, horizon=4)
    t_N = common.episode_timesteps(ds)
    rows_BH = common.segment_rows(ds, np.arange(len(ds)))
    # a segment's timesteps count up by one from its start, and each episode's first segment starts at 0
    assert np.all(np.diff(t_N[rows_BH], axis=1) == 1)
    assert t_N[rows_BH[0, 0]] == 0 and t_N[rows_BH[episodes[0].length, 0]] == 0


# ---- learning -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_training_loss_falls(checkpoints, algo):
    ckpt, events = checkpoints[algo]
    losses = [e["losses"]["loss"] for e in events if e["event"] == "step"]
    assert len(losses) >= 6 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:2]), losses
    assert [e["event"] for e in events][0] == "start" and events[0]["params"] == common.n_params(
        algo_module(algo).load_model(ckpt)[0])
    assert ckpt["algo"] == algo and ckpt["train_state"]["step"] == _tiny(algo).steps


# ---- acting -------------------------------------------------------------------------------------------------------
def _obs(task, n, seed=0):
    rng = np.random.default_rng(seed)
    env = task.make_env(mode="eval")
    o, _ = env.reset(seed=seed)
    env.close()
    base = task.flatten_obs(o)
    return (base + rng.normal(0, 0.05, size=(n, len(base))) * np.r_[1, 1, 1, 1, 0, 0]).astype(np.float32)


@pytest.mark.parametrize("algo", ALGOS)
def test_acting_interface(checkpoints, task, algo):
    ckpt, _ = checkpoints[algo]
    pol = load_policy(ckpt)
    for n in (1, 3):
        pol.reset(n)
        obs = _obs(task, n)
        for _ in range(5):
            a_NA = pol.act(obs, np.zeros(n))
            assert a_NA.shape == (n, ACT_DIM) and a_NA.dtype == np.float32
            assert np.all(np.isfinite(a_NA)) and np.all(np.abs(a_NA) <= 1.0)
    pol.reset(2)
    with pytest.raises(MageError):
        pol.act(np.zeros((2, OBS_DIM + 1), np.float32), np.zeros(2))


@pytest.mark.parametrize("algo", ALGOS)
def test_acting_is_deterministic_under_seed(checkpoints, task, algo):
    ckpt, _ = checkpoints[algo]
    obs = _obs(task, 2)

    def run():
        pol = load_policy(ckpt, seed=3) if algo == "diffuser" else load_policy(ckpt)
        pol.reset(2)
        return np.stack([pol.act(obs, np.zeros(2)) for _ in range(6)])

    np.testing.assert_array_equal(run(), run())


def test_batch_rows_act_independently(checkpoints, task):
    """DT acting on N envs at once gives each env the action it would get alone."""
    ckpt, _ = checkpoints["dt"]
    obs = _obs(task, 3)
    pol = load_policy(ckpt, rtg_target=150.0)
    pol.reset(3)
    batched = [pol.act(obs, np.array([0.0, 1.0, 0.0])) for _ in range(4)]
    for i in range(3):
        single = load_policy(ckpt, rtg_target=150.0)
        single.reset(1)
        alone = [single.act(obs[i:i + 1], np.array([[0.0, 1.0, 0.0][i]])) for _ in range(4)]
        np.testing.assert_allclose(np.stack(batched)[:, i], np.concatenate(alone), atol=1e-5)


def test_rtg_tracker_window_and_dense():
    tr = RTGTracker(target=100.0, mode="window", window=300)
    tr.reset(2)
    assert np.allclose(tr.step(np.zeros(2)), [100, 100])  # t=0: G
    assert np.allclose(tr.step(np.array([0.0, 1.0])), [101, 100])  # t=1: G - r + t
    assert np.allclose(tr.step(np.array([0.0, 1.0])), [102, 100])  # reward every step keeps the condition still
    hi = RTGTracker(target=299.0, mode="window", window=300)
    hi.reset(1)
    hi.step(np.zeros(1))
    assert hi.step(np.zeros(1))[0] == 300 and hi.step(np.zeros(1))[0] == 300  # clamped at W
    dense = RTGTracker(target=10.0, mode="dense")
    dense.reset(1)
    assert dense.step(np.zeros(1))[0] == 10 and dense.step(np.array([2.5]))[0] == 7.5


def test_dt_rtg_bookkeeping_and_context(checkpoints, task):
    ckpt, _ = checkpoints["dt"]
    K = ckpt["config"]["dt"]["context"]
    pol = load_policy(ckpt, rtg_target=120.0)
    pol.reset(2)
    obs = _obs(task, 2)
    conds = []
    for t in range(K + 3):
        pol.act(obs, np.array([0.0, 1.0 if t > 0 else 0.0]))
        conds.append(pol.last_condition_N.copy())
        assert pol.s_NLD.shape[1] == min(t + 1, K)  # rolling context never exceeds K steps
    conds = np.array(conds)
    assert np.allclose(conds[:, 0], 120 + np.arange(K + 3))  # no reward: the window-equivalent target rises with t
    assert np.allclose(conds[:, 1], 120)  # reward 1 per step: condition stays put
    assert pol.t_NL[0, -1] == K + 2 and np.all(np.diff(pol.t_NL[0]) == 1)
    default = load_policy(ckpt)  # no reference scores in a list-of-episodes run: the median start RTG
    assert default.rtg.target == ckpt["dataset"]["rtg_start_median"]
    with_ref = load_policy({**ckpt, "dataset": {**ckpt["dataset"], "ref_scores": [0.0, 181.5]}})
    assert with_ref.rtg.target == 181.5


def test_diffuser_replans_every_n(checkpoints, task):
    ckpt, _ = checkpoints["diffuser"]
    pol = load_policy(ckpt, replan_every=3)
    calls = []
    plan = pol.plan
    pol.plan = lambda obs: calls.append(1) or plan(obs)
    pol.reset(1)
    for _ in range(7):
        pol.act(_obs(task, 1), np.zeros(1))
    assert len(calls) == 3  # steps 0, 3, 6
    once = load_policy(ckpt, replan_every=0)
    n_plans = []
    plan_once = once.plan
    once.plan = lambda obs: n_plans.append(1) or plan_once(obs)
    for _ in range(2):  # two episodes: one plan each
        once.reset(1)
        for _ in range(ckpt["config"]["diffuser"]["horizon"] + 3):  # past the plan's end: keep steering to its goal
            assert np.all(np.isfinite(once.act(_obs(task, 1), np.zeros(1))))
    assert len(n_plans) == 2
    states_NHD, actions_NHA = plan(_obs(task, 1))
    goal = _obs(task, 1)[0, 4:6]
    np.testing.assert_allclose(states_NHD[0, -1, :2], goal, atol=1e-4)  # the goal is inpainted as the final position
    np.testing.assert_allclose(states_NHD[0, 0], _obs(task, 1)[0], atol=1e-4)  # the start state is inpainted
    assert actions_NHA.shape == (1, ckpt["config"]["diffuser"]["horizon"], ACT_DIM)


# ---- checkpoints ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_checkpoint_round_trip_and_resume(episodes, task, tmp_path, algo):
    out = tmp_path / f"{algo}.pt"
    events = []
    path = train_baseline(algo, dataset=episodes, task=TASK, preset="tiny", out=out, events=events.append, steps=4,
                          progress=False)
    assert path == out and out.is_file() and events[-1]["event"] == "done"
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["format"] == common.CKPT_FORMAT and ckpt["algo"] == algo and ckpt["task"] == TASK
    assert ckpt["spaces"] == {"obs_dim": OBS_DIM, "act_dim": ACT_DIM, "obs_keys": list(task.obs_keys)}
    obs = _obs(task, 2)
    acts = []
    for src in (ckpt, out):
        pol = load_policy(src, rtg_target=150.0)
        pol.reset(2)
        acts.append(pol.act(obs, np.zeros(2)))
    np.testing.assert_array_equal(*acts)
    train_baseline(algo, dataset=episodes, task=TASK, out=out, resume=out, steps=6, progress=False)
    resumed = torch.load(out, weights_only=True)
    assert resumed["train_state"]["step"] == 6 and resumed["config"] == {algo: {**ckpt["config"][algo], "steps": 6}}


def test_bad_inputs_raise_mage_error(episodes, tmp_path):
    with pytest.raises(MageError, match="unknown baseline"):
        train_baseline("ppo", dataset=episodes, task=TASK)
    with pytest.raises(MageError, match="preset"):
        train_baseline("bc", dataset=episodes, task=TASK, preset="huge")
    with pytest.raises(MageError, match="task"):
        train_baseline("bc", dataset=episodes)
    with pytest.raises(MageError):
        load_policy(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"hello": 1}, bad)
    with pytest.raises(MageError, match="checkpoint"):
        load_policy(bad)
    with pytest.raises(MageError, match="device"):
        resolve_device("tpu9")
