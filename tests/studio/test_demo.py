"""The studio ready for a demo: layout reset, no stale panels, RTG controllability, the training chart, errors."""
from mage_core.suites.pointmaze import geometry
import numpy as np
import pytest
from fakes import FakePlanner
from mage_studio.export import figure_caption
from mage_studio.rollout import fmt_rtg
from PySide6.QtCore import Qt


def _layout_complete(win) -> bool:
    """Every dock docked and not closed, the toolbar shown, the two default tab columns in place."""
    L, R = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
    docks_ok = all(not d.isHidden() and not d.isFloating() and d.toggleViewAction().isChecked() for d in win.docks)
    areas_ok = (all(win.dockWidgetArea(d) == L for d in (win.condition_dock, win.data_dock, win.checkpoint_dock))
                and all(win.dockWidgetArea(d) == R for d in (win.plan_dock, win.run_dock, win.train_dock)))
    tabs_ok = set(win.tabifiedDockWidgets(win.condition_dock)) == {win.data_dock, win.checkpoint_dock}
    return docks_ok and areas_ok and tabs_ok and not win.toolbar.isHidden() and win.toolbar.isVisible()


def test_reset_layout_restores_every_dock_and_the_toolbar_and_the_state_survives_a_restart(window, qtbot, settings):
    win = window
    qtbot.waitUntil(lambda: _layout_complete(win), timeout=5000)  # the first launch is the default layout
    for d in win.docks:  # close every panel and the toolbar from the View menu, float one
        d.toggleViewAction().trigger()
    win.toolbar.toggleViewAction().trigger()
    assert all(d.isHidden() for d in win.docks) and win.toolbar.isHidden()
    assert win.toolbar.toggleViewAction() in win.view_menu.actions()  # the View menu can bring the toolbar back
    win.act_reset_layout.trigger()
    qtbot.waitUntil(lambda: _layout_complete(win), timeout=5000)
    assert win.condition_dock.isVisible() and win.plan_dock.isVisible()  # the raised tab of each column
    # the viewport is the largest thing on screen
    qtbot.waitUntil(lambda: win.viewport.width() > max(d.width() for d in (win.condition_dock, win.plan_dock)),
                    timeout=5000)
    # a reset layout saved at exit is complete at the next start
    win.save_settings()
    from mage_studio.main_window import MainWindow

    win2 = MainWindow(settings=settings, initial_task="pointmaze-umaze")
    qtbot.addWidget(win2)
    win2.show()
    qtbot.waitUntil(lambda: win2.docks_ready, timeout=20000)
    qtbot.waitUntil(lambda: _layout_complete(win2), timeout=5000)
    win2.close()


def test_a_saved_all_hidden_layout_or_reset_layout_at_start_opens_the_default_layout(window, qtbot, settings):
    from mage_studio.main_window import SETTINGS_VERSION, MainWindow

    win = window
    for d in win.docks:
        d.hide()
    win.toolbar.hide()
    settings.setValue("window/state", win.saveState(SETTINGS_VERSION))  # an all-hidden layout
    for reset_at_start in (False, True):
        win2 = MainWindow(settings=settings, initial_task="pointmaze-umaze")
        qtbot.addWidget(win2)
        if reset_at_start:  # `mage-studio --reset-layout`: the docks are not built early (they are built after the
            win2.reset_layout()  # first frame, once the render thread has its scene), the saved layout is ignored
            assert not win2.docks_ready and win2.ignore_saved_layout
        win2.show()
        qtbot.waitUntil(lambda: win2.docks_ready, timeout=20000)
        qtbot.waitUntil(lambda: _layout_complete(win2), timeout=5000)
        win2.close()


def test_scene_modules_are_imported_before_the_render_thread_starts(qtbot, qloop, settings, monkeypatch):
    """The render thread never imports gymnasium_robotics while the GUI thread builds docks (that can crash)."""
    import threading

    import mage_studio.main_window as mw

    seen = {}
    real_import, real_viewport = mw.import_scene_modules, mw.Viewport

    def spy_import():
        seen["import_threads"] = threading.active_count()
        seen["imported_on"] = threading.current_thread() is threading.main_thread()
        real_import()

    def spy_viewport(*a, **kw):
        seen["imported_before_viewport"] = "import_threads" in seen
        return real_viewport(*a, **kw)

    monkeypatch.setattr(mw, "import_scene_modules", spy_import)
    monkeypatch.setattr(mw, "Viewport", spy_viewport)
    win = mw.MainWindow(settings=settings, initial_task="pointmaze-umaze")
    qtbot.addWidget(win)
    assert seen["imported_on"] and seen["imported_before_viewport"]
    import sys

    assert "gymnasium_robotics" in sys.modules and "mujoco" in sys.modules
    win.close()


def test_default_window_size_fits_the_screen_from_1280x800_to_4k():
    from PySide6.QtCore import QSize

    from mage_studio.main_window import default_window_size

    for sw, sh in ((1280, 800), (1920, 1080), (3840, 2160)):
        w, h = default_window_size(QSize(sw, sh))
        assert w <= sw and h <= sh and w >= 0.85 * sw and h >= 0.85 * sh


def test_bad_checkpoints_get_full_sentences_without_torch_advice(window, qtbot, tmp_path):
    import torch

    from mage_core.errors import MageError

    win = window
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    evil = tmp_path / "evil.pt"
    torch.save({"format": "mage-ckpt", "obj": MageError("x")}, evil)  # torch's refusal text advises weights_only=False
    good = (tmp_path / "good.pt")
    torch.save({"weights": torch.zeros(1000)}, good)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[:300])
    expect = {junk: "not a PyTorch archive", evil: "not written by mage", trunc: "truncated or corrupt"}
    for i, (path, words) in enumerate(expect.items()):
        win.controller.open_checkpoint(str(path))
        qtbot.waitUntil(lambda: len(win.errors) == i + 1, timeout=20000)
        text = win.errors[-1]
        assert words in text, text
        assert "weights_only" not in text and "arbitrary code" not in text
        assert text.endswith(".") and win.last_dialog.text().endswith(".")
        win.last_dialog.close()


def test_error_text_is_sentences_and_drops_unsafe_advice():
    from mage_studio.qt_util import as_sentence, error_text

    advice = ("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely "
              "succeed, but it can result in arbitrary code execution. Do it only if you trust the file")
    assert "weights_only" not in error_text(RuntimeError(advice))
    assert as_sentence("dataset x has no episodes") == "Dataset x has no episodes."


STAGES3 = [{"name": "autoencoder", "steps": 300}, {"name": "transformer", "steps": 300}, {"name": "refine", "steps": 300}]


def _step(stage, step, losses):
    return {"event": "step", "stage": stage, "stage_name": STAGES3[stage - 1]["name"], "step": step, "total": 300,
            "losses": losses}


def test_training_chart_marks_stages_never_bridges_them_and_resume_does_not_rewind(window, qtbot):
    dock = window.train_dock
    dock.on_event({"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES3})
    for s in (100, 200, 300):
        dock.on_event(_step(1, s, {"L_rec": 1.0 / s, "L_cond": 2.0 / s}))
    for s in (100, 200):
        dock.on_event(_step(2, s, {"L_tok": 3.0 / s}))
    # one curve per (loss, stage): L_cond of stage 1 and of stage 3 are two lines, never one bridging stage 2
    dock.on_event(_step(3, 100, {"L_cond": 0.5}))
    dock.on_event(_step(3, 120, {"L_cond": 0.4}))
    assert ("L_cond", "1") in dock.curves and ("L_cond", "3") in dock.curves
    xs1 = dock.curves[("L_cond", "1")].getData()[0]
    xs3 = dock.curves[("L_cond", "3")].getData()[0]
    assert xs1.max() <= 300 and xs3.min() >= 600
    assert [label.split()[0] for _, label in dock.markers[:3]] == ["1", "2", "3"]  # a line where each stage starts
    assert [x for x, _ in dock.markers[:3]] == [0, 300, 600]
    # the legend is a row above the plot, never over the curves
    assert dock.loss_plot.getPlotItem().legend is None
    assert all(n in dock.lbl_legend.text() for n in ("L_rec", "L_cond", "L_tok"))
    # Resume from the last checkpoint (stage 3 step 100 -> global 700) after the chart reached 720: no overdraw
    dock.on_event({"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES3, "resumed_from": 100})
    dock.on_event(_step(3, 110, {"L_cond": 0.45}))
    for name, pts in dock.points.items():
        xs = [x for x, _ in pts]
        assert xs == sorted(set(xs)), name  # strictly increasing: nothing drawn twice, no jump back
    assert [x for x, _ in dock.points["L_cond"]][-2:] == [700, 710]
    assert dock.resumed_at == 710 and dock.markers[-1][1] == "resumed"


def test_start_asks_before_overwriting_and_each_run_clears_the_log(window, qtbot, tmp_path):
    from fakes import fake_events_script

    dock = window.train_dock
    from mage_studio.docks.train import default_checkpoint_dir

    assert not str(default_checkpoint_dir()).startswith(str(__import__("pathlib").Path.cwd() / "checkpoints"))
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep me")
    dock.edit_out.setText(str(out))
    events = [{"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES3}]
    dock.command_override = lambda resume: fake_events_script(tmp_path, events)
    dock.log.appendPlainText("output of the previous run")
    dock.btn_start.click()
    assert not dock.proc.is_running() and dock._overwrite_box is not None and dock._overwrite_box.isVisible()
    dock._overwrite_box.button(dock._overwrite_box.StandardButton.Cancel).click()  # keep the file
    assert not dock.proc.is_running() and out.read_bytes() == b"keep me" and "Not started" in dock.lbl_status.text()
    dock.btn_start.click()
    dock.btn_overwrite.click()  # replace it: the run starts
    qtbot.waitUntil(lambda: dock.events_seen >= 1 and not dock.proc.is_running(), timeout=15000)
    assert "previous run" not in dock.log.toPlainText()


def test_a_finished_run_that_is_loaded_says_so_in_the_train_panel(window, monkeypatch):
    """The status bar's warning can be replaced by a later message; the Train panel keeps it."""
    dock = window.train_dock
    import dataclasses

    opened = []
    monkeypatch.setattr(dock, "act", dataclasses.replace(dock.act, open_checkpoint=opened.append))
    dock.last_checkpoint = "/tmp/just-trained.pt"
    dock._t0 = __import__("time").perf_counter()
    dock.chk_load.setChecked(True)
    dock._on_finished(True, "")
    assert opened == ["/tmp/just-trained.pt"] and "now loaded" in dock.lbl_status.text()
    assert "Evaluate" in dock.lbl_status.text()
    dock.chk_load.setChecked(False)
    dock._on_finished(True, "")
    assert opened == ["/tmp/just-trained.pt"] and "now loaded" not in dock.lbl_status.text()


def test_checkable_toggles_look_different_when_checked(window):
    chk = window.train_dock.chk_load
    chk.setChecked(True)
    on = chk.grab().toImage()
    chk.setChecked(False)
    off = chk.grab().toImage()
    assert on != off


def _geo(task):
    """The maze geometry of a task (through the suite when the engine has suites)."""
    try:
        from mage_core.suites.pointmaze import geometry
    except ImportError:
        return task.geometry
    return geometry(task)


def _planned(win, qtbot):
    win.controller.load_planner(FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None and win.plan_dock.plan is not None, timeout=10000)


def test_refine_unchecks_the_hidden_scales_and_token_cells_explain_themselves(window, qtbot):
    win = window
    _planned(win, qtbot)
    dock = win.plan_dock
    dock.refine.setValue(2)
    assert [c.isChecked() for c in dock.checks] == [True, True, False, False, False, False]
    assert win.viewport.overlay.visible == [True, True, False, False, False, False]
    dock.refine.setValue(6)
    assert all(c.isChecked() for c in dock.checks)
    # token map: hover a cell of scale 3 (4 tokens) -> code, scale and span; the span is highlighted in the viewport
    qtbot.waitUntil(lambda: dock.token_label.tokens != [], timeout=5000)
    from mage_studio.docks.tokens import TOKEN_LABEL_W, token_at

    w, h = dock.token_label.img_size
    x = TOKEN_LABEL_W + (w - TOKEN_LABEL_W) * (1.5 / 4)  # the second of 4 cells
    y = h * (2.5 / 6)  # row 3 of 6
    k, i, code, a, b = token_at(dock.token_label.tokens, 32, (w, h), x, y)
    assert (k, i, a, b) == (2, 1, 8, 15) and code == int(win.state.plan.tokens[2][1])
    from PySide6.QtCore import QPoint

    qtbot.mouseMove(dock.token_label, QPoint(int(x), int(y)))
    qtbot.waitUntil(lambda: win.state.overlay.hovered_token is not None, timeout=3000)
    assert "code" in dock.token_label.toolTip() and "steps 8–15" in dock.token_label.toolTip()
    np.testing.assert_allclose(win.viewport.overlay.path_xy, win.state.plan.states_KHD[2, 8:17, :2], atol=1e-6)
    assert any("steps 8–15" in label for label, _ in win.viewport.legend)
    assert any("per token" in label for label, _ in win.viewport.legend)
    assert not win.plan_dock.state_plot.getAxis("left").autoSIPrefix


def test_reset_and_a_closed_checkpoint_leave_no_stale_panels_and_every_panel_shows_the_same_step(window, qtbot):
    win = window
    _planned(win, qtbot)
    cond_tokens = [np.asarray(t).copy() for t in win.state.plan.tokens]
    header = win.viewport.hud_text
    assert "RTG target" in header
    run = win.run_dock
    run.spin_len.setValue(6)
    run.btn_play.click()
    qtbot.waitUntil(lambda: run.frame is not None and run.frame.done and not run.playing, timeout=20000)
    f = run.frame
    assert f"step {f.t}/{f.horizon}" in win.viewport.hud_text and f"step {f.t}/{f.horizon}" in run.lbl_status.text()
    # the run's condition is the one at this step, not the start's (the Condition dock's number): named so
    assert f"condition now {fmt_rtg(f.plan.condition_rtg)}" in win.viewport.hud_text
    assert "Condition used from the start" in win.condition_dock.lbl_used.text()
    assert win.plan_dock.plan is f.plan  # the plan views show the run's plan
    # Step after the end says so
    run.btn_step.click()
    assert "episode is over" in run.lbl_status.text() and "Reset" in run.lbl_status.text()
    # Reset: header, plan views and overlay all back to the condition's plan
    run.btn_reset.click()
    assert win.viewport.hud_text == win.overlays.condition_hud(win.state.plan)
    assert "RTG target" in win.viewport.hud_text
    assert win.plan_dock.plan is win.state.plan
    assert all(np.array_equal(a, b) for a, b in zip(win.plan_dock.plan.tokens, cond_tokens))
    # a checkpoint closed because the scene changed task: no plan left anywhere
    win.controller.show_task("pointmaze-medium")
    assert win.state.planner is None and win.plan_dock.plan is None and win.plan_dock.token_label.tokens == []


def test_rtg_values_never_read_minus_zero():
    from mage_studio.rollout import fmt_rtg

    assert fmt_rtg(-0.3) == "0" and fmt_rtg(185.6) == "186"


class CeilingPlanner(FakePlanner):
    """A fake planner with a return ceiling: targets above CEILING plan the ceiling, like the real one."""

    CEILING = 120.0

    def rtg_ceiling(self, obs_ND):
        return np.full(len(obs_ND), self.CEILING)

    def plan(self, obs, rtg, *, seed=None, decode=True):
        p = super().plan(obs, min(float(rtg), self.CEILING), seed=seed, decode=decode)
        p.rtg_ceiling = self.CEILING
        return p


def test_rtg_shows_the_feasible_range_and_the_condition_used_and_the_box_says_when_it_limits(window, qtbot):
    win = window
    win.controller.load_planner(CeilingPlanner(win.state.task))
    cd = win.condition_dock
    # the new planner's first plan, and the dock redrawn from it (a loaded machine may still show the old range)
    qtbot.waitUntil(lambda: win.state.plan is not None and "feasible" in cd.lbl_range.text(), timeout=10000)
    lo, hi = win.state.rtg_range()
    assert f"feasible from this start {lo:.0f} – 120" in cd.lbl_range.text() and f"data range {lo:.0f} – {hi:.0f}" in cd.lbl_range.text()
    assert cd.feasible_region.isVisible() and cd.feasible_region.getRegion() == pytest.approx((lo, 120.0))
    assert "#8a3347" in cd.slider.styleSheet()  # the infeasible part of the slider is marked
    n = win.state.plans_done
    cd.slider.setValue(cd.slider.maximum())
    qtbot.waitUntil(lambda: win.state.plans_done > n and not win.controller.busy, timeout=10000)
    assert "Condition used from the start: <b>120</b>" in cd.lbl_used.text() and "ceiling" in cd.lbl_used.text()
    assert "ceiling" in cd.lbl_used.toolTip() or "condition" in cd.lbl_used.toolTip().lower()
    assert "→ condition 120" in win.viewport.hud_text
    # typed values outside the data's range are limited to it, and the dock says so (no silent 99 / -0)
    cd.spin_rtg.setValue(999999999)
    assert win.state.rtg == pytest.approx(hi) and "above the data's RTG range" in cd.lbl_message.text()
    assert cd.spin_rtg.value() == pytest.approx(hi)
    cd.spin_rtg.setValue(-500)
    assert win.state.rtg == pytest.approx(lo) and "below the data's RTG range" in cd.lbl_message.text()
    cd.spin_rtg.setValue(0.5 * (lo + hi))
    assert cd.lbl_message.text() == ""


def test_rtg_sweep_defaults_to_the_feasible_range_with_y_equals_x(window, qtbot):
    win = window
    win.controller.load_planner(CeilingPlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None, timeout=10000)
    assert win.state.set_start(geometry(win.state.task).cell_to_xy((1, 2)))  # one cell from the goal
    run = win.run_dock
    lo, _ = win.state.rtg_range()
    assert run.feasible_range() == pytest.approx((lo, 120.0))
    run.spin_targets.setValue(3)
    run.spin_sweep_len.setValue(30)
    run.btn_sweep.click()
    qtbot.waitUntil(lambda: len(run.sweep_points) == 3 and run.btn_sweep.isEnabled(), timeout=30000)
    targets = [t for t, _ in run.sweep_points]
    assert targets == pytest.approx([lo, (lo + 120) / 2, 120.0])
    xs, ys = run.sweep_identity.getData()
    assert list(xs) == list(ys) == pytest.approx([lo, 120.0])
    assert "feasible range" in run.lbl_sweep.text() and "rank correlation" in run.lbl_sweep.text()
    assert np.isfinite(run.rho)


def _lab(rgb):
    c = np.asarray(rgb, float)
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    f = np.cbrt(np.maximum(xyz / np.array([0.9505, 1.0, 1.089]), 0.008856))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("K", [2, 3, 4, 5, 6, 7, 8])
def test_per_scale_colours_are_far_apart(K):
    from mage_core.render import scale_colors

    labs = [_lab(c) for c in scale_colors(K)]
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(labs) for b in labs[i + 1:]]
    assert min(gaps) >= 40  # CIELAB distance; a rainbow palette has pairs 33 apart at K = 8


def test_figure_export_is_the_full_view_with_legend_title_and_caption_and_plan_json(window, qtbot, tmp_path):
    import json

    from PySide6.QtGui import QImage

    win = window
    _planned(win, qtbot)
    vp = win.viewport
    png = tmp_path / "fig.png"
    done = []
    win.exporter.export_figure(str(png), done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=15000)
    img = QImage(str(png))
    assert img.width() == vp.width() * int(vp.devicePixelRatioF()) and img.height() > vp.height()
    assert vp.image.width() < img.width() or vp.image.width() == vp.width()  # not the smaller render-budget frame
    title, caption = figure_caption(win.state)
    assert "MAGE plan" in title and "RTG target" in caption and "seed" in caption and "scales shown" in caption
    out = win.exporter.export_plan(str(tmp_path / "plan.json"))
    d = json.loads(open(out).read())
    plan = win.state.plan
    assert [len(s["tokens"]) for s in d["per_scale"]] == list(plan.scales)
    assert np.asarray(d["per_scale"][-1]["states"]).shape == plan.states_KHD[-1].shape
    assert d["meta"]["rtg_target"] == pytest.approx(win.state.rtg)


def test_a_long_header_wraps_instead_of_being_cut(window):
    from mage_studio.viewport import wrap_hud

    vp = window.viewport
    fm = vp.fontMetrics()
    text = "pointmaze-umaze   ·   RTG target 262 → condition 178 (feasible from here)   ·   plan 3 ms   ·   8 scales"
    lines = wrap_hud(text, fm, 260)
    assert len(lines) > 1 and all(fm.horizontalAdvance(line) <= 260 or "·" not in line for line in lines)
    assert "   ·   ".join(lines) == text


def test_plans_through_walls_stay_visible_as_see_through_lines(window, qtbot):
    win = window
    _planned(win, qtbot)
    vp = win.viewport
    qtbot.waitUntil(lambda: vp.frame is not None and vp.overlay is not None and len(vp.overlay.plans_xy) > 0, timeout=5000)
    with_plan = vp.grab().toImage()
    drawn = []
    real = vp._paint_plan_xray
    vp._paint_plan_xray = lambda p: (drawn.append(1), real(p))
    vp.grab()
    assert drawn  # painted over the scene (walls included) on every paint
    vp._paint_plan_xray = lambda p: None
    without = vp.grab().toImage()
    assert with_plan != without


@pytest.mark.slow
def test_a_checkpoint_for_another_task_loads_that_tasks_dataset_and_same_id_other_size_is_no_match(
        window, qtbot, tiny_dataset, tiny_checkpoint, tmp_path):
    import torch

    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.tasks import get_task

    medium_id = "test/medium-tiny-v0"
    make_dataset(get_task("pointmaze-medium"), GenerateConfig(steps=1500, seed=0, ref_episodes=2),
                 dataset_id=medium_id, force=True)
    ck = torch.load(tiny_checkpoint, weights_only=False)
    ck["task"] = "pointmaze-medium"
    from mage_core.data.store import list_datasets

    rec = next(r for r in list_datasets() if r["id"] == medium_id)
    ck["dataset"] = dict(ck["dataset"], id=medium_id, steps=rec["steps"], episodes=rec["episodes"])
    medium = tmp_path / "medium-tiny.pt"
    torch.save(ck, medium)
    win = window
    win.controller.open_dataset(tiny_dataset)  # an umaze dataset is loaded
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=20000)
    win.controller.open_checkpoint(str(medium))
    qtbot.waitUntil(lambda: win.state.dataset is not None and win.state.dataset.id == medium_id
                    and win.state.planner is not None, timeout=30000)
    assert win.state.task.name == "pointmaze-medium" and win.state.dataset.task.name == "pointmaze-medium"
    assert medium_id in win.data_dock.lbl_summary.text()  # the Data panel describes the checkpoint's data
    assert "✓" in win.checkpoint_dock.lbl_compat.text()
    # the same id with other content (1M steps recorded, 1,500 here) is not "matches dataset"
    ck["dataset"] = dict(ck["dataset"], steps=1_000_000, episodes=1000)
    big = tmp_path / "medium-1m.pt"
    torch.save(ck, big)
    win.controller.open_checkpoint(str(big))
    qtbot.waitUntil(lambda: win.state.planner_path == str(big), timeout=30000)
    text = win.checkpoint_dock.lbl_compat.text()
    assert "✓" not in text and "not the data the checkpoint was trained on" in text and "1,000,000" in text
