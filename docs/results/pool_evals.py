"""Pool `mage eval --json` results (one per method and training seed) into one results table of docs/results/.

For evaluations longer than the bench's 10 episodes per seed: one row per method with every episode's normalised
score, the per-seed means and the success rate, and the bench's MAGE-ahead verdict. Reads and writes JSON only.

usage: python docs/results/pool_evals.py --task TASK METHOD=EVAL.json [METHOD=EVAL.json ...] --out TABLE.json
       [--table TITLE] [--notes TEXT]    (METHOD: mage, bc, iql, dt, diffuser; several files per method pool)
"""
import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from merge_quality import verdict  # the script's own folder is on the path: the same rule as the merged tables


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", required=True)
    ap.add_argument("pieces", nargs="+", help="METHOD=EVAL.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", default="", help="the table's title")
    ap.add_argument("--notes", default="")
    ap.add_argument("--preset", default="small", help="the training preset of the checkpoints")
    ap.add_argument("--machine", default="", help="where the evaluations ran")
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
        row["seed_means"].append(statistics.fmean(norm))
        row["successes"] += [bool(s) for s in ev["successes"]]
        row["eval_seeds"].append(sorted(set(ev["seeds"])))
        row["rtg_targets"].append(ev["extra"].get("rtg_target"))
        row["checkpoints"].append(ev["extra"]["checkpoint"])
    for row in rows.values():
        n = len(row["normalised"])
        row.update(mean=statistics.fmean(row["normalised"]), episodes=n, n_seeds=len(row["seed_means"]),
                   se=statistics.stdev(row["normalised"]) / math.sqrt(n) if n > 1 else 0.0,
                   success_rate=sum(row["successes"]) / n)
    first = next(iter(rows.values()))
    out = dict(table=a.table, command=["python " + " ".join(sys.argv)], machine=a.machine, results={a.task: rows},
               verdicts={a.task: verdict(rows)}, notes=a.notes, preset=a.preset,
               episodes_per_seed=first["episodes"] // first["n_seeds"])
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    for m, r in rows.items():
        print(f"{m}: {r['mean']:.1f} ± {r['se']:.1f}; per seed {', '.join(f'{v:.1f}' for v in r['seed_means'])}; "
              f"success {r['success_rate']:.0%} of {r['episodes']}")
    print(f"MAGE ahead: {out['verdicts'][a.task]}")


if __name__ == "__main__":
    main()
