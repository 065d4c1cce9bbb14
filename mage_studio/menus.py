"""The main window's menus, toolbar and keyboard shortcuts (set up on the window, as Qt's setupUi does)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox, QToolBar


def _action(win, text, shortcut=None, slot=None, checkable=False, tip=None) -> QAction:
    """A window action: its shortcut works anywhere in the window, its tooltip names the shortcut."""
    a = QAction(text, win)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if checkable:
        a.setCheckable(True)
    if slot is not None:
        a.triggered.connect(slot)
    if tip or shortcut:
        a.setToolTip(f"{tip or text} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
    win.addAction(a)
    return a


def _tool_action(win, text: str, shortcut: str, tool: str) -> QAction:
    return _action(win, text, shortcut, lambda: setattr(win.state, "tool", tool), True)


def setup_menus(win) -> None:
    """File, View, Run and Help menus and the toolbar of a MainWindow whose docks are built; the actions the window
    wires later are kept on it (act_*, recent_menu, view_menu, toolbar)."""
    m = win.menuBar()
    f = m.addMenu("&File")
    win.act_open_ckpt = _action(win, "Open checkpoint…", "Ctrl+O", win.open_checkpoint_dialog)
    win.act_open_ds = _action(win, "Open dataset folder…", "Ctrl+Shift+O", win.open_dataset_dialog)
    f.addAction(win.act_open_ckpt)
    f.addAction(win.act_open_ds)
    f.addAction(_action(win, "Open training log…", None, win.open_events_dialog))
    win.recent_menu = f.addMenu("Recent")
    f.addSeparator()
    f.addAction(_action(win, "Save figure (PNG)…", "Ctrl+E", win.export_image_dialog,
                        tip="The view at its full resolution with legend, title and a caption (checkpoint, RTG, seed, "
                            "scales)"))
    f.addAction(_action(win, "Export plan (JSON)…", "Ctrl+Shift+E", win.export_plan_dialog,
                        tip="The current plan: per-scale tokens, decoded states and RTG, and its condition"))
    f.addSeparator()
    f.addAction(_action(win, "Quit", "Ctrl+Q", win.close))

    v = m.addMenu("&View")
    vp = win.viewport
    win.act_top = _action(win, "Top-down view", "T", vp.view_top_down, tip="Top-down camera preset")
    win.act_orbit_view = _action(win, "Orbit view", "V", vp.view_orbit, tip="Three-quarter orbit camera")
    v.addAction(win.act_top)
    v.addAction(win.act_orbit_view)
    v.addSeparator()
    win.tool_group = QActionGroup(win)
    win.act_tool_nav = _tool_action(win, "Orbit tool", "O", "navigate")
    win.act_tool_start = _tool_action(win, "Place start", "S", "start")
    win.act_tool_goal = _tool_action(win, "Place goal", "G", "goal")
    for a in (win.act_tool_nav, win.act_tool_start, win.act_tool_goal):
        win.tool_group.addAction(a)
        v.addAction(a)
    v.addSeparator()
    win.act_coarser = _action(win, "Coarser scale", "[", lambda: win.plan_dock.step_refine(-1))
    win.act_finer = _action(win, "Finer scale", "]", lambda: win.plan_dock.step_refine(+1))
    v.addAction(win.act_coarser)
    v.addAction(win.act_finer)
    v.addSeparator()
    for d in win.docks:
        v.addAction(d.toggleViewAction())
    win.act_reset_layout = _action(win, "Reset layout", None, win.reset_layout,
                                   tip="Show every panel and the toolbar in their default places")
    win.view_menu = v

    r = m.addMenu("&Run")
    ctl = win.controller
    win.act_play = _action(win, "Play / pause", "Space", win.run_dock.toggle_play)
    win.act_step = _action(win, "Step", "N", win.run_dock.step_once)
    win.act_reset = _action(win, "Reset", "R", win.run_dock.reset)
    win.act_replan = _action(win, "Re-plan now", "F5", ctl.replan_now)
    win.act_rtg_up = _action(win, "RTG +5%", "PgUp", lambda: ctl.nudge_rtg(+0.05))
    win.act_rtg_down = _action(win, "RTG -5%", "PgDown", lambda: ctl.nudge_rtg(-0.05))
    win.act_train = _action(win, "Start training", "Ctrl+T", lambda: win.train_dock.start(False))
    for a in (win.act_play, win.act_step, win.act_reset, win.act_replan, win.act_rtg_up, win.act_rtg_down,
              win.act_train):
        r.addAction(a)

    h = m.addMenu("&Help")
    h.addAction(_action(win, "Keyboard shortcuts", "F1", lambda: show_shortcuts(win)))

    tb = QToolBar("Toolbar")
    tb.setObjectName("toolbar_main")
    tb.setMovable(False)
    win.addToolBar(tb)
    win.toolbar = tb
    v.addAction(tb.toggleViewAction())  # a hidden toolbar can always be brought back from the View menu
    v.addSeparator()
    v.addAction(win.act_reset_layout)
    for group in ((win.act_open_ckpt, win.act_open_ds), (win.act_top, win.act_orbit_view),
                  (win.act_tool_nav, win.act_tool_start, win.act_tool_goal),
                  (win.act_play, win.act_step, win.act_reset)):
        if tb.actions():
            tb.addSeparator()
        for a in group:
            tb.addAction(a)


def show_shortcuts(win) -> None:
    """A non-blocking list of every window action with a shortcut (kept as win.last_dialog)."""
    rows = sorted({(a.text().replace("&", ""), a.shortcut().toString()) for a in win.actions()
                   if not a.shortcut().isEmpty()}, key=lambda r: r[0])
    text = "\n".join(f"{k:<14} {name}" for name, k in rows)
    text += "\n\nMouse: left-drag orbits (Orbit tool) or places (Start/Goal tools); right-drag pans; wheel zooms;" \
            "\nCtrl+click places the start, Shift+click the goal; double-click returns to the top-down view."
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", text, QMessageBox.StandardButton.Ok, win)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setStyleSheet("QLabel { font-family: monospace; }")
    box.open()
    win.last_dialog = box
