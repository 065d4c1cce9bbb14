"""The RTG sweep's verdict: spans, slope and rank, and never rank alone."""
import math
from types import SimpleNamespace

import pytest

from mage_core.controllability import SweepRow, judge, plot_sweep, run_sweep, summarise, sweep_targets


def _rows(targets, achieved):
    return [SweepRow(target=t, mean=a, se=1.0, normalised_mean=None, success_rate=None, episodes=10)
            for t, a in zip(targets, achieved)]


def test_a_flat_line_with_perfect_rank_does_not_follow():
    # the door checkpoint's studio sweep: rank 1.00 on returns that move 2,900 -> 3,050 of a 3,060-point range
    s = summarise(_rows([-44, 600, 1200, 1800, 2400, 3055], [2900, 2930, 2960, 2990, 3020, 3050]),
                  ref_scores=(-45.75, 3013.3))
    assert s.spearman == pytest.approx(1.0)
    assert s.achieved_span == pytest.approx(100 * 150 / 3059.05, rel=1e-3)
    assert s.slope < 0.1
    assert s.verdict == "does not follow the target"
    assert "does not follow" in s.caption() and "Spearman 1.00" in s.caption()


def test_a_rising_sweep_follows_and_spans_are_normalised():
    s = summarise(_rows([0, 20, 40, 60, 80, 100], [5, 18, 41, 58, 79, 90]), ref_scores=(0.0, 100.0))
    assert s.normalised and s.verdict == "follows the target"
    assert s.achieved_span == pytest.approx(85.0)
    assert s.swept_span == pytest.approx(100.0)
    assert 0.8 < s.slope < 1.0


def test_rank_without_span_and_span_without_rank():
    assert judge(1.0, 10.0) == "does not follow the target"
    assert judge(0.2, 80.0) == "does not follow the target"
    assert judge(0.8, 60.0) == "follows the target weakly"
    assert judge(0.95, 40.0) == "follows the target weakly"
    assert judge(float("nan"), 90.0) == "does not follow the target"


def test_rows_are_sorted_and_raw_returns_used_without_references():
    s = summarise(_rows([3, 1, 2], [30, 10, 20]))
    assert [r.target for r in s.rows] == [1, 2, 3]
    assert not s.normalised and s.achieved_span == 20 and s.slope == pytest.approx(10.0)
    assert s.to_dict()["rows"][0]["target"] == 1
    few = summarise(_rows([1, 2], [1, 2]))
    assert math.isnan(few.spearman) and few.to_dict()["spearman"] is None


def test_run_sweep_calls_the_evaluator_per_target(tmp_path):
    seen = []

    def evaluate_at(g):
        seen.append(g)
        return SimpleNamespace(mean=g / 2, se=0.5, normalised_mean=g / 2, successes=[True, False], returns=[1, 2])

    rows = []
    s = run_sweep(evaluate_at, sweep_targets(0, 100, 5), ref_scores=(0.0, 100.0), on_row=rows.append)
    assert seen == [0.0, 25.0, 50.0, 75.0, 100.0] and len(rows) == 5
    assert rows[0].success_rate == 0.5 and rows[0].episodes == 2
    assert s.slope == pytest.approx(0.5) and s.achieved_span == pytest.approx(50.0)
    plot_sweep(s, str(tmp_path / "sweep.png"), title="t")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    # a task without a goal (locomotion): its results say success n/a, and so do the sweep's rows
    goalless = run_sweep(lambda g: SimpleNamespace(mean=g, se=0.0, normalised_mean=g, successes=[False, False],
                                                   success_rate=None, returns=[1, 2]), [0.0, 1.0], None)
    assert [r.success_rate for r in goalless.rows] == [None, None]
    with pytest.raises(ValueError):
        sweep_targets(0, 1, 0)
