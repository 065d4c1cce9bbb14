"""The benchmark commands end to end at a tiny scale: data, quality (train + evaluate side by side) and latency."""
from __future__ import annotations

import json
import os
import subprocess
import sys

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
    r = _mage("bench", "latency", *ckpts, "--repeats", "10", "--warmup", "2", "--out", lat)
    assert r.returncode == 0, r.stderr
    d = json.loads(lat.read_text())
    assert {row["algo"] for row in d["rows"]} == {"bc", "mage"} and "mage/bc" in d["ratios"]


def test_bench_quality_refuses_unknown_tasks_and_methods_before_training(tmp_path):
    for args, msg in ((("--tasks", "pointmaze-nope"), "unknown task"), (("--algos", "mage,ppo"), "unknown method")):
        r = _mage("bench", "quality", *args, "--cache", tmp_path / "cache", "--out", tmp_path / "q.json")
        assert r.returncode == 2 and msg in r.stderr
        assert not (tmp_path / "cache").exists()
