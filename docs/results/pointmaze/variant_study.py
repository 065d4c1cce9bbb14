"""Variant runner: train one MAGE variant with `mage train` flags, score it with `mage eval`, append one JSON row.

The row (commands, seeds, score, wall times, machine load) goes to a JSON-lines file; the rows of
docs/results/pointmaze/variants.json were made this way. Re-running a finished variant only re-reads its row; an
interrupted training resumes from its checkpoint. Uses the `mage` command line only.

usage: python docs/results/pointmaze/variant_study.py TASK NAME SEED [--eval-seeds 0,1] [--episodes 10]
           [--results runs/study/TASK.jsonl] [--eval-flags "..."] -- [mage train flags ...]"""
import argparse
import json
import os
import subprocess
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("task")
ap.add_argument("name")
ap.add_argument("seed", type=int)
ap.add_argument("--eval-seeds", default="0,1")
ap.add_argument("--episodes", type=int, default=10)
ap.add_argument("--results", default=None)
ap.add_argument("--eval-flags", default="", help="extra `mage eval` flags, e.g. '--temperature 0.5'")
ap.add_argument("train_flags", nargs=argparse.REMAINDER)
a = ap.parse_args()
flags = [f for f in a.train_flags if f != "--"]
results = Path(a.results or f"runs/study/{a.task}.jsonl")
ckpt = Path("runs/study") / a.task / f"{a.name}-s{a.seed}.pt"
ckpt.parent.mkdir(parents=True, exist_ok=True)
train_cmd = ["mage", "train", "--task", a.task, "--seed", str(a.seed), "--threads", "1", "--no-progress",
             "--out", str(ckpt), *flags]
done = ckpt.exists() and ckpt.with_suffix(".done").exists()
t0 = time.time()
load0 = os.getloadavg()[0]
if not done:
    cmd = ["mage", "train", "--resume", str(ckpt), "--threads", "1", "--no-progress"] if ckpt.exists() else train_cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ckpt.with_suffix(".done").write_text(json.dumps({"train_wall_s": time.time() - t0, "load_start": load0,
                                                      "load_end": os.getloadavg()[0]}))
train_info = json.loads(ckpt.with_suffix(".done").read_text())
ev_json = ckpt.with_suffix(".eval.json")
eval_cmd = ["mage", "eval", "--checkpoint", str(ckpt), "--episodes", str(a.episodes), "--seeds", a.eval_seeds,
            "--quiet", "--json", str(ev_json), *a.eval_flags.split()]
t1 = time.time()
subprocess.run(eval_cmd, check=True, stdout=subprocess.DEVNULL)
ev = json.loads(ev_json.read_text())
row = {"task": a.task, "variant": a.name, "train_seed": a.seed, "train_flags": flags, "eval_flags": a.eval_flags,
       "train_cmd": " ".join(train_cmd), "eval_cmd": " ".join(eval_cmd),
       "normalised": ev.get("normalised_mean"), "normalised_se": ev.get("normalised_se"),
       "success": ev.get("success_rate"), "episodes": ev.get("n"),
       "regoal_steps": ev.get("extra", {}).get("regoal_steps"), **train_info,
       "eval_wall_s": round(time.time() - t1, 1)}
with results.open("a") as fh:
    fh.write(json.dumps(row) + "\n")
print(json.dumps(row))
