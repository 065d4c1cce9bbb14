"""Pool `mage eval --json` results (one per method and training seed) into one bench-style row per method, with the
bench's MAGE-ahead verdict: for evaluations longer than the bench's 10 episodes per seed.

usage: python docs/bench_scripts/pool_evals.py --task TASK METHOD=EVAL.json [METHOD=EVAL.json ...] --out F.json
       [--markdown F.md]    (METHOD: mage, bc, iql, dt, diffuser; several files per method pool their episodes)"""
import argparse
import json
from pathlib import Path

import numpy as np

from mage_core.quality import markdown_table

ap = argparse.ArgumentParser()
ap.add_argument("--task", required=True)
ap.add_argument("pieces", nargs="+", help="METHOD=EVAL.json")
ap.add_argument("--out", required=True)
ap.add_argument("--markdown", default=None)
ap.add_argument("--preset", default="small", help="the training preset named in the table's note")
a = ap.parse_args()

rows: dict[str, dict] = {}
for piece in a.pieces:
    method, _, path = piece.partition("=")
    if not path:
        ap.error(f"{piece!r}: expected METHOD=EVAL.json")
    ev = json.loads(Path(path).read_text())
    lo, hi = ev["ref_min_score"], ev["ref_max_score"]
    norm = [100.0 * (r - lo) / (hi - lo) for r in ev["returns"]]
    row = rows.setdefault(method, dict(normalised=[], seed_means=[], successes=[], eval_seeds=[], rtg_targets=[],
                                        checkpoints=[]))
    row["normalised"] += norm
    row["seed_means"].append(float(np.mean(norm)))
    row["successes"] += [bool(s) for s in ev["successes"]]
    row["eval_seeds"].append(sorted(set(ev["seeds"])))
    row["rtg_targets"].append(ev["extra"].get("rtg_target"))
    row["checkpoints"].append(ev["extra"]["checkpoint"])
for row in rows.values():
    n = len(row["normalised"])
    row.update(mean=float(np.mean(row["normalised"])), n_episodes=n, n_seeds=len(row["seed_means"]),
               se=float(np.std(row["normalised"], ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
               success_rate=float(np.mean(row["successes"])))
first = next(iter(rows.values()))
out = dict(results={a.task: rows}, sources=a.pieces, preset=a.preset, seeds=first["n_seeds"],
           episodes_per_seed=first["n_episodes"] // first["n_seeds"])
Path(a.out).write_text(json.dumps(out, indent=1))
table = markdown_table(out)
print(table)
for m, r in rows.items():
    print(f"{m}: per seed {', '.join(f'{v:.1f}' for v in r['seed_means'])}; success {r['success_rate']:.0%} of {r['n_episodes']}")
if a.markdown:
    Path(a.markdown).write_text(table + "\n")
