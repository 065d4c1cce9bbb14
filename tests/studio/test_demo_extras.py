"""Docks that fit a 300-px column, a plan seed, evaluate N episodes, rollout export, compare two RTG targets."""
import numpy as np
import pytest
from fakes import FakePlanner
from mage_studio.export import figure_caption

REAL_SCALES = (1, 2, 3, 4, 5, 7, 11, 16)  # the bundled checkpoints' pyramid: the widest scale-toggle grid


def _planned(win, qtbot, planner=None):
    win.controller.load_planner(planner or FakePlanner(win.state.task))
    qtbot.waitUntil(lambda: win.state.plan is not None and win.plan_dock.plan is not None, timeout=10000)


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
    _planned(win, qtbot, FakePlanner(win.state.task, scales=REAL_SCALES))
    win.resize(*size)
    win.apply_default_layout()
    qtbot.waitUntil(lambda: win.plan_dock.width() <= max(DOCK_MIN_WIDTH, 0.23 * size[0]) + 2, timeout=5000)
    assert _no_horizontal_scroll(win, qtbot) == {}
    cd = win.condition_dock  # the robot tasks' rows (a dataset state, an evaluation reset) fit too
    cd.state_row.setVisible(True)
    cd.reset_row.setVisible(True)
    assert _no_horizontal_scroll(win, qtbot) == {}
    cd.state_row.setVisible(False)
    cd.reset_row.setVisible(False)
    # with a run and a sweep result on screen (longer status lines) it still fits
    win.run_dock.spin_len.setValue(2)
    win.run_dock.btn_play.click()
    qtbot.waitUntil(lambda: win.run_dock.frame is not None and win.run_dock.frame.done, timeout=20000)
    assert _no_horizontal_scroll(win, qtbot) == {}


def test_seed_and_resample_replan_with_the_chosen_seed_used_by_caption_json_and_runs(window, qtbot, tmp_path):
    import json

    win = window
    _planned(win, qtbot)
    s, dock = win.state, win.plan_dock
    obs = s.condition_obs()
    tokens0 = [np.asarray(t).copy() for t in s.plan.tokens]
    n = s.plans_done
    dock.spin_seed.setValue(7)
    qtbot.waitUntil(lambda: s.plans_done > n and not win.controller.busy, timeout=10000)
    assert s.seed == 7
    expect = s.planner.plan(obs, s.rtg, seed=7)  # the fake draws its tokens from the seed
    assert all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, expect.tokens))
    assert not all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, tokens0))
    n = s.plans_done
    dock.btn_resample.click()  # the next seed
    qtbot.waitUntil(lambda: s.plans_done > n and not win.controller.busy, timeout=10000)
    assert dock.spin_seed.value() == 8 and s.seed == 8
    assert all(np.array_equal(a, b) for a, b in zip(s.plan.tokens, s.planner.plan(obs, s.rtg, seed=8).tokens))
    _, caption = figure_caption(win.state)
    assert "seed 8" in caption
    d = json.loads(open(win.exporter.export_plan(str(tmp_path / "p.json"))).read())
    assert d["meta"]["seed"] == 8
    # a closed-loop run samples with the chosen seed too, and the run's caption says so
    run = win.run_dock
    run.spin_len.setValue(2)
    run.btn_step.click()
    qtbot.waitUntil(lambda: run.frame is not None, timeout=20000)
    assert run.loop.seed == 8 and "seed 8" in figure_caption(win.state)[1]


def test_a_long_figure_caption_wraps_to_the_figure_width_and_keeps_every_part(qapp):
    from PySide6.QtGui import QColor, QImage

    from mage_studio.export import compose_figure

    view = QImage(400, 300, QImage.Format.Format_RGB32)
    view.fill(QColor(40, 40, 40))
    parts = [f"part {i} with some words" for i in range(8)] + ["seed 8"]
    one_line = compose_figure(view, "t", "short")
    fig = compose_figure(view, "t", "  ·  ".join(parts))
    assert fig.width() == 400 and fig.height() > one_line.height() + 40  # several caption lines, not one cut line


def _fake_eval_script(tmp_path, result: dict | None, exit_code=0, stderr_last="", delay=0.05):
    """argv of a process that behaves like `mage eval --json -`: progress lines on stderr, the summary line and the
    indented JSON result on stdout."""
    import json
    import sys

    script = tmp_path / "fake_eval.py"
    script.write_text(
        "import json, sys, time\n"
        "for i in range(1, 5):\n"
        "    sys.stderr.write(f'eval pointmaze-umaze [###---] {i * 75}/300 steps 100/s ETA 1s\\n'); sys.stderr.flush()\n"
        f"    time.sleep({delay})\n"
        f"result = json.loads({json.dumps(json.dumps(result))})\n"
        "if result is not None:\n"
        "    print('pointmaze-umaze: return 150.0 ± 5.0 (n=4)', flush=True)\n"
        "    print(json.dumps(result, indent=2), flush=True)\n"
        f"sys.stderr.write({stderr_last!r})\n"
        f"sys.exit({exit_code})\n")
    return [sys.executable, str(script)]


EVAL_RESULT = {"task": "pointmaze-umaze", "returns": [140.0, 150.0, 155.0, 155.0], "n": 4, "mean": 150.0, "se": 3.54,
               "normalised_mean": 92.5, "normalised_se": 2.1, "success_rate": 1.0, "extra": {"rtg_target": 160.0}}


def test_evaluate_n_episodes_runs_mage_eval_as_a_subprocess_with_progress_and_mean_se(window, qtbot, tmp_path):
    from mage_studio.docks.run import eval_argv

    win = window
    _planned(win, qtbot)
    run = win.run_dock
    # an in-memory planner has no file for `mage eval`: a clear message, no process
    run.btn_eval.click()
    assert not run.eval_proc.is_running() and "checkpoint" in win.errors[-1]
    win.last_dialog.close()
    asked = []

    def fake(ckpt, n, rtg):
        asked.append((ckpt, n, rtg))
        return _fake_eval_script(tmp_path, EVAL_RESULT, delay=0.3)

    run.eval_command_override = fake
    run.spin_episodes.setValue(4)
    run.btn_eval.click()
    assert run.eval_proc.is_running() and not run.btn_eval.isEnabled() and run.btn_eval_stop.isEnabled()
    assert asked == [(None, 4, pytest.approx(win.state.rtg))]
    qtbot.waitUntil(lambda: run.eval_progress.maximum() == 300 and run.eval_progress.value() >= 75, timeout=10000)
    assert run.eval_progress.isVisible()  # progress while it runs; the window is not waiting on it
    qtbot.waitUntil(lambda: not run.eval_proc.is_running() and run.btn_eval.isEnabled(), timeout=15000)
    assert run.eval_result["mean"] == 150.0
    text = run.lbl_eval.text()
    assert "4 episodes: return 150.0 ± 3.5 (s.e.)" in text and "normalised 92.5 ± 2.1" in text and "success 100%" in text
    # the real command line: the CLI's own flags, the result as JSON on stdout
    argv = eval_argv("x.pt", 7, 160.0)
    assert argv[3:] == ["eval", "--checkpoint", "x.pt", "--episodes", "7", "--json", "-", "--rtg", "160"]
    # a failing `mage eval`: its error line in a clear message, the dock ready again
    n_err = len(win.errors)
    run.eval_command_override = lambda *a: _fake_eval_script(tmp_path, None, exit_code=2,
                                                             stderr_last="mage: error: env cannot be made\n")
    run.btn_eval.click()
    qtbot.waitUntil(lambda: len(win.errors) > n_err, timeout=15000)
    assert "env cannot be made" in win.errors[-1] and "Evaluation failed" in run.lbl_eval.text()
    assert run.btn_eval.isEnabled() and not run.eval_progress.isVisible()
    win.last_dialog.close()


def test_evaluate_on_a_real_checkpoint_gives_the_clis_numbers(window, qtbot, tiny_checkpoint, tiny_dataset):
    win = window
    win.controller.open_checkpoint(str(tiny_checkpoint))
    qtbot.waitUntil(lambda: win.state.planner_path == str(tiny_checkpoint) and win.state.plan is not None,
                    timeout=60000)
    run = win.run_dock
    run.spin_episodes.setValue(2)
    run.btn_eval.click()
    qtbot.waitUntil(lambda: not run.eval_proc.is_running(), timeout=240000)
    assert run.eval_result is not None, run.lbl_eval.text()
    assert run.eval_result["n"] == 2 and "2 episodes: return" in run.lbl_eval.text() and "±" in run.lbl_eval.text()


def test_a_closed_loop_run_records_viewport_frames_and_exports_a_gif_or_png_frames(window, qtbot, tmp_path,
                                                                                   monkeypatch):
    from PIL import Image

    win = window
    _planned(win, qtbot)
    run = win.run_dock
    assert not run.btn_export_rollout.isEnabled()
    run.spin_len.setValue(6)
    for _ in range(6):  # one step at a time: each waits for the frame that shows it
        n = len(run.rollout_frames)
        run.btn_step.click()
        qtbot.waitUntil(lambda: len(run.rollout_frames) > n, timeout=10000)
    assert run.rollout_steps == [1, 2, 3, 4, 5, 6] and run.btn_export_rollout.isEnabled()
    out = []
    run.export_rollout(str(tmp_path / "run.gif"), out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=20000)
    gif = Image.open(tmp_path / "run.gif")
    assert gif.format == "GIF" and gif.n_frames == 6 and gif.size[0] <= 540
    first = Image.open(__import__("io").BytesIO(run.rollout_frames[0]))
    assert gif.size == first.size and "Saved the rollout" in run.lbl_status.text()
    # the frames differ: the agent moves and the header counts the steps
    assert run.rollout_frames[0] != run.rollout_frames[-1]
    # without Pillow: a numbered PNG sequence, and the dock says so
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    out.clear()
    run.export_rollout(str(tmp_path / "run2.gif"), out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=20000)
    folder, kind = out[0]
    assert kind == "png-sequence" and sorted(p.name for p in folder.iterdir())[0] == "frame_0000.png"
    assert len(list(folder.iterdir())) == 6 and "Pillow is not installed" in run.lbl_status.text()
    # Reset starts a new recording; Play shows (and records) every step, never outrunning the viewport
    run.btn_reset.click()
    assert run.rollout_frames == [] and not run.btn_export_rollout.isEnabled()
    run.spin_len.setValue(12)
    run.btn_play.click()
    qtbot.waitUntil(lambda: run.frame is not None and run.frame.done and not run.playing, timeout=30000)
    qtbot.waitUntil(lambda: len(run.rollout_steps) == 12, timeout=5000)
    assert run.rollout_steps == list(range(1, 13))


def test_compare_overlays_a_second_rtg_targets_finest_plan_from_the_same_start(window, qtbot):
    from mage_core.suites.pointmaze import geometry

    win = window
    _planned(win, qtbot)
    s, dock, vp = win.state, win.plan_dock, win.viewport
    s.rtg = 250.0
    qtbot.waitUntil(lambda: s.plan is not None and s.plan.condition_rtg == 250.0 and not win.controller.busy,
                    timeout=10000)
    qtbot.waitUntil(lambda: vp.frame is not None, timeout=5000)
    before = vp.grab().toImage()
    lo, hi = s.rtg_range()
    dock.spin_compare.setValue(10 * hi)
    assert dock.spin_compare.value() == pytest.approx(hi)  # limited to the data's range like the first target
    dock.spin_compare.setValue(20)
    dock.btn_compare.click()
    qtbot.waitUntil(lambda: s.overlay.compare_plan is not None, timeout=10000)
    obs = s.condition_obs()
    expect = s.planner.plan(obs, 20.0, seed=s.seed)  # same start, goal and seed; only the target differs
    assert s.overlay.compare_plan.condition_rtg == 20.0
    np.testing.assert_allclose(vp.compare_xy, expect.states_KHD[-1][:, :2], atol=1e-6)
    assert any("dashed grey: RTG 20" in label for label, _ in vp.legend)
    assert "RTG 20" in dock.lbl_compare.text() and "apart on average" in dock.lbl_compare.text()
    assert "compared with RTG target 20" in figure_caption(win.state)[1]
    assert vp.grab().toImage() != before  # drawn over the view
    # the comparison follows the condition: a new start re-plans it from there
    new_start = geometry(s.task).cell_to_xy((1, 2))
    assert s.set_start(new_start)
    qtbot.waitUntil(lambda: np.allclose(s.overlay.compare_plan.states_KHD[-1][0, :2], new_start, atol=0.6)
                    and np.allclose(vp.compare_xy, s.planner.plan(s.condition_obs(), 20.0, seed=s.seed)
                                    .states_KHD[-1][:, :2], atol=1e-6), timeout=10000)
    # a closed-loop run hides it; Clear removes it
    win.run_dock.btn_step.click()
    qtbot.waitUntil(lambda: win.run_dock.frame is not None, timeout=10000)
    assert vp.compare_xy is None
    win.run_dock.btn_reset.click()
    assert vp.compare_xy is not None
    dock.btn_compare_clear.click()
    assert vp.compare_xy is None and s.overlay.compare_plan is None
    assert not any("dashed grey" in label for label, _ in vp.legend)


def test_every_control_in_every_dock_and_the_toolbar_explains_itself(window, qtbot):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QSlider

    win = window
    _planned(win, qtbot)
    missing = []
    for d in win.docks:
        for T in (QAbstractButton, QAbstractSpinBox, QComboBox, QSlider, QLineEdit):
            for w in d.findChildren(T):
                inner = isinstance(w, QLineEdit) and isinstance(w.parent(), (QComboBox, QAbstractSpinBox))
                if not inner and not w.objectName().startswith("qt_") and not w.toolTip():
                    missing.append((d.objectName(), type(w).__name__, getattr(w, "text", lambda: "")()))
    missing += [("toolbar", a.text()) for a in win.toolbar.actions() if not a.isSeparator() and not a.toolTip()]
    assert missing == []
    # the terms a newcomer meets first: condition, feasible, refine to scale, dots, seed, compare
    cd, pd = win.condition_dock, win.plan_dock
    assert "condition" in cd.lbl_used.toolTip().lower() and "ceiling" in cd.lbl_range.toolTip()
    assert "Refine to scale" in pd.refine.toolTip() and "dots" in pd.lbl_dots.text().lower()
    assert "seed" in pd.spin_seed.toolTip().lower() and "same start" in pd.spin_compare.toolTip()


def test_stage_lines_are_numbered_and_the_stage_names_are_listed_under_the_legend(window):
    dock = window.train_dock
    stages = [{"name": "autoencoder", "steps": 300}, {"name": "transformer", "steps": 300},
              {"name": "refine", "steps": 300}]
    dock.on_event({"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": stages})
    assert [label for _, label in dock.markers] == ["1", "2", "3"]  # full names overlapped in a 300-px panel
    assert "stages: 1 autoencoder · 2 transformer · 3 refine" in dock.lbl_legend.text()
    dock._clear_plots()
    assert dock.stage_names == [] and dock.lbl_legend.text() == ""
