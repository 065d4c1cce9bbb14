"""End-to-end CLI tests: mage eval, sweep-rtg, plan, demo, ckpt info and bench latency on a micro checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
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
    assert d["extra"]["regoal_steps"] == 20  # the condition cap outside the goal is recorded with the score
    bad = _mage("eval", "--checkpoint", micro_checkpoint, "--episodes", "1", "--quiet", "--regoal-steps", "-1")
    assert bad.returncode == 2 and "--regoal-steps" in bad.stderr and "Traceback" not in bad.stderr  # usage


@pytest.mark.slow
def test_sweep_writes_json_and_png(micro_checkpoint, tmp_path):
    prefix = tmp_path / "sweep"
    r = _mage("sweep-rtg", "--checkpoint", micro_checkpoint, "--rtgs", "200,300", "--episodes", "1", "--quiet",
              "--out", prefix)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["target"] for row in d["rows"]] == [200.0, 300.0] and "spearman" in d
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert d["verdict"] in r.stdout and "slope" in d and "achieved_span" in d and "swept_span" in d
    # --out NAME.json writes NAME.json (not NAME.json.json) and NAME.png beside it
    named = tmp_path / "sub" / "door-sweep.json"
    r = _mage("sweep-rtg", "--checkpoint", micro_checkpoint, "--rtgs", "200,300", "--episodes", "1", "--quiet",
              "--out", named)
    assert r.returncode == 0, r.stderr
    assert named.is_file() and (tmp_path / "sub" / "door-sweep.png").is_file()
    assert not (tmp_path / "sub" / "door-sweep.json.json").exists()


@pytest.mark.slow
def test_bench_controllability_table_and_cards(micro_checkpoint, tmp_path):
    """One row per checkpoint with Spearman, spans, slope and verdict; --cards records the sweep in the card."""
    import shutil

    ckpt = tmp_path / "micro.pt"
    shutil.copy(micro_checkpoint, ckpt)
    out, md = tmp_path / "ctrl.json", tmp_path / "ctrl.md"
    r = _mage("bench", "controllability", ckpt, "--targets", "3", "--seeds", "0", "--episodes", "1", "--out", out,
              "--markdown", md, "--cards")
    assert r.returncode == 1 and "ckpt card" in r.stderr  # no card yet (a missing file): it says how to write one
    card = {"task": "pointmaze-umaze", "algo": "mage", "params": 1, "machine": {"cpu": "x", "cores": 2, "torch": "t"},
            "eval": {"episodes": 1, "seeds": [0], "rtg_target": 1.0, "mean": 1.0, "se": 0.0, "normalised_mean": 1.0,
                     "normalised_se": 0.0, "success_rate": 0.0, "reproduce": "mage eval"}}
    (tmp_path / "micro.card.json").write_text(json.dumps(card))
    r = _mage("bench", "controllability", ckpt, "--targets", "3", "--seeds", "0", "--episodes", "1", "--out", out,
              "--markdown", md, "--cards")
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    (row,) = d["rows"]
    assert row["task"] == "pointmaze-umaze" and len(row["rows"]) == 3 and len(row["achieved"]) == 3
    assert row["verdict"] in ("follows the target", "follows the target weakly", "does not follow the target")
    assert {"spearman", "achieved_span", "swept_span", "slope"} <= set(row)
    table = md.read_text()
    assert "| micro.pt | pointmaze-umaze |" in table and row["verdict"] in table
    card = json.loads((tmp_path / "micro.card.json").read_text())
    assert card["controllability"]["verdict"] == row["verdict"]
    assert "controllability" in (tmp_path / "micro.card.md").read_text()
    assert (tmp_path / "micro.sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_pair_writes_a_side_by_side_gif(micro_checkpoint, tmp_path):
    from PIL import Image

    gif = tmp_path / "pair.gif"
    r = _mage("demo", "--checkpoint", micro_checkpoint, "--pair", gif, "--low", "0", "--high", "150")
    assert r.returncode == 0, r.stderr
    assert "low  target" in r.stdout and "high target" in r.stdout
    with Image.open(gif) as im:
        assert im.n_frames > 10 and im.size[0] > 2 * im.size[1]  # two panels side by side
    assert (tmp_path / "pair.png").is_file()
    bad = _mage("demo", "--checkpoint", micro_checkpoint, "--pair", gif, "--low", "9", "--high", "1")
    assert bad.returncode == 2 and "below" in bad.stderr
    bad = _mage("demo", "--checkpoint", micro_checkpoint, "--pair", tmp_path / "pair.mp4")
    assert bad.returncode == 2 and ".gif" in bad.stderr


@pytest.mark.slow
def test_plan_png_and_bad_starts(micro_checkpoint, tmp_path):
    png = tmp_path / "plan.png"
    r = _mage("plan", "--checkpoint", micro_checkpoint, "--start=-1,-1", "--goal=-1,1", "--png", png, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["xy"]) == len(d["scales"]) and png.stat().st_size > 1000
    from PIL import Image

    from mage_core.render import scale_colors
    from mage_core.video import CAPTION_BG

    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[1] == 800 and img.shape[0] > 600  # the 800x600 scene and a caption band under it
    assert (img[620, 2] == CAPTION_BG).all()
    legend = img[:200, 600:]  # the legend box in the top-right corner shows every scale's colour
    for c in scale_colors(len(d["scales"])):
        rgb = np.round(255 * np.asarray(c[:3])).astype(int)
        assert (np.abs(legend.astype(int) - rgb).max(axis=-1) <= 2).any(), f"no legend swatch of colour {rgb}"
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


def test_seed_lists_that_are_not_integers_are_usage_errors(micro_checkpoint):
    r = _mage("eval", "--checkpoint", micro_checkpoint, "--seeds", "0,x")
    assert r.returncode == 2 and "comma-separated integers" in r.stderr and "'0,x'" in r.stderr


def test_demo_names_the_known_tasks_for_an_unknown_one():
    r = _mage("demo", "--task", "antmaze-huge")
    assert r.returncode == 2 and "unknown task 'antmaze-huge'" in r.stderr and "antmaze-umaze" in r.stderr
    assert "Traceback" not in r.stderr


def test_bench_latency_reports_median(micro_checkpoint, tmp_path):
    out = tmp_path / "lat.json"
    r = _mage("bench", "latency", micro_checkpoint, "--repeats", "20", "--warmup", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["rows"][0]
    assert row["algo"] == "mage" and 0 < row["median_ms"] <= row["p95_ms"]


@pytest.mark.parametrize("content,msg", [(b"", "checkpoint"), (b"not a torch file", "checkpoint")])
@pytest.mark.slow
def test_bad_checkpoint_files_are_one_line_errors(tmp_path, content, msg):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    for cmd in (("eval", "--checkpoint", bad), ("plan", "--checkpoint", bad), ("demo", "--checkpoint", bad)):
        r = _mage(*cmd)
        assert r.returncode == 1, (cmd, r.stderr)  # a corrupt file: the work failed, the command line was fine
        assert msg in r.stderr and "Traceback" not in r.stderr
    r = _mage("eval", "--checkpoint", tmp_path / "missing.pt")
    assert r.returncode == 1 and "Traceback" not in r.stderr


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
    assert d["goal_off_centre"] == 0.0 and abs(d["final_to_centre"] - 2.0) < 1e-6  # two cells below the goal's centre
    off = obs.copy()
    off[:, 4:6] += [0.3, -0.4]  # a goal 0.5 off its cell centre
    assert abs(task.suite.episode_diagnostics(task, off, rew)["goal_off_centre"] - 0.5) < 1e-6
    d = task.suite.episode_diagnostics(task, obs, np.zeros(10))
    assert d["first_reach"] is None and d["stall_cell"] == [3, 1] and d["cells_left"] == 6.0


def test_plan_check_counts_the_plans_that_run_into_walls(micro_checkpoint, monkeypatch):
    import numpy as np
    import torch

    from mage_core.plancheck import PlanCheckConfig, check_plans
    from mage_core.planner import Planner
    from mage_core.suites.pointmaze import geometry

    planner = Planner.from_checkpoint(micro_checkpoint)
    g = geometry(planner.task)
    cfg = PlanCheckConfig(episodes=1, every=40, samples=4)
    real = check_plans(planner, cfg)
    K = len(planner.scales)
    assert [r["scale"] for r in real["per_scale"]] == list(range(1, K + 1)) and real["samples"] == 4
    assert real["states"] == len(real["per_state"]) >= 2 and real["per_state"][0]["step"] == 0
    assert all(0.0 <= r["share_infeasible"] <= 1.0 for r in real["per_scale"])

    def decoded_at(cells_by_scale):
        """A decoder whose plan at scale k sits still in cells_by_scale[k] (the batch is K blocks of samples)."""
        def decode(fhat_BCT, cond_BD=None):
            B = fhat_BCT.shape[0]
            x = np.zeros((B, planner.horizon, 1 + planner.obs_dim), np.float32)
            for k, cell in enumerate(cells_by_scale):
                x[k * B // K:(k + 1) * B // K, :, 1:3] = g.cell_to_xy(cell)
            return torch.as_tensor(planner.normaliser.norm_x(x))
        return decode

    # coarse scales inside the wall between the U's arms, the finest scale in a free cell
    monkeypatch.setattr(planner.model, "decode", decoded_at([(2, 1)] * (K - 1) + [(1, 1)]))
    rep = check_plans(planner, cfg)
    assert [r["share_infeasible"] for r in rep["per_scale"]] == [1.0] * (K - 1) + [0.0]
    assert rep["share_infeasible"] == 0.0 and abs(rep["per_scale"][0]["median_depth"] - 0.5) < 1e-4

    from mage_core.errors import MageError

    monkeypatch.setattr(type(planner.task.suite), "has_obstacles", lambda self, task: False)
    with pytest.raises(MageError, match="no obstacles"):
        check_plans(planner, cfg)


@pytest.mark.slow
def test_diagnose_plans_prints_per_scale_shares_and_refuses_tasks_without_walls(micro_checkpoint, tmp_path):
    out = tmp_path / "plans.json"
    r = _mage("diagnose", "--checkpoint", micro_checkpoint, "--plans", "--plan-episodes", "1", "--plan-every", "50",
              "--plan-samples", "2", "--quiet", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "run more than 0.25 cell into a wall" in r.stdout
    d = json.loads(out.read_text())
    assert d["samples"] == 2 and d["checkpoint"] == str(micro_checkpoint) and d["per_scale"][-1]["scale"] > 1
    assert d["share_infeasible"] == d["per_scale"][-1]["share_infeasible"]
    r = _mage("diagnose", "--checkpoint", micro_checkpoint, "--plans", "--plan-threshold", "-1")
    assert r.returncode == 2 and "--plan-threshold" in r.stderr and "Traceback" not in r.stderr


def test_output_into_a_closed_pipe_is_not_a_traceback(tmp_path):
    """A reader that closes the pipe early (`mage ... | head`) ends the command quietly with status 0."""
    script = ("import sys, mage_core.cli.evaluate as e\n"
              "def closed(args):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
              "e.cmd_eval = closed\n"
              "from mage_core.cli import main\n"
              "sys.exit(main(['eval', '--checkpoint', 'x.pt']))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


@pytest.mark.slow
def test_plan_alternatives_write_their_json_and_png(micro_checkpoint, tmp_path):
    png, out = tmp_path / "alts.png", tmp_path / "alts.json"
    r = _mage("plan", "--checkpoint", micro_checkpoint, "--start=-1,-1", "--goal=-1,1", "--alternatives", "3",
              "--scale", "2", "--png", png, "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    alts = d["alternatives"]
    assert d["scale"] == 2 and 2 <= len(alts) <= 3 and [a["rank"] for a in alts] == list(range(1, len(alts) + 1))
    assert len({json.dumps(a["coarse_tokens"]) for a in alts}) == len(alts)  # they differ at scales 1..2
    assert all(a["held_scales"] == 2 and a["coarse_tokens"] == a["tokens"][:2] for a in alts)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert "most likely first" in r.stdout and str(out) in r.stdout
    r = _mage("plan", "--checkpoint", micro_checkpoint, "--alternatives", "2", "--png", png, "--json", "-")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["alternatives"]) >= 1  # stdout holds the JSON only
    bad = _mage("plan", "--checkpoint", micro_checkpoint, "--alternatives", "2", "--scale", "99", "--png", png)
    assert bad.returncode != 0 and "--scale must be from 1 to" in bad.stderr and "Traceback" not in bad.stderr
