"""End-to-end CLI tests: mage eval, sweep-rtg, plan, demo, ckpt info and bench latency on a micro checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _mage(*args, cwd=None):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "mage_core", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=300, cwd=cwd)
    return r


def test_eval_prints_normalised_score_and_json(micro_checkpoint, tmp_path):
    out = tmp_path / "eval.json"
    r = _mage("eval", "--checkpoint", micro_checkpoint, "--episodes", "2", "--envs", "2", "--quiet", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "normalised" in r.stdout
    d = json.loads(out.read_text())
    assert d["n"] == 2 and d["ref_max_score"] > 0 and d["normalised_mean"] is not None


def test_sweep_writes_json_and_png(micro_checkpoint, tmp_path):
    prefix = tmp_path / "sweep"
    r = _mage("sweep-rtg", "--checkpoint", micro_checkpoint, "--rtgs", "200,300", "--episodes", "1", "--quiet",
              "--out", prefix)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["target"] for row in d["rows"]] == [200.0, 300.0] and "spearman" in d
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_png_and_bad_starts(micro_checkpoint, tmp_path):
    png = tmp_path / "plan.png"
    r = _mage("plan", "--checkpoint", micro_checkpoint, "--start=-1,-1", "--goal=-1,1", "--png", png, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["xy"]) == len(d["scales"]) and png.stat().st_size > 1000
    for start, msg in (("0,0", "wall"), ("9,9", "outside"), ("a,b", "x,y")):
        r = _mage("plan", "--checkpoint", micro_checkpoint, f"--start={start}", "--png", png)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    # the README's spelling, a negative point as a separate argument, and an out-of-range target: a note, no warning
    r = _mage("plan", "--checkpoint", micro_checkpoint, "--start", "-1,-1", "--goal", "-1,1", "--rtg", "1e9",
              "--png", png)
    assert r.returncode == 0, r.stderr
    assert "limited to" in r.stdout and "Warning" not in r.stderr and "warn" not in r.stderr


def test_demo_runs_headless(micro_checkpoint, tmp_path):
    png = tmp_path / "demo.png"
    r = _mage("demo", "--checkpoint", micro_checkpoint, "--png", png)
    assert r.returncode == 0, r.stderr
    assert "episode return" in r.stdout and png.stat().st_size > 1000


def test_bench_latency_reports_median(micro_checkpoint, tmp_path):
    out = tmp_path / "lat.json"
    r = _mage("bench", "latency", micro_checkpoint, "--repeats", "20", "--warmup", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["rows"][0]
    assert row["algo"] == "mage" and 0 < row["median_ms"] <= row["p95_ms"]


@pytest.mark.parametrize("content,msg", [(b"", "checkpoint"), (b"not a torch file", "checkpoint")])
def test_bad_checkpoint_files_are_one_line_errors(tmp_path, content, msg):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    for cmd in (("eval", "--checkpoint", bad), ("plan", "--checkpoint", bad), ("demo", "--checkpoint", bad)):
        r = _mage(*cmd)
        assert r.returncode == 2, (cmd, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr
    r = _mage("eval", "--checkpoint", tmp_path / "missing.pt")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_diagnose_reports_how_episodes_went(micro_checkpoint, tmp_path):
    out = tmp_path / "diag.json"
    r = _mage("diagnose", "--checkpoint", micro_checkpoint, "--episodes", "2", "--quiet", "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert len(d["episodes"]) == 2 and "reach_rate" in d["summary"]
    for ep in d["episodes"]:
        assert ep["first_reach"] is None or 0 <= ep["first_reach"] < 300
        assert (ep["stall_cell"] is None) == (ep["first_reach"] is not None)
        assert 0.0 <= ep["share_inside_after_reach"] <= 1.0
    assert "reached the goal in" in r.stdout


def test_maze_diagnostics_on_a_hand_made_episode():
    import numpy as np

    from mage_core.suites.pointmaze import geometry
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")
    g = geometry(task)
    goal = g.cell_to_xy((1, 1))
    obs = np.zeros((11, 6), np.float32)
    obs[:, 4:6] = goal
    obs[:, :2] = g.cell_to_xy((3, 1))
    rew = np.zeros(10)
    rew[[4, 5, 7]] = 1.0  # arrives at step 4, leaves at 6, back at 7, leaves again
    d = task.suite.episode_diagnostics(task, obs, rew)
    assert d["first_reach"] == 4 and d["leaves_after_reach"] == 2
    assert abs(d["share_inside_after_reach"] - 3 / 6) < 1e-9 and d["stall_cell"] is None
    d = task.suite.episode_diagnostics(task, obs, np.zeros(10))
    assert d["first_reach"] is None and d["stall_cell"] == [3, 1] and d["cells_left"] == 6.0
