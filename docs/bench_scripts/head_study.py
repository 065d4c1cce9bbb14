"""Experiment runner (issue 14): how much of the closed-loop score on a maze comes from *which* plan-reading head a
training happens to produce? Refits a head on a frozen checkpoint (refit_head.py) for each (steps, head seed) asked,
scores it with `mage eval --episodes 10 --seeds 0,1` (the study's 20 episodes, the paper's executor) and appends one
JSON row per head to OUT.jsonl (commands, wall times, load average, score).

usage: python docs/bench_scripts/head_study.py CKPT OUT.jsonl NAME --lookahead 16,24,32 --steps 800,2000 --head-seeds 0,1"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("ckpt"); ap.add_argument("out"); ap.add_argument("name")
ap.add_argument("--lookahead", default="16,24,32"); ap.add_argument("--steps", default="800")
ap.add_argument("--head-seeds", default="0"); ap.add_argument("--workdir", default="runs/s5/heads")
ap.add_argument("--eval-seeds", default="0,1")
a = ap.parse_args()
bin_dir = Path(sys.executable).parent
Path(a.workdir).mkdir(parents=True, exist_ok=True)
for steps in [int(v) for v in a.steps.split(",")]:
    for hs in [int(v) for v in a.head_seeds.split(",")]:
        tag = f"{a.name}-la{a.lookahead.replace(',', '_')}-n{steps}-h{hs}"
        pt, ej = f"{a.workdir}/{tag}.pt", f"{a.workdir}/{tag}.eval.json"
        refit = [sys.executable, "docs/bench_scripts/refit_head.py", a.ckpt, pt, "--lookahead", a.lookahead,
                 "--steps", str(steps), "--seed", str(hs)]
        ev = [str(bin_dir / "mage"), "eval", "--checkpoint", pt, "--episodes", "10", "--seeds", a.eval_seeds,
              "--threads", "1", "--quiet", "--json", ej]
        load0 = os.getloadavg()[0]
        t0 = time.time()
        log = subprocess.run(refit, capture_output=True, text=True, check=True).stdout
        t1 = time.time()
        subprocess.run(ev, capture_output=True, text=True, check=True)
        t2 = time.time()
        res = json.loads(Path(ej).read_text())
        held = [l for l in log.splitlines() if l.startswith("held-out")]
        row = dict(source=a.ckpt, name=a.name, lookahead=a.lookahead, head_steps=steps, head_seed=hs,
                   refit_cmd=" ".join(refit[1:]), eval_cmd="mage " + " ".join(ev[1:]),
                   normalised=res.get("normalised_mean"), normalised_se=res.get("normalised_se"),
                   success=res.get("success_rate"), episodes=res.get("n"), heldout=held[-1] if held else "",
                   refit_wall_s=round(t1 - t0, 1), eval_wall_s=round(t2 - t1, 1), load_start=load0,
                   load_end=os.getloadavg()[0])
        with open(a.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(tag, row["normalised"], row["success"], flush=True)
