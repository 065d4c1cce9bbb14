"""Steering by the coarse plan in the studio: hold scales 1..k while resampling, plan alternatives at scale k, adopt
one by clicking it, run closed loop from it; the caption and the plan JSON say what was held."""
import json

import numpy as np
import pytest

from mage_core.bundled import bundled_checkpoint


def _replanned(win, qtbot, act, timeout=30000):
    n = win.state.plans_done
    act()
    qtbot.waitUntil(lambda: win.state.plans_done > n and not win.controller.busy, timeout=timeout)
    return win.state.plan


@pytest.fixture
def umaze_window(window, qtbot):
    path = bundled_checkpoint("pointmaze-umaze")
    if path is None:
        pytest.skip("no bundled pointmaze-umaze checkpoint")
    window.controller.open_checkpoint(str(path))
    qtbot.waitUntil(lambda: window.state.plan is not None and window.state.planner_path == str(path)
                    and not window.controller.busy, timeout=60000)
    return window


def test_the_studio_holds_coarse_scales_while_resample_varies_the_finer_ones(umaze_window, qtbot, tmp_path):
    from mage_studio.export import figure_caption

    win = umaze_window
    panel = win.plan_dock.steer
    panel.spin_scale.setValue(2)
    plan = _replanned(win, qtbot, lambda: panel.chk_hold.setChecked(True))
    assert plan.held_scales == 2 and win.state.held_scales == 2
    held = [np.asarray(t).copy() for t in plan.tokens[:2]]
    finer = set()
    for _ in range(3):
        plan = _replanned(win, qtbot, win.plan_dock.btn_resample.click)
        assert all(np.array_equal(a, b) for a, b in zip(plan.tokens[:2], held)) and plan.held_scales == 2
        finer.add(tuple(np.concatenate([np.asarray(t) for t in plan.tokens[2:]]).tolist()))
    assert len(finer) > 1
    assert "scales 1–2 held" in figure_caption(win.state)[1]
    out = tmp_path / "plan.json"
    assert win.exporter.export_plan(str(out)) == str(out)
    d = json.loads(out.read_text())
    assert d["held_scales"] == 2 and d["meta"]["held_tokens"] == [t.tolist() for t in held]
    # moving the start releases the hold (the coarse plan belonged to the old start)
    plan = _replanned(win, qtbot, lambda: win.state.set_start(np.array([-1.0, 1.0])))
    assert plan.held_scales == 0 and win.state.held_tokens is None and not panel.chk_hold.isChecked()


def test_the_studio_plans_alternatives_draws_them_and_adopts_a_clicked_one(umaze_window, qtbot):
    win = umaze_window
    panel = win.plan_dock.steer
    panel.spin_scale.setValue(2)
    panel.spin_n.setValue(3)
    panel.btn_alts.click()
    qtbot.waitUntil(lambda: bool(win.state.overlay.alternatives), timeout=60000)
    alts = win.state.overlay.alternatives
    assert win.state.overlay.alternatives_scale == 2 and panel.lst.count() == len(alts) >= 2
    coarse = {tuple(np.concatenate([np.asarray(t) for t in a.tokens[:2]]).tolist()) for a in alts}
    assert len(coarse) == len(alts)
    qtbot.waitUntil(lambda: len(win.viewport.alternative_paths) == len(alts), timeout=10000)
    assert any("alternatives at scale 2" in row[0] for row in win.viewport.legend)
    plan = _replanned(win, qtbot, lambda: panel.lst.itemClicked.emit(panel.lst.item(1)))
    for a, b in zip(plan.tokens, alts[1].tokens):  # the adopted alternative is the plan again, exactly
        np.testing.assert_array_equal(a, b)
    assert panel.chk_hold.isChecked() and win.state.held_scales == 2 and win.state.overlay.alternatives == alts
    # a closed loop from the adopted plan holds its coarse tokens at the first replan
    run = win.run_dock
    run.spin_len.setValue(3)
    run.step_once()
    qtbot.waitUntil(lambda: run.frame is not None and not run.busy, timeout=30000)
    first = run.frame.plan
    assert first.held_scales == 2 and "holding scales 1–2" in run.frame.status()
    assert all(np.array_equal(a, b) for a, b in zip(first.tokens[:2], alts[1].tokens[:2]))
    run.reset()
    # a new target invalidates the alternatives (they were planned for the old one)
    lo, hi = win.state.rtg_range()
    _replanned(win, qtbot, lambda: setattr(win.state, "rtg", lo + 0.3 * (hi - lo)))
    assert win.state.overlay.alternatives == () and panel.lst.count() == 0
