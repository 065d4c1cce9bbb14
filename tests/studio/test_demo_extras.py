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
