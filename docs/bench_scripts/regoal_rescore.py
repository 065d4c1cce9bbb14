"""Issue 14: re-score study checkpoints with the condition cap after leaving the goal (`mage eval --regoal-steps N`)
on the same evaluation episodes as their study rows, and append one JSON row per (checkpoint, N) to a results file.

usage: python docs/bench_scripts/regoal_rescore.py OUT.jsonl N[,N...] CKPT [CKPT ...] [--seeds 0,1] [--episodes 10]"""
import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("steps")
ap.add_argument("ckpts", nargs="+")
ap.add_argument("--seeds", default="0,1")
ap.add_argument("--episodes", type=int, default=10)
a = ap.parse_args()
for ckpt in a.ckpts:
    for n in a.steps.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            js = Path(tmp) / "eval.json"
            cmd = ["mage", "eval", "--checkpoint", ckpt, "--episodes", str(a.episodes), "--seeds", a.seeds,
                   "--quiet", "--threads", "1", "--regoal-steps", n, "--json", str(js)]
            t0 = time.time()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ev = json.loads(js.read_text())
        row = {"checkpoint": ckpt, "regoal_steps": int(n), "eval_cmd": " ".join(cmd), "normalised": ev["normalised_mean"],
               "normalised_se": ev["normalised_se"], "success": ev["success_rate"], "episodes": ev["n"],
               "eval_wall_s": round(time.time() - t0, 1)}
        with open(a.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{ckpt}  regoal {n}: {row['normalised']:.1f} ± {row['normalised_se']:.1f}", flush=True)
