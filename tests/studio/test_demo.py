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
