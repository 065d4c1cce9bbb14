"""`mage bench quality`: train (or reuse) every method on every task and score them side by side, same evaluator."""
from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mage_core.errors import MageError, UsageError, usage_errors

ALGO_NAMES = {"mage": "MAGE", "mage-track": "MAGE + PD plan tracking", "bc": "BC", "dt": "Decision Transformer",
              "diffuser": "Diffuser", "iql": "IQL (d3rlpy)"}  # table labels
VARIANTS = {"mage-track": ("mage", {"executor": "track"})}  # rows that reuse another method's checkpoint
TUNE_FRACTIONS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # return targets tried, as fractions of a method's default target
TUNE_SEED_OFFSET = 1000  # targets are chosen on evaluation seeds seed + 1000, never on the reported ones


def row_name(task, dataset: str | None) -> str:
    """The result row and cache key of `task` trained on `dataset`: the task name for its default dataset (no
    --dataset, or the task's own id), `<task>-<variant>` for the suite's other generated datasets
    (mage/adroit-door/human-v0 -> adroit-door-human), `<task>-<name>-<hash>` for any other id or path."""
    if dataset is None or str(dataset) == task.dataset_id:
        return task.name
    ds = str(dataset)
    m = re.fullmatch(rf"mage/{re.escape(task.name)}/([A-Za-z0-9_.-]+?)-v\d+", ds)
    if m:
        return f"{task.name}-{m.group(1)}"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(ds.rstrip("/")).stem).strip("-.") or "data"
    return f"{task.name}-{stem}-{hashlib.sha1(ds.encode()).hexdigest()[:6]}"


def checkpoint_path(cache: Path, row: str, algo: str, seed: int) -> Path:
    return cache / row / f"seed{seed}" / f"{row}-{algo}.pt"


def same_dataset(a: str | None, b: str | None) -> bool:
    """Whether two dataset ids (or paths) name the same data."""
    if a is None or b is None:
        return a == b
    a, b = str(a), str(b)
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def trained_on(path: Path) -> str | None:
    from mage_core.checkpoint import load_checkpoint

    return (load_checkpoint(path).get("dataset") or {}).get("id")


def cached_checkpoint(cache: Path, task, dataset_id: str, algo: str, seed: int) -> Path:
    """Where `algo` trained on `dataset_id` with `seed` is cached. A checkpoint already there that was trained on
    other data is refused (never silently reused). Rows of non-default datasets also find checkpoints cached under
    the task's name (the cache's older layout), if those were trained on the same dataset."""
    row = row_name(task, dataset_id)
    path = checkpoint_path(cache, row, algo, seed)
    if path.is_file():
        got = trained_on(path)
        if got is not None and not same_dataset(got, dataset_id):
            raise MageError(f"cached checkpoint {path} was trained on {got}, not {dataset_id}; "
                            "delete it or use another --cache")
        return path
    by_task = checkpoint_path(cache, task.name, algo, seed)
    if row != task.name and by_task.is_file() and same_dataset(trained_on(by_task), dataset_id):
        return by_task
    return path


def flags_tag(algo: str, flags: list[str]) -> str:
    """The cache name of `algo` trained with extra `mage train` flags: the bare name without flags, else the name
    plus a short hash of the flags, so a checkpoint trained with other flags is never reused for this row."""
    if not flags:
        return algo
    return f"{algo}+{hashlib.sha1(' '.join(flags).encode()).hexdigest()[:8]}"


def finished(path: Path) -> bool:
    """Whether a checkpoint file holds a finished run: `mage train` writes its periodic checkpoints to the same path
    with train_state.done False, so a file left by an interrupted run is not a result."""
    from mage_core.checkpoint import load_checkpoint

    return bool((load_checkpoint(path).get("train_state") or {}).get("done", True))


def train_if_missing(path: Path, task: str, algo: str, seed: int, preset: str, dataset: str | None,
                     steps_scale: float, threads: int, extra_flags: list[str] = ()) -> float:
    """Train with the `mage train` CLI in a subprocess unless the checkpoint is cached; a cached run that was
    interrupted is resumed exactly (`mage train --resume`), never scored as if finished. Returns wall seconds (0 if
    a finished checkpoint was cached)."""
    if path.is_file() and finished(path):
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        print(f"[bench] {path} is an interrupted run: resuming it", file=sys.stderr)
        cmd = [sys.executable, "-m", "mage_core", "train", "--algo", algo, "--resume", str(path),
               "--threads", str(threads), "--no-progress"]
    else:
        cmd = [sys.executable, "-m", "mage_core", "train", "--algo", algo, "--preset", preset, "--seed", str(seed),
               "--out", str(path), "--threads", str(threads), "--no-progress"]
        cmd += ["--dataset", dataset] if dataset else ["--task", task]
        if steps_scale != 1.0:
            cmd += ["--steps-scale", str(steps_scale)]
        cmd += list(extra_flags)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        last = ((r.stderr or r.stdout).strip().splitlines() or ["(no output)"])[-1]
        raise MageError(f"training {algo} on {task} failed: {last}")
    return time.perf_counter() - t0


HARNESS_TRAIN_FLAGS = ("--algo", "--preset", "--seed", "--out", "--threads", "--dataset", "--task", "--steps-scale",
                       "--resume")  # `mage train` flags the harness sets itself; --mage-flags may not repeat them


def check_mage_flags(flags: list[str]) -> None:
    """Refuse --mage-flags that `mage train` would reject, or that the harness sets itself, before anything trains."""
    import argparse

    from mage_core.train_command import add_train_arguments

    class _Refusing(argparse.ArgumentParser):
        def error(self, message):
            raise UsageError(f"--mage-flags {' '.join(flags)!r}: `mage train` says: {message}")

    own = [f for f in flags if f.split("=", 1)[0] in HARNESS_TRAIN_FLAGS]
    if own:
        raise UsageError(f"--mage-flags may not set {', '.join(own)}: the harness sets "
                        f"{', '.join(HARNESS_TRAIN_FLAGS)} itself (use the bench's own options)")
    parser = _Refusing(prog="mage train")
    add_train_arguments(parser)
    parser.parse_args(["--task", "pointmaze-umaze", *flags])


def default_target(policy) -> float | None:
    """The episode return target an RTG-conditioned policy (MAGE, DT) acts for; None for methods that take none."""
    target = getattr(policy, "target", None)
    return None if target is None else float(target)


def evaluate_checkpoint(ckpt, episodes: int, seed: int, rtg_target: float | None = None, **policy_kw) -> dict:
    """Score one checkpoint (a path or an already loaded dict) on the evaluation protocol."""
    from mage_core.evaluate import evaluate
    from mage_core.policies import checkpoint_ref_scores, load_policy

    policy, task, meta = load_policy(ckpt, rtg_target=rtg_target, seed=seed, **policy_kw)
    ref = checkpoint_ref_scores(meta, task)
    if ref is None:
        raise MageError(f"{task.name} checkpoint: no reference scores in it or its dataset; cannot normalise")
    res = evaluate(task, policy, episodes=episodes, seeds=(seed,), ref_scores=ref)
    return dict(returns=res.returns, successes=res.successes, ref=list(ref), mean=res.mean, target=default_target(policy),
                normalised=[float(v) for v in res.normalise(res.returns)])


def tune_target(ckpt, seed: int, episodes: int, **policy_kw) -> tuple[float | None, dict]:
    """Pick the return target of an RTG-conditioned method the way DT's authors pick theirs per environment: try
    TUNE_FRACTIONS of its default target on held-out seeds (seed + TUNE_SEED_OFFSET) and keep the best mean score.
    Returns (target, {target: normalised mean}); (None, {}) for methods that take no target."""
    from mage_core.policies import load_policy

    default = default_target(load_policy(ckpt, seed=seed, **policy_kw)[0])
    if default is None:
        return None, {}
    tried = {}
    for frac in TUNE_FRACTIONS:
        ev = evaluate_checkpoint(ckpt, episodes, seed + TUNE_SEED_OFFSET, rtg_target=round(frac * default, 2), **policy_kw)
        tried.setdefault(ev["target"], float(np.mean(ev["normalised"])))  # keyed by the target after range clamping
    return max(tried, key=tried.get), tried


def run_quality(args) -> dict:
    import torch

    from mage_core.bench import machine, write_json
    from mage_core.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    from mage_core.algos import ALGOS
    from mage_core.tasks import get_task

    tasks = [t for t in args.tasks.split(",") if t]
    algos = [a for a in args.algos.split(",") if a]
    with usage_errors():
        for t in tasks:
            get_task(t)  # unknown task: a clear error before anything is trained
    unknown = [a for a in algos if a not in (*ALGOS, *VARIANTS)]
    if unknown:
        raise UsageError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join((*ALGOS, *VARIANTS))}")
    if args.dataset and len(tasks) > 1:
        raise UsageError(f"--dataset {args.dataset} names one dataset; give one task with it, not {len(tasks)}")
    cache = Path(args.cache)
    first_seed = args.first_seed
    if first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {first_seed}")
    seeds = list(range(first_seed, first_seed + args.seeds))
    mage_flags = shlex.split(args.mage_flags)
    if mage_flags:
        if not any(VARIANTS.get(a, (a, {}))[0] == "mage" for a in algos):
            raise UsageError(f"--mage-flags is for MAGE, but --algos {args.algos} trains no MAGE checkpoint")
        check_mage_flags(mage_flags)
    results, datasets = {}, {}
    for name in tasks:
        dataset_id = args.dataset or get_task(name).dataset_id
        task = row_name(get_task(name), dataset_id)  # the row: adroit-door, adroit-door-human, ...
        datasets[task] = dict(task=name, dataset=str(dataset_id))
        for algo in algos:
            norm, train_s, targets, tuning, seed_means = [], [], [], [], []
            base, policy_kw = VARIANTS.get(algo, (algo, {}))
            flags = mage_flags if base == "mage" else []
            for seed in seeds:
                path = cached_checkpoint(cache, get_task(name), dataset_id, flags_tag(base, flags), seed)
                print(f"[{task} {algo} seed {seed}] {'reusing' if path.is_file() else 'training'} {path}", file=sys.stderr)
                train_s.append(train_if_missing(path, name, base, seed, args.preset, args.dataset, args.steps_scale, 1,
                                                flags))
                ckpt = load_checkpoint(path)  # once: tuning and the evaluation reuse it
                target, tried = (None, {})
                if args.tune_episodes > 0:
                    target, tried = tune_target(ckpt, seed, args.tune_episodes, **policy_kw)
                    if tried:
                        print(f"[{task} {algo} seed {seed}] target tuning {tried} -> {target}", file=sys.stderr)
                ev = evaluate_checkpoint(ckpt, args.episodes, seed, rtg_target=target, **policy_kw)
                norm += ev["normalised"]
                seed_means.append(float(np.mean(ev["normalised"])))
                targets.append(ev["target"])
                tuning.append({str(g): v for g, v in tried.items()})
                print(f"[{task} {algo} seed {seed}] normalised {seed_means[-1]:.1f}", file=sys.stderr)
            n = len(norm)
            se = float(np.std(norm, ddof=1) / np.sqrt(n)) if n > 1 else 0.0
            results.setdefault(task, {})[algo] = dict(mean=float(np.mean(norm)), se=se, n_episodes=n,
                                                      n_seeds=args.seeds, seeds=seeds, seed_means=seed_means,
                                                      normalised=[float(v) for v in norm], train_flags=flags,
                                                      train_wall_s=train_s, rtg_targets=targets,
                                                      target_tuning=tuning)
    out = dict(command=shlex.join(["mage"] + sys.argv[1:]),  # as a reader types it (quoted), whatever path launched it
               preset=args.preset, seeds=args.seeds, first_seed=first_seed,
               mage_flags=mage_flags, episodes_per_seed=args.episodes,
               tune_episodes=args.tune_episodes, tune_fractions=list(TUNE_FRACTIONS),
               datasets=datasets, results=results, machine=machine())
    write_json(out, args.out)
    table = markdown_table(out)
    print(table, file=sys.stderr if str(args.out) == "-" else sys.stdout)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return out


def pool_rows(rows: list[dict]) -> dict:
    """One row from several pieces of the same method and task (each with n_episodes, mean, se): the mean and
    standard error of all their episodes together, recovered exactly from each piece's sample variance."""
    n = sum(r["n_episodes"] for r in rows)
    mean = sum(r["mean"] * r["n_episodes"] for r in rows) / n
    sq = sum((r["n_episodes"] - 1) * r["se"] ** 2 * r["n_episodes"] + r["n_episodes"] * r["mean"] ** 2 for r in rows)
    var = (sq - n * mean ** 2) / (n - 1) if n > 1 else 0.0
    return dict(mean=mean, se=float(np.sqrt(max(var, 0.0) / n)), n_episodes=n)


def ahead_verdict(row: dict, others: list[dict]) -> str:
    """Whether a row's mean beats every other row's: "yes" when even the closest is behind by more than twice the
    standard error of the difference, "ahead within noise" when the gap is smaller, "no" when one is level or ahead."""
    closest = max(others, key=lambda o: o["mean"])
    gap = row["mean"] - closest["mean"]
    if gap <= 0:
        return "no"
    return "yes" if gap > 2 * (row["se"] ** 2 + closest["se"] ** 2) ** 0.5 else "ahead within noise"


def markdown_table(out: dict) -> str:
    """One row per task, one column per method: normalised mean ± s.e.; the best mean in bold; MAGE-ahead verdict."""
    results = out["results"]
    algos = list(next(iter(results.values())).keys()) if results else []
    head = "| task | " + " | ".join(ALGO_NAMES.get(a, a) for a in algos) + " | MAGE ahead of every baseline? |"
    rows = [head, "|" + " --- |" * (len(algos) + 2)]
    for task, by in results.items():
        best = max(by, key=lambda a: by[a]["mean"])
        cells = []
        for a in algos:
            c = f"{by[a]['mean']:.1f} ± {by[a]['se']:.1f}"
            cells.append(f"**{c}**" if a == best else c)
        verdict = "—"
        others = [a for a in by if not a.startswith("mage")]
        if "mage" in by and others:
            verdict = ahead_verdict(by["mage"], [by[a] for a in others])
            if "mage-track" in by:
                verdict += f" (with plan tracking: {ahead_verdict(by['mage-track'], [by[a] for a in others])})"
        rows.append(f"| {task} | " + " | ".join(cells) + f" | {verdict} |")
    n = next(iter(next(iter(results.values())).values()))["n_episodes"] if results else 0
    rows.append(f"\nNormalised score (100 = the noise-free expert, 0 = random), mean ± standard error over {n} episodes "
                f"({out['seeds']} training seed(s) × {out['episodes_per_seed']} episodes), preset `{out['preset']}`." +
                (" Verdict \"yes\": MAGE's mean beats the best baseline's by more than twice the standard error of the "
                 "gap; \"ahead within noise\": by less." if "mage" in algos and len(algos) > 1 else ""))
    if out.get("first_seed"):
        last = out["first_seed"] + out["seeds"] - 1
        rows.append(f"Training seed {last}." if out["seeds"] == 1 else f"Training seeds {out['first_seed']}..{last}.")
    if out.get("mage_flags"):
        rows.append(f"MAGE trained with `{' '.join(out['mage_flags'])}`.")
    if out.get("tune_episodes") and any(a.startswith(("mage", "dt")) for a in algos):
        rows.append(f"Return targets of MAGE and DT chosen per checkpoint from {out['tune_fractions']} × the default "
                    f"on {out['tune_episodes']} episodes of held-out seeds (seed + {TUNE_SEED_OFFSET}).")
    return "\n".join(rows)
