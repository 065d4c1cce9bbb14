"""Issue #15, the rest: docks that fit a 300-px column, a plan seed, evaluate N episodes, rollout export, compare."""
import numpy as np
import pytest
from fakes import FakePlanner

REAL_SCALES = (1, 2, 3, 4, 5, 7, 11, 16)  # the bundled checkpoints' pyramid: the widest scale-toggle grid


def _planned(win, qtbot, planner=None):
    win.load_planner(planner or FakePlanner(win.session.task))
    qtbot.waitUntil(lambda: win.session.plan is not None and win.plan_dock.plan is not None, timeout=10000)


def _no_horizontal_scroll(win, qtbot):
    """Raise every dock in turn: its content's minimum width fits its scroll area, no horizontal scrollbar."""
    bad = {}
    for d in win.docks:
        d.raise_()
        qtbot.wait(30)
        sc = d.widget()
        need, have = sc.widget().minimumSizeHint().width(), sc.viewport().width()
        if need > have or sc.horizontalScrollBar().maximum() > 0:
            bad[d.objectName()] = (need, have)
    return bad


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_every_dock_fits_its_column_without_a_horizontal_scrollbar(window, qtbot, size):
    from mage_studio.main_window import DOCK_MIN_WIDTH

    win = window
    _planned(win, qtbot, FakePlanner(win.session.task, scales=REAL_SCALES))
    win.resize(*size)
    win.apply_default_layout()
    qtbot.waitUntil(lambda: win.plan_dock.width() <= max(DOCK_MIN_WIDTH, 0.23 * size[0]) + 2, timeout=5000)
    assert _no_horizontal_scroll(win, qtbot) == {}
    # with a run and a sweep result on screen (longer status lines) it still fits
    win.run_dock.spin_len.setValue(2)
    win.run_dock.btn_play.click()
    qtbot.waitUntil(lambda: win.run_dock.frame is not None and win.run_dock.frame.done, timeout=20000)
    assert _no_horizontal_scroll(win, qtbot) == {}


def test_seed_and_resample_replan_with_the_chosen_seed_used_by_caption_json_and_runs(window, qtbot, tmp_path):
    import json

    win = window
    _planned(win, qtbot)
    s, dock = win.session, win.plan_dock
    obs = s.condition_obs()
    tokens0 = [np.asarray(t).copy() for t in s.plan.tokens]
    n = s.plans_done
    dock.spin_seed.setValue(7)
    qtbot.waitUntil(lambda: s.plans_done > n and not s._busy, timeout=10000)
    assert s.seed == 7
    expect = s.planner.plan(obs, s.rtg, seed=7)  # the fake draws its tokens from the seed
    assert all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, expect.tokens))
    assert not all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, tokens0))
    n = s.plans_done
    dock.btn_resample.click()  # the next seed
    qtbot.waitUntil(lambda: s.plans_done > n and not s._busy, timeout=10000)
    assert dock.spin_seed.value() == 8 and s.seed == 8
    assert all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, s.planner.plan(obs, s.rtg, seed=8).tokens))
    _, caption = win.figure_caption()
    assert "seed 8" in caption
    d = json.loads(open(win.export_plan(str(tmp_path / "p.json"))).read())
    assert d["meta"]["seed"] == 8
    # a closed-loop run samples with the chosen seed too, and the run's caption says so
    run = win.run_dock
    run.spin_len.setValue(2)
    run.btn_step.click()
    qtbot.waitUntil(lambda: run.frame is not None, timeout=20000)
    assert run.loop.seed == 8 and "seed 8" in win.figure_caption()[1]


def test_a_long_figure_caption_wraps_to_the_figure_width_and_keeps_every_part(qapp):
    from PySide6.QtGui import QColor, QImage

    from mage_studio.export import compose_figure

    view = QImage(400, 300, QImage.Format.Format_RGB32)
    view.fill(QColor(40, 40, 40))
    parts = [f"part {i} with some words" for i in range(8)] + ["seed 8"]
    one_line = compose_figure(view, "t", "short")
    fig = compose_figure(view, "t", "  ·  ".join(parts))
    assert fig.width() == 400 and fig.height() > one_line.height() + 40  # several caption lines, not one cut line
