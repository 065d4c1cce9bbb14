"""Issue #15 (the studio, ready for a demo): layout reset, stale panels, RTG controllability, training chart, errors."""
import numpy as np
import pytest
from fakes import FakePlanner
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
    assert win.toolbar.toggleViewAction() in win._view_menu.actions()  # the View menu can bring the toolbar back
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
    settings.setValue("window/state", win.saveState(SETTINGS_VERSION))  # what the old Reset layout left behind
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
    """The --reset-layout segfault: the render thread imported gymnasium_robotics while the GUI thread built docks."""
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
        win.open_checkpoint(str(path))
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


def test_checkable_toggles_look_different_when_checked(window):
    chk = window.train_dock.chk_load
    chk.setChecked(True)
    on = chk.grab().toImage()
    chk.setChecked(False)
    off = chk.grab().toImage()
    assert on != off
