"""Merge `mage bench quality` JSONs (run a seed or a few at a time) into one results table of docs/results/.

Rows are pooled exactly from each piece's episode count, mean and standard error, so the pooled mean and s.e. equal
one run over all the episodes. A piece is a `mage bench quality --out` JSON or a table this script wrote; a training
seed given twice for the same task and method is refused. Reads and writes JSON only.

usage: python docs/results/merge_quality.py PIECE.json [PIECE.json ...] --out TABLE.json [--table TITLE] [--notes TEXT]
       [--rename OLD=NEW ...]   (a row's name in the pieces, e.g. kitchen=kitchen-complete: the bench names a task's
                                 default dataset after the task alone)
       [--markdown FILE|-]      (also the table in markdown as docs/BENCHMARKS.md shows it: MAGE's per-seed means in
                                 brackets, the leader in bold, the verdict last)
"""
import argparse
import json
import math
import sys
from pathlib import Path

PER_EPISODE_OR_SEED = ("normalised", "train_wall_s", "target_tuning")  # kept where every piece recorded them


def episodes(r: dict) -> int:
    """A row's episode count (bench JSONs call it n_episodes, the tables of docs/results episodes)."""
    return r["episodes"] if "episodes" in r else r["n_episodes"]


def pooled(rows: list[dict]) -> dict:
    """Mean and standard error of all the rows' episodes together, from each row's count, mean and s.e."""
    n = sum(episodes(r) for r in rows)
    mean = sum(r["mean"] * episodes(r) for r in rows) / n
    sq = sum((episodes(r) - 1) * r["se"] ** 2 * episodes(r) + episodes(r) * r["mean"] ** 2 for r in rows)
    var = (sq - n * mean ** 2) / (n - 1) if n > 1 else 0.0
    return dict(mean=mean, se=math.sqrt(max(var, 0.0) / n), episodes=n)


def row_seeds(piece: dict, r: dict) -> list:
    """A row's training seeds (rows that do not list them: first_seed.., default 0)."""
    first = piece.get("first_seed") or 0
    return r.get("seeds") or list(range(first, first + r["n_seeds"]))


def row_seed_means(r: dict) -> list:
    """A row's per-seed means; None for seeds a row did not record."""
    return r.get("seed_means") or ([r["mean"]] if r["n_seeds"] == 1 else [None] * r["n_seeds"])


def flag_lists(x) -> list[list[str]]:
    """The flag lists (lists of strings, empty included) inside a nested list, in order: a bench piece holds one,
    a merged table one per seed (older merges nested them deeper)."""
    if all(isinstance(e, str) for e in x):
        return [list(x)]
    return [f for e in x for f in flag_lists(e)]


def row_train_flags(piece: dict, r: dict) -> list[list[str]]:
    """A row's `mage train` flags, one list per training seed."""
    n, found = len(row_seeds(piece, r)), flag_lists(r.get("train_flags") or [])
    if all(f == found[0] for f in found):
        return [found[0]] * n
    if len(found) == n:
        return found
    raise SystemExit(f"a row's train_flags do not say which seed had which flags: {r.get('train_flags')}")


def verdict(rows: dict) -> str | None:
    """The bench's MAGE-ahead rule: "yes" when MAGE beats the best baseline by more than twice the standard error of
    the gap, "ahead within noise" when by less, "no" when a baseline is level or ahead; None without both."""
    others = [r for algo, r in rows.items() if not algo.startswith("mage")]
    if "mage" not in rows or not others:
        return None
    mage, best = rows["mage"], max(others, key=lambda r: r["mean"])
    gap = mage["mean"] - best["mean"]
    if gap <= 0:
        return "no"
    return "yes" if gap > 2 * math.hypot(mage["se"], best["se"]) else "ahead within noise"


ALGO_NAMES = {"mage": "MAGE", "mage-track": "MAGE (track)", "bc": "BC", "dt": "Decision Transformer",
              "diffuser": "Diffuser", "iql": "IQL (d3rlpy)"}


def markdown(results: dict, verdicts: dict) -> str:
    """The merged table in markdown: one row per dataset, mean ± s.e. per method (MAGE's per-seed means in brackets
    when it has several seeds), the best mean in bold, and the MAGE-ahead verdict."""
    algos = [a for a in ALGO_NAMES if any(a in by for by in results.values())]
    algos += sorted({a for by in results.values() for a in by} - set(algos))
    lines = ["| data | " + " | ".join(ALGO_NAMES.get(a, a) for a in algos) + " | MAGE ahead? |",
             "| --- |" + " --- |" * (len(algos) + 1)]
    for task, by in results.items():
        best = max(by, key=lambda a: by[a]["mean"])
        cells = []
        for a in algos:
            if a not in by:
                cells.append("—")
                continue
            r = by[a]
            cell = f"{r['mean']:.1f} ± {r['se']:.1f}"
            cell = f"**{cell}**" if a == best else cell
            means = [m for m in r.get("seed_means") or [] if m is not None]
            if a.startswith("mage") and len(means) > 1:
                cell += " (" + " / ".join(f"{m:.1f}" for m in means) + ")"
            cells.append(cell)
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {verdicts.get(task) or '—'} |")
    return "\n".join(lines) + "\n"


def machine_text(m) -> str:
    """One line for a piece's machine record (a dict from the bench, or already a line)."""
    if not isinstance(m, dict):
        return str(m)
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')}, "
            f"{m.get('torch_threads', '?')} torch thread(s), GPU: {m.get('gpu') or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pieces", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", default="", help="the table's title")
    ap.add_argument("--notes", default="")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="rename a row of the pieces")
    ap.add_argument("--markdown", default="", metavar="FILE|-", help="also write the table in markdown (- = stdout)")
    a = ap.parse_args()
    missing = [p for p in a.pieces if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"no such piece: {', '.join(missing)}")
    pieces = [json.loads(Path(p).read_text()) for p in a.pieces]
    renames = dict(r.split("=", 1) for r in a.rename)
    for piece in pieces:
        for key in ("results", "datasets"):
            if key in piece:
                piece[key] = {renames.get(k, k): v for k, v in piece[key].items()}
    parts: dict = {}
    for piece in pieces:
        for task, by in piece["results"].items():
            for algo, r in by.items():
                parts.setdefault(task, {}).setdefault(algo, []).append((piece, r))
    results = {}
    for task, by in parts.items():
        for algo, got in by.items():
            got.sort(key=lambda part: min(row_seeds(*part)))  # per-episode and per-seed lists in training-seed order
            seeds = [sd for piece, r in got for sd in row_seeds(piece, r)]
            if len(set(seeds)) != len(seeds):
                raise SystemExit(f"{task} {algo}: training seed(s) counted twice across the pieces: {sorted(seeds)}")
            by_seed = sorted(zip(seeds, [m for _, r in got for m in row_seed_means(r)]))  # pieces may hold several
            rows = [r for _, r in got]
            results.setdefault(task, {})[algo] = dict(
                **pooled(rows), n_seeds=len(seeds), seeds=[sd for sd, _ in by_seed],
                seed_means=[m for _, m in by_seed], train_flags=[f for piece, r in got for f in row_train_flags(piece, r)],
                rtg_targets=[t for r in rows for t in r.get("rtg_targets", [])],
                **{k: [v for r in rows for v in r[k]] for k in PER_EPISODE_OR_SEED if all(k in r for r in rows)})
    machines = []
    for p in pieces:
        for m in ([p["machine"]] if "machine" in p else p.get("machines") or []):
            if m and machine_text(m) not in machines:
                machines.append(machine_text(m))
    commands = [c for p in pieces for c in (p["command"] if isinstance(p["command"], list) else [p["command"]])]
    eps = sorted({p["episodes_per_seed"] for p in pieces})
    out = dict(table=a.table, command=commands, machine="; ".join(machines), results=results,
               verdicts={task: verdict(by) for task, by in results.items()}, notes=a.notes,
               preset=pieces[0].get("preset"), episodes_per_seed=eps[0] if len(eps) == 1 else eps,
               tune_episodes=pieces[0].get("tune_episodes"), tune_fractions=pieces[0].get("tune_fractions"),
               datasets={k: v for p in pieces for k, v in (p.get("datasets") or {}).items()})
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    if a.markdown:
        md = markdown(results, out["verdicts"])
        print(md, end="") if a.markdown == "-" else Path(a.markdown).write_text(md)
    for task, by in results.items():
        cells = ", ".join(f"{algo} {r['mean']:.1f} ± {r['se']:.1f} ({r['n_seeds']} seeds, {r['episodes']} episodes)"
                          for algo, r in by.items())
        print(f"{task}: {cells}; MAGE ahead: {out['verdicts'][task]}", file=sys.stderr if a.markdown == "-" else None)


if __name__ == "__main__":
    main()
