"""Shared pieces of the docks: a base dock holding the studio's state and actions, small layout and plot helpers."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

PLOT_BG = (24, 28, 37)  # pyqtgraph background matching the dark theme
PLOT_FG = (200, 205, 215)  # pyqtgraph axis/text colour


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background=PLOT_BG, foreground=PLOT_FG, antialias=True, exitCleanup=False)


class StudioDock(QDockWidget):
    """A dock whose content scrolls; subclasses fill `self.body` (a QVBoxLayout). A dock reads and sets the studio's
    `state` (a StudioState) and asks anything else of the studio through `act` (an Actions)."""

    def __init__(self, title: str, object_name: str, state, act, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.setObjectName(object_name)
        self.state = state
        self.act = act
        inner = QWidget()
        self.body = QVBoxLayout(inner)
        self.body.setContentsMargins(10, 8, 10, 8)
        self.body.setSpacing(8)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        self.setWidget(scroll)
        self.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)


def heading(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setObjectName("heading")
    return lab


def muted(text: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setObjectName("muted")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab
