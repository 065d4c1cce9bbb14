"""RTG controllability: sweep a checkpoint's return-to-go target over a range and judge whether the return follows."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from mage_core.evaluate import episode_seed, spearman

# The design's controllability target: rank correlation at least this ...
FOLLOW_SPEARMAN = 0.9
# ... AND the achieved normalised score moving by at least this many points from the lowest to the highest target.
FOLLOW_SPAN = 50.0
# Below this achieved span (normalised points) the return does not follow the target, whatever the rank says.
FLAT_SPAN = 15.0
# A rank correlation below this is no evidence of following, whatever the span.
WEAK_SPEARMAN = 0.5


@dataclass
class SweepRow:
    """One RTG target of a sweep: what the closed loop achieved over its episodes."""

    target: float  # the RTG target (raw episode return)
    mean: float  # achieved return, mean over episodes
    se: float  # its standard error
    normalised_mean: float | None  # achieved normalised score, mean (None without reference scores)
    success_rate: float | None  # share of episodes that succeeded (None where the task has no success signal)
    episodes: int  # episodes behind this row


@dataclass
class SweepSummary:
    """A sweep's numbers and verdict; spans are in normalised points when the task has reference scores."""

    spearman: float  # rank correlation of target and achieved return (nan with < 3 targets or a constant side)
    achieved_span: float  # achieved score at the highest target minus at the lowest target
    achieved_range: float  # highest minus lowest achieved score over all targets
    swept_span: float  # highest minus lowest target, on the same scale
    slope: float  # least-squares slope of achieved score on target (1 = follows exactly, 0 = ignores it)
    normalised: bool  # whether the spans and slope are normalised scores (else raw returns)
    verdict: str  # "follows the target", "follows the target weakly" or "does not follow the target"
    rows: list[SweepRow] = field(default_factory=list)  # the sweep itself, lowest target first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spearman"] = None if math.isnan(self.spearman) else self.spearman
        return d

    def caption(self) -> str:
        """One line for a plot caption or a terminal: verdict first, then what it rests on."""
        unit = "normalised points" if self.normalised else "return"
        rho = "n/a" if math.isnan(self.spearman) else f"{self.spearman:.2f}"
        return (f"{self.verdict}: achieved moves {self.achieved_span:+.0f} {unit} over a swept span of "
                f"{self.swept_span:.0f} (slope {self.slope:.2f}, Spearman {rho})")


def judge(spearman_rho: float, achieved_span: float) -> str:
    """The verdict never rests on rank alone: a small span does not follow, however well ranked."""
    if math.isnan(spearman_rho) or achieved_span < FLAT_SPAN or spearman_rho < WEAK_SPEARMAN:
        return "does not follow the target"
    if spearman_rho >= FOLLOW_SPEARMAN and achieved_span >= FOLLOW_SPAN:
        return "follows the target"
    return "follows the target weakly"


def summarise(rows: Sequence[SweepRow], ref_scores: tuple[float, float] | None = None) -> SweepSummary:
    """Spans, slope, rank and verdict of a sweep; with reference scores (min, max) everything is normalised."""
    rows = sorted(rows, key=lambda r: r.target)
    t_N = np.array([r.target for r in rows], float)
    y_N = np.array([r.mean for r in rows], float)
    normalised = ref_scores is not None and ref_scores[1] != ref_scores[0]
    if normalised:
        lo, hi = ref_scores
        t_N = 100.0 * (t_N - lo) / (hi - lo)
        y_N = 100.0 * (y_N - lo) / (hi - lo)
    rho = spearman(t_N, y_N)
    slope = float(np.polyfit(t_N, y_N, 1)[0]) if len(rows) >= 2 and np.ptp(t_N) > 0 else float("nan")
    span = float(y_N[-1] - y_N[0]) if len(rows) else float("nan")
    return SweepSummary(spearman=rho, achieved_span=span, achieved_range=float(np.ptp(y_N)) if len(rows) else 0.0,
                        swept_span=float(np.ptp(t_N)) if len(rows) else 0.0, slope=slope, normalised=normalised,
                        verdict=judge(rho, span), rows=list(rows))


def sweep_targets(lo: float, hi: float, n: int) -> list[float]:
    """n targets evenly spread over [lo, hi] (the data's return range), rounded to 0.1."""
    if n < 1:
        raise ValueError("a sweep needs at least one target")
    return np.linspace(lo, hi, n).round(1).tolist()


def feasible_high(planner, task, seeds: Sequence[int], episodes: int) -> float | None:
    """The median, over the evaluation starts, of the highest return the data supports from the start (the planner's
    ceiling model); targets above it are limited to it when acting, so a sweep beyond it measures one behaviour
    several times. None when the checkpoint has no ceiling model."""
    from mage_core.render import MODEL_LOCK

    if getattr(planner, "ceiling", None) is None:
        return None
    with MODEL_LOCK:
        env = task.make_env(mode="eval")
    try:
        obs_ND = np.stack([task.flatten_obs(env.reset(seed=episode_seed(s, e))[0]) for s in seeds
                           for e in range(episodes)]).astype(np.float32)
    finally:
        env.close()
    ceiling_N = planner.rtg_ceiling(obs_ND)
    return None if ceiling_N is None else float(np.median(ceiling_N))


def run_sweep(evaluate_at: Callable[[float], object], targets: Sequence[float],
              ref_scores: tuple[float, float] | None, on_row: Callable[[SweepRow], None] | None = None
              ) -> SweepSummary:
    """Evaluate at each target (`evaluate_at(target)` returns an EvalResult-like object with mean, se,
    normalised_mean, successes and returns) and summarise; `on_row` sees each row as it lands."""
    rows = []
    for g in targets:
        res = evaluate_at(float(g))
        succ = getattr(res, "successes", None)
        if hasattr(res, "success_rate"):  # an EvalResult: None where the task has no goal (a fall is no failure)
            rate = None if res.success_rate is None else float(res.success_rate)
        else:
            rate = float(np.mean(succ)) if succ is not None and len(succ) else None
        row = SweepRow(target=float(g), mean=float(res.mean), se=float(res.se),
                       normalised_mean=None if res.normalised_mean is None else float(res.normalised_mean),
                       success_rate=rate,
                       episodes=len(getattr(res, "returns", []) or []))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return summarise(rows, ref_scores)


def plot_sweep(summary: SweepSummary, path: str, title: str = "") -> None:
    """Target against achieved (normalised where possible) with y = x, the span and the verdict in the caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary.rows
    t = np.array([r.target for r in rows], float)
    m = np.array([r.mean for r in rows], float)
    s = np.array([r.se for r in rows], float)
    fig, ax = plt.subplots(figsize=(6, 4.4), dpi=120)
    lo, hi = float(min(t.min(), m.min())), float(max(t.max(), m.max()))
    ax.plot([lo, hi], [lo, hi], ls="--", color="#999", lw=1, label="achieved = target")
    ax.errorbar(t, m, yerr=s, marker="o", color="#3b6fd8", capsize=3, label="achieved (mean ± s.e.)")
    ax.set_xlabel("RTG target (episode return)")
    ax.set_ylabel("achieved return")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.5, 0.01, summary.caption(), ha="center", va="bottom", fontsize=7.5, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)
