"""Planner tests: per-scale plans are decodes of the cumulative latent, the action is I(sum z), seeding, RTG handling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mage_core.suites.pointmaze import geometry
from mage_core.errors import MageError
from mage_core.evaluate import evaluate
from mage_core.planner import Planner, PlannerPolicy
from mage_core.rtg import RTGTracker


@pytest.fixture(scope="module")
def ckpt_path(micro_checkpoint):
    return micro_checkpoint


@pytest.fixture(scope="module")
def planner(ckpt_path):
    return Planner.from_checkpoint(ckpt_path)


def _obs(task):
    g = geometry(task)
    s, goal = g.cell_to_xy(task.params["eval_start_cell"]), g.cell_to_xy(task.params["eval_goal_cell"])
    return np.array([s[0], s[1], 0.0, 0.0, goal[0], goal[1]], np.float32)


def test_plan_shapes_and_scale_k_is_the_decode_of_the_cumulative_latent(planner):
    _check_plan_is_decode_of_cumulative_latent(planner, _obs(planner.task))


def test_long_horizon_schedule_plans_are_still_decodes_of_the_cumulative_latent(planner):
    """A horizon twice as long with twice the downsampling keeps T (and the token count) and the same guarantees."""
    from mage_core.model.mage import MAGE

    from _helpers_model import micro_config

    cfg = micro_config(horizon=64, downsample=8)
    assert cfg.model.horizon // cfg.model.downsample == 8
    torch.manual_seed(0)
    long = Planner(MAGE(cfg.model), planner.normaliser, planner.task)
    assert long.horizon == 64 and long.scales[-1] == 8
    _check_plan_is_decode_of_cumulative_latent(long, _obs(planner.task))


def _check_plan_is_decode_of_cumulative_latent(planner, obs):
    plan = planner.plan(obs, 200.0, seed=3)
    K, H = len(planner.scales), planner.horizon
    assert plan.states_KHD.shape == (K, H, 6) and plan.rtg_KH.shape == (K, H)
    assert [len(t) for t in plan.tokens] == list(planner.scales) and planner.scales[0] == 1
    # recompute by hand: sum the codebook maps of the first k scales, decode, denormalise
    m, n = planner.model, planner.normaliser
    cond = torch.as_tensor(n.norm_x(np.concatenate([[plan.condition_rtg], obs])[None]), dtype=torch.float32)
    q = m.mtae.quantiser
    fhat = None
    for k, tok in enumerate(plan.tokens):
        z = q.embed_idx(k, torch.as_tensor(tok)[None].long())
        fhat = z if fhat is None else fhat + z
        x = n.denorm_x(m.decode(fhat, cond)).numpy()[0]
        np.testing.assert_allclose(plan.states_KHD[k], x[:, 1:], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(plan.rtg_KH[k], x[:, 0], rtol=1e-4, atol=1e-3)
    # the executed action is the inverse dynamics of the full latent sum
    a = n.denorm_a(m.inverse_dynamics(fhat, cond).numpy())[0]
    np.testing.assert_allclose(plan.action_A, np.clip(a, -1, 1), rtol=1e-5, atol=1e-5)


def test_planning_is_deterministic_under_a_seed(planner):
    obs = _obs(planner.task)
    a, b = planner.plan(obs, 250.0, seed=7), planner.plan(obs, 250.0, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens))
    np.testing.assert_array_equal(a.action_A, b.action_A)
    c = [planner.plan(obs, 250.0, seed=s) for s in range(8)]
    assert len({tuple(np.concatenate(p.tokens)) for p in c}) > 1  # different seeds sample different plans


def test_bad_observations_and_rtg_targets(planner):
    obs = _obs(planner.task)
    with pytest.raises(MageError, match="NaN"):
        planner.plan(np.full(6, np.nan, np.float32), 100.0)
    with pytest.raises(MageError, match="expects 6"):
        planner.plan(np.zeros(4, np.float32), 100.0)
    with pytest.raises(MageError, match="finite"):
        planner.plan(obs, float("inf"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an out-of-range target is reported on the Plan, never as a Python warning
        p = planner.plan(obs, 1e6, seed=0)
    assert p.condition_rtg == pytest.approx(min(planner.rtg_range[1], p.rtg_ceiling))
    assert p.clamped and p.requested_rtg == 1e6
    assert not planner.plan(obs, p.condition_rtg, seed=0).clamped


def test_policy_rtg_bookkeeping_and_replanning(planner):
    pol = PlannerPolicy(planner, rtg_target=200.0, seed=0)
    pol.reset(2)
    obs = np.stack([_obs(planner.task)] * 2)
    np.testing.assert_allclose(pol.condition(), [200.0, 200.0])
    pol.act(obs, np.zeros(2))
    pol.act(obs, np.array([0.0, 1.0]))  # env 1 got a reward: its window-equivalent target stays, env 0's rises
    np.testing.assert_allclose(pol.condition(), [202.0, 201.0])
    sparse = PlannerPolicy(planner, rtg_target=200.0, replan_every=4, seed=0)
    sparse.reset(1)
    acts = [sparse.act(obs[:1], np.zeros(1)) for _ in range(5)]
    assert all(a.shape == (1, 2) and np.all(np.abs(a) <= 1) for a in acts)
    with pytest.raises(MageError):
        PlannerPolicy(planner, 100.0, replan_every=0)


def test_condition_outside_the_goal_asks_to_be_there_within_regoal_steps(planner):
    W = planner.task.eval_steps
    G = W - 5.0
    obs = np.stack([_obs(planner.task)] * 3)
    conds = {}
    for n in (20, 0):
        pol = PlannerPolicy(planner, rtg_target=G, seed=0, regoal_steps=n)
        pol.reset(3)
        # env 0 never reaches the goal; env 1 reaches it at step 1 and leaves at step 2; env 2 stays rewarded
        for r in ([0, 0, 0], [0, 1, 1], [0, 0, 1]):
            pol.act(obs, np.array(r, float))
        conds[n] = pol.rtg.raw()
        assert pol.last_condition_N[0] <= (W - n if n else G + 3) + 1e-6  # what the model was conditioned on
        assert pol.last_condition_N[1] <= (W - n if n else G + 2) + 1e-6
    np.testing.assert_allclose(conds[0], [G + 3, G + 2, G + 1])  # plain G - r + t
    # not yet at the goal (env 0) or out of it again (env 1): "be there within 20 steps"; at the goal: unchanged
    np.testing.assert_allclose(conds[20], [W - 20, W - 20, G + 1])
    low = PlannerPolicy(planner, rtg_target=W - 100.0, seed=0, regoal_steps=20)
    low.reset(1)
    low.act(obs[:1], np.zeros(1))
    assert low.rtg.raw()[0] == W - 99.0  # a condition already below the cap is left alone
    assert PlannerPolicy(planner, G).rtg.regoal_steps > 0  # on by default
    tr = RTGTracker(10.0, "dense", regoal_steps=20)  # dense-return tasks: the cap never applies
    tr.reset(1)
    tr.receive([1.0]), tr.receive([0.0])
    assert tr.raw()[0] == 9.0
    with pytest.raises(MageError, match="regoal_steps"):
        PlannerPolicy(planner, G, regoal_steps=-1)


def test_the_default_regoal_cap_is_the_task_suites(planner, monkeypatch):
    """No --regoal-steps: the policy takes its task suite's value (AntMaze: 60 on medium and large, where 60 beat 20 on
    every training seed; 20 on umaze and PointMaze); an explicit value still wins."""
    from mage_core.tasks import get_task

    suite = planner.task.suite
    assert suite.regoal_steps(planner.task) == 20
    assert [get_task(f"antmaze-{m}").suite.regoal_steps(get_task(f"antmaze-{m}")) for m in ("umaze", "medium", "large")] \
        == [20, 60, 60]
    door = get_task("adroit-door")
    assert door.suite.regoal_steps(door) == 0  # a dense reward has no goal to come back to
    monkeypatch.setattr(type(suite), "regoal_steps", lambda self, task: 7)
    assert PlannerPolicy(planner, 100.0).rtg.regoal_steps == 7
    assert PlannerPolicy(planner, 100.0, regoal_steps=3).rtg.regoal_steps == 3


def test_closed_loop_evaluation_runs_batched(planner):
    res = evaluate(planner.task, planner.policy(200.0, seed=0), episodes=2, seeds=(0,), n_envs=2,
                   episode_steps=20, ref_scores=(0.0, 180.0))
    assert res.n == 2 and res.normalised_mean is not None


def test_evaluating_the_expert_reproduces_the_dataset_reference(umaze_dataset):
    import minari

    from mage_core.evaluate import ExpertPolicy
    from mage_core.tasks import get_task

    meta = minari.load_dataset(umaze_dataset).storage.metadata
    task = get_task("pointmaze-umaze")
    res = evaluate(task, ExpertPolicy(task), episodes=3, seeds=(10_000,))  # the seeds reference_scores uses
    assert res.mean == pytest.approx(meta["ref_max_score"], abs=1e-6)


def test_wrong_algo_checkpoint_is_refused(ckpt_path):
    from mage_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    ckpt["algo"] = "bc"
    with pytest.raises(MageError, match="not a MAGE"):
        Planner.from_checkpoint(ckpt)


def test_return_ceiling_learns_a_high_expectile_and_limits_conditions(micro_checkpoint):
    from mage_core.checkpoint import load_checkpoint
    from mage_core.model.ceiling import CeilingConfig, fit_return_ceiling

    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, size=(4000, 6)).astype(np.float32)
    r = (s[:, 0] + rng.uniform(0, 1, size=4000)).astype(np.float32)  # best return from s is s0 + 1
    payload, metrics = fit_return_ceiling(np.concatenate([r[:, None], s], 1), CeilingConfig(steps=600, expectile=0.95))
    assert metrics["ceiling_loss_last"] < metrics["ceiling_loss_first"]
    from mage_core.model.ceiling import load_return_ceiling

    pred = load_return_ceiling(payload)(torch.as_tensor(s[:200])).detach().numpy()
    assert np.mean(pred > s[:200, 0] + 0.6) > 0.8  # well above the mean (s0 + 0.5), near the best

    ckpt = load_checkpoint(micro_checkpoint)
    assert "ceiling" in ckpt
    p = Planner.from_checkpoint(ckpt)
    obs = _obs(p.task)[None]
    hi = p.rtg_ceiling(obs)
    assert hi.shape == (1,) and p.rtg_range[0] <= hi[0] <= p.rtg_range[1]
    np.testing.assert_allclose(p.feasible(obs, np.array([1e9])), hi)
    assert p.plan(obs[0], p.rtg_range[1], seed=0).condition_rtg == pytest.approx(float(hi[0]), rel=1e-5)


def test_track_executor_steers_to_the_planned_position(planner):
    from mage_core.maze import pd_action

    obs = np.stack([_obs(planner.task)])
    pol = PlannerPolicy(planner, 250.0, seed=0, executor="track", track_ahead=5)
    pol.reset(1)
    a = pol.act(obs, np.zeros(1))
    np.testing.assert_allclose(a[0], pd_action(obs[0, :2], obs[0, 2:4], pol._plan_x[0, 5, 1:3]), atol=1e-6)
    default = PlannerPolicy(planner, 250.0, executor="track")  # lookahead scales with the plan's horizon
    assert default.track_ahead == max(1, round(3 * planner.horizon / 16))
    with pytest.raises(MageError, match="unknown executor"):
        PlannerPolicy(planner, 250.0, executor="teleport")


def test_regoal_cap_is_reported_only_where_it_applies():
    """The card records the cap outside the goal only for window-relabel tasks with a cap set."""
    from mage_core.rtg import RTGTracker

    assert RTGTracker(100.0, "window", 300, regoal_steps=20).regoal_cap == 20
    assert RTGTracker(100.0, "window", 300, regoal_steps=0).regoal_cap is None
    assert RTGTracker(100.0, "dense", 300, regoal_steps=20).regoal_cap is None


# ---- steering by the coarse plan ---------------------------------------------------------------------------------
def test_held_scales_keep_their_tokens_across_resamples_while_the_finer_ones_vary(planner):
    obs, k = _obs(planner.task), 2
    first = planner.plan(obs, 200.0, seed=0)
    held = [planner.plan(obs, 200.0, seed=s, prefix_tokens=first.tokens[:k]) for s in range(1, 7)]
    for p in held:
        assert p.held_scales == k and p.prefix_logprob is not None and p.prefix_logprob <= 0.0
        for j in range(k):
            np.testing.assert_array_equal(p.tokens[j], first.tokens[j])
        np.testing.assert_allclose(p.states_KHD[:k], first.states_KHD[:k], atol=1e-5)  # the coarse plans too
    finer = {tuple(np.concatenate([np.asarray(t) for t in p.tokens[k:]]).tolist()) for p in held}
    assert len(finer) > 1  # resampling changes the finer scales
    assert planner.plan(obs, 200.0, seed=0).held_scales == 0


def test_the_held_sampler_is_mages_sampler_when_nothing_is_held(planner):
    _, cond_BD, *_ = planner._condition(_obs(planner.task), 200.0)
    ref = planner.model.sample(cond_BD, generator=planner._generator(11))
    out, logp_B, held_B = planner.sample_scales(cond_BD, generator=planner._generator(11))
    for a, b in zip(ref.idx_list, out.idx_list):
        assert torch.equal(a, b)
    assert bool(held_B.all()) and float(logp_B[0]) < 0


def test_alternatives_differ_at_their_scale_are_ranked_and_adopting_one_reproduces_it(planner):
    obs, k = _obs(planner.task), 2
    alts = planner.alternatives(obs, 200.0, scale=k, n=4, seed=5)
    assert 2 <= len(alts) <= 4
    coarse = [tuple(np.concatenate([np.asarray(t) for t in a.tokens[:k]]).tolist()) for a in alts]
    assert len(set(coarse)) == len(alts)  # pairwise different at scales 1..k
    logps = [a.prefix_logprob for a in alts]
    assert logps == sorted(logps, reverse=True) and all(a.held_scales == k for a in alts)
    adopted = planner.plan(obs, 200.0, seed=5, prefix_tokens=alts[1].tokens[:k])
    for a, b in zip(adopted.tokens, alts[1].tokens):
        np.testing.assert_array_equal(a, b)


def test_bad_prefixes_and_alternatives_are_refused_with_a_reason(planner):
    obs, K = _obs(planner.task), len(planner.scales)
    ok = planner.plan(obs, 200.0, seed=0).tokens
    with pytest.raises(MageError, match="scale 2 has"):
        planner.plan(obs, 200.0, prefix_tokens=[ok[0], ok[1][:-1]] if len(ok[1]) > 1 else [ok[0], np.r_[ok[1], 0]])
    with pytest.raises(MageError, match=r"whole numbers in \[0"):
        planner.plan(obs, 200.0, prefix_tokens=[np.array([planner.codebook_size])])
    with pytest.raises(MageError, match="only"):
        planner.plan(obs, 200.0, prefix_tokens=list(ok) + [ok[-1]])
    with pytest.raises(MageError, match="from 1 to"):
        planner.alternatives(obs, 200.0, scale=K + 1)
    with pytest.raises(MageError, match="number of alternatives"):
        planner.alternatives(obs, 200.0, scale=1, n=0)


def test_a_closed_loop_from_an_adopted_plan_holds_its_coarse_tokens_then_plans_freely(planner):
    obs, k = _obs(planner.task), 2
    adopted = planner.plan(obs, 200.0, seed=0)
    pol = PlannerPolicy(planner, 200.0, seed=0, keep_plan=True, prefix_tokens=adopted.tokens[:k], hold_steps=3)
    pol.reset(1)
    seen = []
    for _ in range(5):
        pol.act(obs[None], np.zeros(1))
        seen.append((pol.last_plan.held_scales, [np.asarray(t).copy() for t in pol.last_plan.tokens[:k]]))
    for held, toks in seen[:3]:  # the first hold_steps replans keep the adopted route (unless the model disagrees)
        if held:
            assert all(np.array_equal(a, b) for a, b in zip(toks, adopted.tokens[:k]))
    assert seen[0][0] == k and all(held == 0 for held, _ in seen[3:])
    with pytest.raises(MageError, match="hold_steps"):
        PlannerPolicy(planner, 200.0, prefix_tokens=adopted.tokens[:k], hold_steps=0)
