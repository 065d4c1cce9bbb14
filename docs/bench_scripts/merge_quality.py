"""Merge `mage bench quality` JSONs run a seed (or a few) at a time into one table: rows pooled exactly from each
piece's episode count, mean and standard error (the pooled mean and s.e. equal one run over all the episodes).

usage: python docs/bench_scripts/merge_quality.py PIECE.json [PIECE.json ...] --out MERGED.json [--markdown F.md]"""
import argparse
import json
from pathlib import Path

from mage_core.quality import markdown_table, pool_rows

ap = argparse.ArgumentParser()
ap.add_argument("pieces", nargs="+")
ap.add_argument("--out", required=True)
ap.add_argument("--markdown", default=None)
a = ap.parse_args()
pieces = [json.loads(Path(p).read_text()) for p in a.pieces]


def row_seeds(piece: dict, r: dict) -> list:
    """A row's training seeds (rows written before the bench recorded them: first_seed.., default 0)."""
    return r.get("seeds") or list(range(piece.get("first_seed", 0), piece.get("first_seed", 0) + r["n_seeds"]))


def row_seed_means(r: dict) -> list:
    """A row's per-seed means; None for seeds of rows written before the bench recorded them."""
    return r.get("seed_means") or ([r["mean"]] if r["n_seeds"] == 1 else [None] * r["n_seeds"])


merged = {}
for piece in pieces:
    for task, by in piece["results"].items():
        for algo, r in by.items():
            merged.setdefault(task, {}).setdefault(algo, []).append((piece, r))
results = {}
for task, by in merged.items():
    for algo, parts in by.items():
        seeds = [sd for piece, r in parts for sd in row_seeds(piece, r)]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"{task} {algo}: training seed(s) counted twice across the pieces: {sorted(seeds)}")
        by_seed = sorted(zip(seeds, [m for _, r in parts for m in row_seed_means(r)]))  # seed order, not piece order
        results.setdefault(task, {})[algo] = dict(
            **pool_rows([r for _, r in parts]), n_seeds=len(seeds), seeds=[sd for sd, _ in by_seed],
            seed_means=[m for _, m in by_seed],
            train_flags=[r.get("train_flags", []) for _, r in parts],
            rtg_targets=[t for _, r in parts for t in r["rtg_targets"]],
            **{k: [v for _, r in parts for v in r[k]] for k in ("normalised", "train_wall_s", "target_tuning")
               if all(k in r for _, r in parts)})  # per episode / per seed, where every piece recorded them
eps = {p["episodes_per_seed"] for p in pieces}
out = dict(command="merged: " + " | ".join(p["command"] for p in pieces), pieces=a.pieces, preset=pieces[0]["preset"],
           seeds=max(r["n_seeds"] for by in results.values() for r in by.values()),
           episodes_per_seed=eps.pop() if len(eps) == 1 else sorted(eps), tune_episodes=pieces[0].get("tune_episodes"),
           tune_fractions=pieces[0].get("tune_fractions"), datasets=pieces[0].get("datasets"), results=results,
           machines=[p.get("machine") for p in pieces])
Path(a.out).write_text(json.dumps(out, indent=1))
table = markdown_table(out)
print(table)
if a.markdown:
    Path(a.markdown).write_text(table + "\n")
