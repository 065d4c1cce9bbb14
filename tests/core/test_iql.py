"""Tests for the IQL baseline (d3rlpy, the optional `iql` extra): the missing-extra error, episodes -> MDP arrays
(terminals vs timeouts), and with d3rlpy installed a tiny train that writes a weights-only checkpoint scored by the
evaluator, transitions that match d3rlpy's own picker, and an exact resume."""
from __future__ import annotations

import builtins
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from mage_core.baselines import ALGOS, iql
from mage_core.data.segments import Episode
from mage_core.errors import MageError
from mage_core.tasks import get_task

TINY_STEPS = 200  # enough for the losses to fall, a few seconds on one thread


def _episode(T: int, success: bool, seed: int, obs_dim: int = 3, act_dim: int = 2) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(rng.normal(size=(T + 1, obs_dim)).astype(np.float32),
                   rng.uniform(-1, 1, size=(T, act_dim)).astype(np.float32),
                   (rng.random(T) < 0.3).astype(np.float32), success)


@pytest.fixture
def no_d3rlpy(monkeypatch):
    """Make `import d3rlpy` fail as it does without the extra (only inside this test)."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "d3rlpy" or name.startswith("d3rlpy."):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    for mod in [m for m in sys.modules if m == "d3rlpy" or m.startswith("d3rlpy.")]:
        monkeypatch.delitem(sys.modules, mod)


# ---- without d3rlpy ------------------------------------------------------------------------------------------------
def test_iql_is_registered():
    from mage_core.algos import ALGOS as ALL

    assert "iql" in ALGOS and "iql" in ALL
    assert iql.preset("small").steps == 10_000 and iql.preset("tiny", steps=7).steps == 7
    with pytest.raises(MageError, match="preset"):
        iql.preset("huge")


def test_missing_extra_is_one_clear_error(no_d3rlpy, tmp_path):
    from mage_core.baselines import train_baseline

    with pytest.raises(MageError, match=r'pip install -e "\.\[iql\]"'):
        iql.check_available()
    eps = [_episode(10, True, 0)]
    with pytest.raises(MageError, match="d3rlpy") as err:  # before any data is read or anything written
        train_baseline("iql", dataset=eps, task="pointmaze-umaze", preset="tiny", out=tmp_path / "x.pt")
    assert "\n" not in str(err.value) and not (tmp_path / "x.pt").exists()
    assert iql.terminal_flags(eps, get_task("pointmaze-umaze")).tolist() == [False]  # pure numpy still works


def test_cli_without_extra_says_how_to_install(tmp_path):
    """`mage train --algo iql` in a process where d3rlpy cannot be imported: one `mage: error:` line, exit 1 (the
    command is right, the installation lacks the extra)."""
    code = ("import sys; sys.modules['d3rlpy'] = None; from mage_core.cli import main; "
            "sys.exit(main(['train', '--algo', 'iql', '--task', 'pointmaze-umaze', '--out', sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.pt")], capture_output=True, text=True,
                       timeout=120)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert r.returncode == 1, r.stderr
    assert lines[-1].startswith("mage: error:") and 'pip install -e ".[iql]"' in lines[-1], r.stderr
    assert "Traceback" not in r.stderr


def test_mdp_arrays_terminals_and_timeouts():
    eps = [_episode(4, True, 1), _episode(3, False, 2)]
    a = iql.mdp_arrays(eps, np.array([True, False]))
    # terminated: its 4 steps (the final observation is never bootstrapped from); timed out: 3 steps + a stub row
    assert len(a["observations_ND"]) == 4 + 4
    np.testing.assert_array_equal(a["terminals_N"], [0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(a["timeouts_N"], [0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(a["observations_ND"][:4], eps[0].obs_TD[:4])
    np.testing.assert_array_equal(a["observations_ND"][4:], eps[1].obs_TD)  # all 4 observations, final one included
    np.testing.assert_array_equal(a["actions_NA"][4:7], eps[1].actions_TA)
    np.testing.assert_array_equal(a["rewards_N"][:4], eps[0].rewards_T)
    assert a["actions_NA"][7].tolist() == [0, 0] and a["rewards_N"][7] == 0
    assert all(v.dtype == np.float32 for v in a.values())
    scaled = iql.mdp_arrays(eps, np.array([True, False]), obs_fn=lambda o: 2 * o)
    np.testing.assert_array_equal(scaled["observations_ND"], 2 * a["observations_ND"])


def test_terminal_flags_follow_the_protocol():
    eps = [_episode(4, True, 1), _episode(3, False, 2)]
    # sparse goal reaching: the data's cut after the dwell is not where reward stops -> timeouts only
    assert iql.terminal_flags(eps, get_task("pointmaze-umaze")).tolist() == [False, False]
    # dense: Episode.success is the recorded termination (e.g. a walker that fell)
    assert iql.terminal_flags(eps, get_task("adroit-door")).tolist() == [True, False]
    assert iql.reward_scale(eps, get_task("pointmaze-umaze"), iql.preset("small")) == 1.0
    span = eps[0].rewards_T.sum() - eps[1].rewards_T.sum()
    assert iql.reward_scale(eps, get_task("adroit-door"), iql.preset("small")) == pytest.approx(1000 / abs(span))


# ---- with d3rlpy ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def d3rlpy():
    return pytest.importorskip("d3rlpy")


def test_flat_transitions_match_d3rlpy_picker(d3rlpy):
    eps = [_episode(5, True, 3), _episode(4, False, 4), _episode(6, False, 5)]
    ds = iql.make_mdp_dataset(iql.mdp_arrays(eps, np.array([True, False, False])))
    tr = iql.flat_transitions(ds)
    assert len(tr["obs_ND"]) == ds.transition_count == 5 + 4 + 6  # every recorded step is one transition
    picker = d3rlpy.dataset.BasicTransitionPicker()
    i = 0
    for ep in ds.episodes:
        for j in range(ep.transition_count):
            t = picker(ep, j)
            np.testing.assert_array_equal(tr["obs_ND"][i], t.observation)
            np.testing.assert_array_equal(tr["next_obs_ND"][i], t.next_observation)
            np.testing.assert_array_equal(tr["act_NA"][i], t.action)
            np.testing.assert_array_equal(tr["next_act_NA"][i], t.next_action)
            assert tr["rew_N1"][i, 0] == t.reward[0] and tr["term_N1"][i, 0] == t.terminal
            i += 1
    assert tr["term_N1"].sum() == 1  # only the terminated episode's last step
    np.testing.assert_array_equal(tr["next_obs_ND"][5 + 3], eps[1].obs_TD[4])  # timeout: bootstraps from s_T


@pytest.fixture(scope="module")
def tiny_run(d3rlpy, umaze_dataset, tmp_path_factory):
    from mage_core.baselines import train_baseline

    out = tmp_path_factory.mktemp("iql") / "iql.pt"
    events = []
    train_baseline("iql", dataset=umaze_dataset, preset="tiny", out=out, events=events.append, steps=TINY_STEPS,
                   progress=False)
    return out, events


def test_tiny_train_writes_weights_only_checkpoint_scored_by_evaluate(tiny_run):
    from mage_core.evaluate import evaluate
    from mage_core.policies import checkpoint_ref_scores, load_policy

    out, events = tiny_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "stage_end" in kinds
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["step"] == TINY_STEPS and {"loss", "q_loss", "v_loss", "actor_loss"} <= set(steps[-1]["losses"])
    assert np.mean([e["losses"]["critic_loss"] for e in steps[-3:]]) < np.mean(
        [e["losses"]["critic_loss"] for e in steps[:2]])
    ckpt = torch.load(out, weights_only=True)  # tensors and plain data only
    assert ckpt["algo"] == "iql" and ckpt["train_state"]["step"] == TINY_STEPS and ckpt["train_state"]["wall_s"] > 0
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())
    assert ckpt["mdp"]["terminal_episodes"] == 0 and ckpt["mdp"]["transitions"] == ckpt["dataset"]["steps"]
    assert ckpt["dataset"]["ref_scores"] and ckpt["versions"]["d3rlpy"]
    policy, task, meta = load_policy(out)
    res = evaluate(task, policy, episodes=2, seeds=(0,), ref_scores=checkpoint_ref_scores(meta, task),
                   episode_steps=60)
    assert res.n == 2 and np.isfinite(res.normalised_mean)
    obs = np.zeros((3, 6), np.float32)
    a1, a2 = policy.act(obs, np.zeros(3)), load_policy(out)[0].act(obs, np.zeros(3))
    assert a1.shape == (3, 2) and a1.dtype == np.float32 and np.all(np.abs(a1) <= 1)
    np.testing.assert_array_equal(a1, a2)  # deterministic
    with pytest.raises(MageError):
        policy.act(np.zeros((2, 7), np.float32), np.zeros(2))


def test_resume_continues_exactly(d3rlpy, umaze_dataset, tmp_path):
    from mage_core.baselines import train_baseline

    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    train_baseline("iql", dataset=umaze_dataset, preset="tiny", out=full, steps=40, progress=False)
    from mage_core.data.store import load_episodes

    task, episodes, _ = load_episodes(umaze_dataset)
    cfg = replace(iql.preset("tiny", steps=40), ckpt_every=20)

    class Stop(Exception):
        pass

    def stop_at_20(ev):
        if ev["event"] == "checkpoint" and ev["step"] == 20:
            raise Stop
    with pytest.raises(Stop):
        iql.train(episodes, task, cfg, out=half, events=stop_at_20, dataset=umaze_dataset)
    assert torch.load(half, weights_only=True)["train_state"]["step"] == 20
    events = []
    train_baseline("iql", dataset=umaze_dataset, out=half, resume=half, progress=False, events=events.append)
    a, b = torch.load(full, weights_only=True), torch.load(half, weights_only=True)
    assert events[0]["resumed_from"] == 20 and b["train_state"]["step"] == 40
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)
    with pytest.raises(MageError, match="step count"):
        train_baseline("iql", dataset=umaze_dataset, out=half, resume=half, steps=80, progress=False)
