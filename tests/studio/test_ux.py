"""Small things a new user meets: closing during a job asks first, a second studio opens offset, the maze legend
never covers the maze, status text never moves buttons, stale notes go away, an empty histogram says why."""
import numpy as np
from fakes import FakePlanner

from mage_core.suites.pointmaze import geometry


def test_closing_while_a_job_runs_asks_first_and_no_keeps_the_window(window, qtbot, monkeypatch):
    win = window
    asked = []
    win.ask_close = lambda jobs: asked.append(list(jobs)) or False
    monkeypatch.setattr(win.train_dock.proc, "is_running", lambda: True)
    assert win.running_jobs() == ["a training run"]
    win.close()
    assert asked == [["a training run"]] and win.isVisible()  # "No": the window and the run stay
    monkeypatch.undo()
    win.close()
    assert not win.isVisible() and len(asked) == 1  # nothing running: no question


def test_a_second_studio_claims_the_next_window_offset(window):
    from mage_studio.main_window import claim_instance_slot

    lock, slot = claim_instance_slot()  # the fixture's window holds a slot already
    try:
        assert slot >= 1
    finally:
        lock.unlock()


def test_the_maze_legend_sits_beside_the_maze_never_over_it(window, qtbot):
    win = window
    win.controller.load_planner(FakePlanner(win.state.task, scales=(1, 2, 3, 4, 5, 7, 11, 16)))
    qtbot.waitUntil(lambda: win.state.plan is not None and win.viewport.shown_id >= win.viewport.request_id,
                    timeout=10000)
    vp = win.viewport
    for size in ((700, 720), (1100, 620)):  # a portrait and a landscape viewport
        vp.resize(*size)
        vp.view_top_down()
        qtbot.waitUntil(lambda: vp.frame is not None and vp.shown_id >= vp.request_id, timeout=10000)
        vp.grab()  # paints the legend
        xmin, xmax, ymin, ymax = geometry(win.state.task).extent()
        r = vp._image_rect()
        uv = np.array([vp.frame.project([x, y, 0.0]) for x in (xmin, xmax) for y in (ymin, ymax)])
        u = r.x() + uv[:, 0] / vp.frame.width * r.width()
        v = r.y() + uv[:, 1] / vp.frame.height * r.height()
        box = vp._legend_box
        assert u.max() <= box.left() + 1 or v.min() >= box.bottom() - 1, (size, u, v, box)


def test_run_status_keeps_its_height_and_range_notes_do_not_outlive_their_target(window, qtbot):
    win = window
    lbl = win.run_dock.lbl_status
    h = lbl.height()
    lbl.setText("step 120/300 · return 12 · RTG target 600 · condition now 552 · holding scales 1–2 · ✓ at goal " * 2)
    qtbot.wait(10)
    assert lbl.height() == h
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None and not win.controller.busy, timeout=10000)
    cd = win.condition_dock
    cd.set_rtg(1e9)  # outside the data's range: a note
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=10000)
    assert "RTG range" in cd.lbl_message.text()
    lo, hi = win.state.rtg_range()
    n = win.state.plans_done
    win.state.rtg = lo + 0.5 * (hi - lo)  # another target (a run, the Plan dock, a shortcut): the note goes
    qtbot.waitUntil(lambda: win.state.plans_done > n and not win.controller.busy, timeout=10000)
    assert cd.lbl_message.text() == ""


def test_the_histogram_says_what_it_will_show_until_a_dataset_loads_and_generation_is_named(window, qtbot,
                                                                                           tiny_dataset, monkeypatch):
    win = window
    cd = win.condition_dock
    assert "no dataset loaded" in cd.no_data.textItem.toPlainText()
    shown = []
    win.controller.show_status = lambda text, ms=0: shown.append(text)
    win.controller.dataset_pending = lambda: True
    planner = FakePlanner(win.state.task)
    planner.ckpt_meta = {"dataset": {"id": "nowhere/none-v0"}}
    with monkeypatch.context() as m:  # no local dataset for the task (other tests may have made its default one)
        m.setattr("mage_core.data.store.list_datasets", lambda: [])
        win.controller.load_planner(planner)
    assert any("being generated" in t for t in shown)
    win.controller.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=30000)
    assert cd.no_data.textItem.toPlainText() == ""


def test_two_checkpoints_compare_side_by_side_on_one_condition(window, qtbot, tiny_checkpoint):
    from mage_core.bundled import bundled_checkpoint
    from mage_studio.export import figure_caption

    main, other_task = bundled_checkpoint("pointmaze-umaze"), bundled_checkpoint("adroit-hammer")
    if main is None or other_task is None:
        import pytest

        pytest.skip("needs the bundled pointmaze-umaze and adroit-hammer checkpoints")
    win = window
    win.controller.open_checkpoint(str(main))
    qtbot.waitUntil(lambda: win.state.plan is not None and win.state.planner_path == str(main)
                    and not win.controller.busy, timeout=60000)
    dock = win.plan_dock
    dock.set_compare_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.overlay.compare_plan is not None, timeout=60000)
    assert win.state.overlay.compare_checkpoint == str(tiny_checkpoint)
    qtbot.waitUntil(lambda: win.viewport.compare_xy is not None, timeout=10000)
    assert any(f"dashed grey: {tiny_checkpoint.name}" in row[0] for row in win.viewport.legend)
    assert "same target and seed" in dock.lbl_compare.text()
    assert f"checkpoint {tiny_checkpoint.name}" in figure_caption(win.state)[1]
    # the comparison follows the condition: a new target re-plans both checkpoints
    first = win.state.overlay.compare_plan
    lo, hi = win.state.rtg_range()
    win.state.rtg = lo + 0.4 * (hi - lo)
    qtbot.waitUntil(lambda: win.state.overlay.compare_plan is not first and win.state.overlay.compare_plan is not None,
                    timeout=60000)
    dock.btn_compare_clear.click()
    assert win.state.overlay.compare_checkpoint is None and win.state.overlay.compare_plan is None
    dock.set_compare_checkpoint(str(other_task))  # another task's checkpoint is refused with the reason
    qtbot.waitUntil(lambda: "Cannot compare" in dock.lbl_compare.text(), timeout=60000)
    assert "plans adroit-hammer, not pointmaze-umaze" in dock.lbl_compare.text()


def test_a_trained_checkpoint_replacing_the_bundled_one_says_so(window, qtbot, tiny_checkpoint):
    from mage_core.bundled import bundled_checkpoint

    bundled = bundled_checkpoint("pointmaze-umaze")
    if bundled is None:
        import pytest

        pytest.skip("no bundled pointmaze-umaze checkpoint")
    win = window
    win.controller.open_checkpoint(str(bundled))
    qtbot.waitUntil(lambda: win.state.planner_path == str(bundled), timeout=60000)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    win.controller.open_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.planner_path == str(tiny_checkpoint), timeout=60000)
    assert any("replaces the bundled pointmaze-umaze.pt" in m and "evaluate it" in m for m in shown)
