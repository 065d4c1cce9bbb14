"""The benchmark commands end to end at a tiny scale: data, quality (train + evaluate side by side) and latency."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mage_core.errors import MageError
from mage_core.quality import TUNE_FRACTIONS


def _mage(*args):
    return subprocess.run([sys.executable, "-m", "mage_core", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)


def test_bench_data(tmp_path):
    out = tmp_path / "data.json"
    r = _mage("bench", "data", "--steps", "600", "--batch", "32", "--out", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["gen_steps_per_s"] > 0 and d["segments_per_s"] > 0 and d["machine"]["cores"] >= 1


@pytest.mark.slow
def test_bench_quality_and_latency_tiny(umaze_dataset, tmp_path):
    out, md = tmp_path / "q.json", tmp_path / "q.md"
    r = _mage("bench", "quality", "--tasks", "pointmaze-umaze", "--algos", "mage,mage-track,bc", "--preset", "tiny",
              "--steps-scale", "0.05", "--episodes", "1", "--tune-episodes", "1", "--dataset", umaze_dataset, "--cache", tmp_path / "cache",
              "--out", out, "--markdown", md)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())["results"]["pointmaze-umaze"]
    assert set(res) == {"mage", "mage-track", "bc"}
    assert all(v["n_episodes"] == 1 and v["n_seeds"] == 1 for v in res.values())
    for algo in ("mage", "mage-track"):  # return-conditioned: target chosen on held-out seeds
        tried = {float(g): v for g, v in res[algo]["target_tuning"][0].items()}  # effective (range-clamped) targets
        chosen = res[algo]["rtg_targets"][0]
        assert 1 <= len(tried) <= len(TUNE_FRACTIONS) and chosen in tried and tried[chosen] == max(tried.values())
    assert res["bc"]["rtg_targets"] == [None] and res["bc"]["target_tuning"] == [{}]
    table = md.read_text()
    assert "| pointmaze-umaze |" in table and "MAGE ahead of every baseline?" in table
    ckpts = sorted((tmp_path / "cache" / "pointmaze-umaze" / "seed0").glob("*.pt"))
    assert [p.name for p in ckpts] == ["pointmaze-umaze-bc.pt", "pointmaze-umaze-mage.pt"]  # mage-track reuses mage
    lat = tmp_path / "lat.json"
    r = _mage("bench", "latency", *ckpts, "--repeats", "10", "--warmup", "2", "--rounds", "3", "--out", lat)
    assert r.returncode == 0, r.stderr
    d = json.loads(lat.read_text())
    assert {row["algo"] for row in d["rows"]} == {"bc", "mage"} and "mage/bc" in d["ratios"]
    # the methods took turns: 3 rounds of 4 + 3 + 3 calls each; per-round ratios are to the first checkpoint (BC)
    assert all(row["repeats"] == 10 and row["rounds"] == 3 for row in d["rows"])
    # (no ordering of the two times is asserted: a timing inequality is flaky on a loaded machine)
    assert d["rows"][0]["ratio_to_first_rounds"] == 1.0 and 0 < d["rows"][1]["ratio_to_first_rounds"] < float("inf")


def test_mage_ahead_verdict_weighs_the_gap_against_its_standard_error():
    from mage_core.quality import ahead_verdict, markdown_table

    mage, bc, dt = dict(mean=8.5, se=1.5), dict(mean=7.7, se=1.6), dict(mean=3.0, se=0.5)
    assert ahead_verdict(mage, [bc, dt]) == "ahead within noise"  # 0.8 ahead of BC, s.e. of the gap 2.2
    assert ahead_verdict(mage, [dt]) == "yes"  # 5.5 ahead, s.e. of the gap 1.6
    assert ahead_verdict(dict(mean=7.7, se=0.1), [bc]) == "no"  # level is not ahead
    rows = {"mage": mage, "bc": bc, "dt": dt}
    out = dict(results={"adroit-door-cloned": {a: dict(v, n_episodes=30) for a, v in rows.items()}}, seeds=3,
               episodes_per_seed=10, preset="small")
    assert "| ahead within noise |" in markdown_table(out) and "twice the standard error" in markdown_table(out)


@pytest.mark.slow
def test_bench_quality_refuses_unknown_tasks_and_methods_before_training(tmp_path):
    for args, msg in ((("--tasks", "pointmaze-nope"), "unknown task"), (("--algos", "mage,ppo"), "unknown method"),
                      (("--tasks", "pointmaze-umaze,pointmaze-medium", "--dataset", "mage/x/y-v0"), "one task"),
                      (("--mage-flags", "--bogus 3"), "unrecognized arguments: --bogus 3"),
                      (("--mage-flags", "--horizon abc"), "argument --horizon"),
                      (("--mage-flags", "--seed 3"), "may not set --seed"),
                      (("--algos", "bc,dt", "--mage-flags", "--horizon 32"), "trains no MAGE checkpoint")):
        r = _mage("bench", "quality", *args, "--cache", tmp_path / "cache", "--out", tmp_path / "q.json")
        assert r.returncode == 2 and msg in r.stderr
        assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_bench_quality_keys_rows_and_cache_by_dataset(umaze_dataset, tmp_path):
    """A --dataset run sharing a --cache with the default-dataset run trains its own checkpoints under its own row
    (the old behaviour keyed both by the task and silently reused the first run's checkpoints)."""
    from mage_core.checkpoint import load_checkpoint
    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.quality import cached_checkpoint, row_name
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")
    other = make_dataset(task, GenerateConfig(steps=1500, seed=1, ref_episodes=2), force=True,
                         dataset_id="mage/pointmaze-umaze/other-v0").id
    assert row_name(task, None) == row_name(task, umaze_dataset) == "pointmaze-umaze"
    assert row_name(task, other) == "pointmaze-umaze-other"
    assert row_name(get_task("adroit-door"), "mage/adroit-door/human-v0") == "adroit-door-human"
    cache = tmp_path / "cache"
    common = ("bench", "quality", "--tasks", "pointmaze-umaze", "--algos", "bc", "--preset", "tiny", "--steps-scale",
              "0.05", "--episodes", "1", "--tune-episodes", "0", "--cache", cache)
    rows = {}
    for ds in (umaze_dataset, other):
        out = tmp_path / f"{ds.replace('/', '_')}.json"
        r = _mage(*common, "--dataset", ds, "--out", out)
        assert r.returncode == 0, r.stderr
        d = json.loads(out.read_text())
        rows.update(d["results"])
        assert list(d["datasets"].values()) == [dict(task="pointmaze-umaze", dataset=ds)]
    assert set(rows) == {"pointmaze-umaze", "pointmaze-umaze-other"}
    assert all(v["bc"]["train_wall_s"][0] > 0 for v in rows.values())  # the second run trained, it reused nothing
    expert_ckpt = cache / "pointmaze-umaze" / "seed0" / "pointmaze-umaze-bc.pt"  # the old cache name, unchanged
    other_ckpt = cache / "pointmaze-umaze-other" / "seed0" / "pointmaze-umaze-other-bc.pt"
    assert load_checkpoint(expert_ckpt)["dataset"]["id"] == umaze_dataset
    assert load_checkpoint(other_ckpt)["dataset"]["id"] == other
    assert cached_checkpoint(cache, task, umaze_dataset, "bc", 0) == expert_ckpt
    assert cached_checkpoint(cache, task, other, "bc", 0) == other_ckpt
    # a checkpoint cached under a row but trained on other data is refused, not reused
    misplaced = tmp_path / "bad"
    (misplaced / "pointmaze-umaze" / "seed0").mkdir(parents=True)
    shutil.copy(other_ckpt, misplaced / "pointmaze-umaze" / "seed0" / "pointmaze-umaze-bc.pt")
    with pytest.raises(MageError, match="trained on mage/pointmaze-umaze/other-v0"):
        cached_checkpoint(misplaced, task, umaze_dataset, "bc", 0)
    # a --dataset checkpoint cached under the task name (the older cache layout) is found when trained on that data
    assert cached_checkpoint(misplaced, task, other, "bc", 0) == misplaced / "pointmaze-umaze" / "seed0" / "pointmaze-umaze-bc.pt"
    shutil.copy(expert_ckpt, misplaced / "pointmaze-umaze" / "seed0" / "pointmaze-umaze-bc.pt")
    fresh = cached_checkpoint(misplaced, task, other, "bc", 0)  # the task-name file holds other data: train anew
    assert fresh == misplaced / "pointmaze-umaze-other" / "seed0" / "pointmaze-umaze-other-bc.pt" and not fresh.exists()


@pytest.mark.slow
def test_bench_quality_runs_one_seed_at_a_time_and_caches_mage_flags_apart(umaze_dataset, tmp_path):
    """--first-seed trains only the seeds asked for (pieces of a sweep merge); --mage-flags reaches `mage train` and
    its checkpoint is cached under its own name, so a plain MAGE checkpoint in the same cache is never reused."""
    from mage_core.checkpoint import load_checkpoint

    out, cache = tmp_path / "q.json", tmp_path / "cache"
    r = _mage("bench", "quality", "--tasks", "pointmaze-umaze", "--algos", "mage", "--preset", "tiny", "--steps-scale",
              "0.05", "--episodes", "1", "--tune-episodes", "0", "--dataset", umaze_dataset, "--cache", cache,
              "--seeds", "1", "--first-seed", "2", "--mage-flags", "--inv-lookahead 1,2", "--out", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["first_seed"] == 2 and d["mage_flags"] == ["--inv-lookahead", "1,2"]
    row = d["results"]["pointmaze-umaze"]["mage"]
    assert row["seeds"] == [2] and len(row["normalised"]) == 1 and row["seed_means"] == row["normalised"]
    assert [p.parent.name for p in cache.rglob("*.pt")] == ["seed2"]
    (ckpt,) = cache.rglob("*.pt")
    assert ckpt.name.startswith("pointmaze-umaze-mage+") and ckpt.name != "pointmaze-umaze-mage.pt"
    assert list(load_checkpoint(ckpt)["config"]["model"]["inv_lookahead"]) == [1, 2]
    r = _mage("bench", "quality", "--tasks", "pointmaze-umaze", "--algos", "mage", "--first-seed", "-1",
              "--cache", cache, "--out", out)
    assert r.returncode == 2 and "--first-seed" in r.stderr


def test_pooled_rows_equal_one_run_over_all_episodes():
    import numpy as np

    from mage_core.quality import pool_rows

    rng = np.random.default_rng(0)
    parts = [rng.normal(10, 5, 10), rng.normal(20, 3, 10), rng.normal(0, 1, 7)]
    rows = [dict(n_episodes=len(p), mean=float(p.mean()), se=float(p.std(ddof=1) / np.sqrt(len(p)))) for p in parts]
    pooled, every = pool_rows(rows), np.concatenate(parts)
    assert pooled["n_episodes"] == 27 and np.isclose(pooled["mean"], every.mean())
    assert np.isclose(pooled["se"], every.std(ddof=1) / np.sqrt(len(every)))


def test_merge_script_pools_pieces_keeps_episodes_and_refuses_a_seed_twice(tmp_path):
    from pathlib import Path

    import numpy as np

    def piece(seed, eps):
        row = dict(mean=float(np.mean(eps)), se=float(np.std(eps, ddof=1) / np.sqrt(len(eps))), n_episodes=len(eps),
                   n_seeds=1, seeds=[seed], seed_means=[float(np.mean(eps))], normalised=eps,
                   train_flags=["--inv-lookahead", "1,2"], train_wall_s=[10.0 + seed], rtg_targets=[None],
                   target_tuning=[{}])
        dt = dict(row, mean=row["mean"] + 1, seed_means=[row["mean"] + 1], train_flags=[])
        return dict(command=f"bench s{seed}", preset="small", seeds=1, first_seed=seed, episodes_per_seed=len(eps),
                    results={"pointmaze-large": {"mage": row, "dt": dt}}, machine={"cpu": "x"})

    paths = []
    for seed, eps in ((0, [1.0, 3.0, 5.0]), (1, [10.0, 20.0, 30.0])):
        paths.append(tmp_path / f"s{seed}.json")
        paths[-1].write_text(json.dumps(piece(seed, eps)))
    script = Path(__file__).parents[2] / "docs" / "results" / "merge_quality.py"
    out = tmp_path / "m.json"
    r = subprocess.run([sys.executable, script, *paths, "--out", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["results"]["pointmaze-large"]["mage"]
    every = [1.0, 3.0, 5.0, 10.0, 20.0, 30.0]
    assert row["seeds"] == [0, 1] and row["normalised"] == every and row["train_wall_s"] == [10.0, 11.0]
    assert np.isclose(row["mean"], np.mean(every)) and np.isclose(row["se"], np.std(every, ddof=1) / np.sqrt(6))
    # pieces given newest seed first: per-seed means still listed in seed order, next to their seeds
    r = subprocess.run([sys.executable, script, paths[1], paths[0], "--out", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["results"]["pointmaze-large"]["mage"]
    assert row["seeds"] == [0, 1] and row["seed_means"] == [3.0, 20.0]
    assert row["train_flags"] == [["--inv-lookahead", "1,2"]] * 2  # the row's flags, once per training seed
    # a merged table merges again unchanged (flags stay one list per seed), and renders as markdown
    again, md = tmp_path / "again.json", tmp_path / "m.md"
    r = subprocess.run([sys.executable, script, out, "--out", again, "--markdown", md], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(again.read_text())["results"] == json.loads(out.read_text())["results"]
    table = md.read_text().splitlines()
    assert table[0] == "| data | MAGE | Decision Transformer | MAGE ahead? |"
    assert table[2] == "| pointmaze-large | 11.5 ± 4.6 (3.0 / 20.0) | **12.5 ± 4.6** | no |"
    r = subprocess.run([sys.executable, script, paths[0], paths[0], "--out", out], capture_output=True, text=True)
    assert r.returncode != 0 and "counted twice" in r.stderr


def test_latency_ratios_use_the_first_checkpoint_of_each_algo():
    """With several MAGE checkpoints (e.g. K = 8 then K = 4), both printed ratios are the first one's: the ratio of
    medians and the per-round ratio both take the first MAGE row."""
    from mage_core.bench import latency_ratios

    rows = [dict(algo="mage", median_ms=4.0, rounds=10, ratio_to_first_rounds=1.0),
            dict(algo="mage", median_ms=2.0, rounds=10, ratio_to_first_rounds=2.0),
            dict(algo="dt", median_ms=1.6, rounds=10, ratio_to_first_rounds=2.4),
            dict(algo="dt", median_ms=9.0, rounds=10, ratio_to_first_rounds=0.5)]
    ratios, lines = latency_ratios(rows)
    assert ratios["mage/dt"] == pytest.approx(2.5) and ratios["mage/dt_rounds"] == 2.4
    assert lines == ["MAGE / dt: 2.50x (ratio of medians), 2.40x (median of the 10 per-round ratios)"]
    # MAGE not first: no per-round ratio (those are to the first checkpoint); no MAGE row: nothing
    ratios, lines = latency_ratios(rows[2:3] + rows[:1])
    assert set(ratios) == {"mage/dt"} and "per-round" not in lines[0]
    assert latency_ratios(rows[2:]) == ({}, [])


def test_bench_resumes_an_interrupted_cached_run_instead_of_scoring_it(micro_checkpoint, tmp_path, monkeypatch):
    """A periodic checkpoint left by a killed bench is resumed with `mage train --resume`, a finished one reused."""
    import mage_core.quality as quality
    from mage_core.checkpoint import load_checkpoint, save_checkpoint

    calls = []
    monkeypatch.setattr(quality.subprocess, "run",
                        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    done = tmp_path / "done.pt"
    shutil.copy(micro_checkpoint, done)
    assert quality.train_if_missing(done, "pointmaze-umaze", "mage", 0, "tiny", None, 1.0, 1) == 0.0 and calls == []
    ck = load_checkpoint(micro_checkpoint)
    ck["train_state"] = dict(ck["train_state"], done=False)
    partial = save_checkpoint(tmp_path / "partial.pt", ck)
    quality.train_if_missing(partial, "pointmaze-umaze", "mage", 0, "tiny", None, 1.0, 1, ["--scales", "4"])
    (cmd,) = calls
    assert cmd[cmd.index("--resume") + 1] == str(partial) and "--seed" not in cmd and "--scales" not in cmd
    quality.train_if_missing(tmp_path / "new.pt", "pointmaze-umaze", "bc", 3, "tiny", None, 1.0, 1)
    assert "--resume" not in calls[1] and calls[1][calls[1].index("--seed") + 1] == "3"
