"""The Plan dock's steering panel: hold the coarse scales 1..k while the finer ones are resampled, and ask for
alternatives that differ at scale k (drawn faintly in the view; click one to adopt it)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QGridLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from mage_studio.docks.base import heading, muted

DEFAULT_ALTERNATIVES = 4  # alternatives asked for by default
MAX_ALTERNATIVES = 8  # most alternatives the panel asks for (each is drawn in the view)
LIST_ROWS = 4  # rows of the alternatives list shown without scrolling


def condition_key(state) -> tuple:
    """What alternatives depend on besides the seed: start, goal, start state, RTG target (compared as bytes)."""
    c = state.condition

    def b(v):
        return None if v is None else np.asarray(v, dtype=np.float64).tobytes()

    return b(c.start_xy), b(c.goal_xy), b(c.state_template), float(c.rtg)


class SteerPanel(QWidget):
    """Scale k, "Hold scales 1..k" and "Alternatives at scale k" with the list of alternatives (click to adopt)."""

    def __init__(self, state, act, parent=None):
        super().__init__(parent)
        self.state = state
        self.act = act
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(heading("Steer by the coarse plan"))
        grid = QGridLayout()
        grid.addWidget(QLabel("Scale k"), 0, 0)
        self.spin_scale = QSpinBox()
        self.spin_scale.setRange(1, 1)
        self.spin_scale.setToolTip("The coarse scales 1..k to hold, or up to which the alternatives differ")
        grid.addWidget(self.spin_scale, 0, 1)
        self.chk_hold = QCheckBox("Hold scales 1..1")
        self.chk_hold.setToolTip("Keep this plan's token maps of scales 1..k: Resample, a new RTG target and a run "
                                 "then sample only the finer scales (moving the start or the goal releases them)")
        grid.addWidget(self.chk_hold, 1, 0, 1, 2)
        grid.addWidget(QLabel("How many"), 2, 0)
        self.spin_n = QSpinBox()
        self.spin_n.setRange(2, MAX_ALTERNATIVES)
        self.spin_n.setValue(DEFAULT_ALTERNATIVES)
        self.spin_n.setToolTip("How many alternatives to ask for (fewer come back when the model proposes fewer)")
        grid.addWidget(self.spin_n, 2, 1)
        self.btn_alts = QPushButton("Alternatives at scale 1")
        self.btn_alts.setToolTip("Plans whose scales 1..k differ — the most likely distinct coarse plans of many "
                                 "sampled — each completed to the finest scale, drawn faintly and numbered in the "
                                 "view; click one in the list to adopt it (its scales 1..k are then held)")
        grid.addWidget(self.btn_alts, 3, 0, 1, 2)
        lay.addLayout(grid)
        self.lst = QListWidget()
        self.lst.setMaximumHeight(LIST_ROWS * self.lst.fontMetrics().lineSpacing() + 12)
        self.lst.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lst.setVisible(False)
        self.lst.setToolTip("Click an alternative to adopt it: its coarse scales are held and it becomes the plan")
        lay.addWidget(self.lst)
        self.lbl = muted("")
        lay.addWidget(self.lbl)
        self._busy = False
        self._alts_key: tuple | None = None  # the condition the alternatives were planned for
        self._alts_seed = 0  # ... and their seed (adopting with it reproduces an alternative exactly)
        self.spin_scale.valueChanged.connect(self._scale_changed)
        self.chk_hold.toggled.connect(self.set_hold)
        self.btn_alts.clicked.connect(self.request_alternatives)
        self.lst.itemClicked.connect(lambda item: self.adopt(self.lst.row(item)))
        ev = state.events
        ev.planner.connect(self._on_planner)
        ev.condition.connect(lambda _c: self._on_condition())
        ev.overlay.connect(lambda _o: self._fill_list())

    # ---- scale and hold ----------------------------------------------------------------------------------------
    def _on_planner(self, planner) -> None:
        K = len(getattr(planner, "scales", ()) or ()) if planner is not None else 0
        self.spin_scale.blockSignals(True)
        self.spin_scale.setRange(1, max(K - 1, 1))  # holding every scale leaves nothing to sample
        self.spin_scale.setValue(min(2, max(K - 1, 1)))
        self.spin_scale.blockSignals(False)
        self._label_scale(self.spin_scale.value())
        self.setEnabled(planner is not None and hasattr(planner, "alternatives"))
        self.lbl.setText("" if planner is None or hasattr(planner, "alternatives")
                         else "This planner cannot hold scales or propose alternatives.")
        self._alts_key = None
        self._sync_hold()

    def _label_scale(self, k: int) -> None:
        self.chk_hold.setText(f"Hold scales 1..{k}")
        self.btn_alts.setText(f"Alternatives at scale {k}")

    def _scale_changed(self, k: int) -> None:
        self._label_scale(k)
        if self.chk_hold.isChecked():
            self.set_hold(True)  # hold scales 1..k of the plan on show now

    def set_hold(self, on: bool) -> None:
        """Hold the current plan's scales 1..k (on) or release them."""
        s = self.state
        if not on:
            if s.held_tokens is not None:
                s.held_tokens = None
            return
        if s.plan is None:
            self.lbl.setText("There is no plan to hold yet.")
            self._sync_hold()
            return
        k = self.spin_scale.value()
        s.held_tokens = tuple(np.asarray(t) for t in s.plan.tokens[:k])

    def _sync_hold(self) -> None:
        """The checkbox and the note say what the state holds (a moved start releases it)."""
        held = self.state.held_tokens
        self.chk_hold.blockSignals(True)
        self.chk_hold.setChecked(held is not None)
        self.chk_hold.blockSignals(False)
        if held is not None and self.spin_scale.value() != len(held):
            self.spin_scale.blockSignals(True)
            self.spin_scale.setValue(len(held))
            self.spin_scale.blockSignals(False)
            self._label_scale(len(held))
        if held is not None:
            self.lbl.setText("Holding " + "; ".join(f"scale {k + 1}: {np.asarray(t).tolist()}"
                                                    for k, t in enumerate(held)))
        elif self.lbl.text().startswith("Holding"):
            self.lbl.setText("")

    def _on_condition(self) -> None:
        self._sync_hold()
        s = self.state
        if s.overlay.alternatives and self._alts_key is not None and condition_key(s) != self._alts_key:
            self._alts_key = None  # planned for another start, goal or target: no longer alternatives of this plan
            s.update_overlay(alternatives=(), alternatives_scale=0)

    # ---- alternatives ------------------------------------------------------------------------------------------
    def request_alternatives(self) -> None:
        """Plan the alternatives at scale k on the worker; the state's overlay gets them when they are in."""
        s = self.state
        if s.planner is None or self._busy:
            return
        try:
            obs = s.condition_obs()
        except Exception as exc:  # noqa: BLE001 - no condition yet: say why
            self.lbl.setText(f"Cannot plan alternatives: {exc}")
            return
        planner, rtg, seed, k, n = s.planner, s.rtg, s.seed, self.spin_scale.value(), self.spin_n.value()
        key = condition_key(s)
        self._busy = True
        self.btn_alts.setEnabled(False)
        self.lbl.setText(f"Planning {n} alternatives at scale {k}…")

        def done(alts):
            self._busy = False
            self.btn_alts.setEnabled(True)
            if key != condition_key(s):  # the condition moved on meanwhile
                self.lbl.setText("The condition changed while planning; ask again.")
                return
            self._alts_key, self._alts_seed = key, seed
            s.update_overlay(alternatives=tuple(alts), alternatives_scale=k)
            fewer = f" (the model proposed only {len(alts)} distinct ones)" if len(alts) < n else ""
            self.lbl.setText(f"{len(alts)} alternatives differing at scales 1..{k}{fewer}; click one to adopt it.")

        def failed(msg):
            self._busy = False
            self.btn_alts.setEnabled(True)
            self.lbl.setText(f"Alternatives failed: {msg}")

        self.act.run_in_background(lambda: planner.alternatives(obs, rtg, scale=k, n=n, seed=seed), done, failed)

    def _fill_list(self) -> None:
        s = self.state
        alts, k = s.overlay.alternatives, s.overlay.alternatives_scale
        self.lst.clear()
        task = s.task
        goal = s.goal_xy
        for i, a in enumerate(alts):
            text = f"{i + 1} · log p {a.prefix_logprob:.2f}"
            tip = f"Alternative {i + 1}: log-probability {a.prefix_logprob:.2f} of its scales 1..{k}"
            end = task.suite.agent_point(task, np.asarray(a.states_KHD)[-1]) if task is not None else None
            if end is not None and goal is not None:
                near = float(np.linalg.norm(end - goal, axis=1).min())
                text += f" · {near:.1f} from the goal"
                tip += f"; its finest plan comes within {near:.2f} of the goal"
            item = QListWidgetItem(text)
            item.setToolTip(tip + "; coarse tokens " + "; ".join(
                f"scale {j + 1}: {np.asarray(t).tolist()}" for j, t in enumerate(a.tokens[:k])))
            self.lst.addItem(item)
        self.lst.setVisible(bool(alts))

    def adopt(self, i: int) -> None:
        """Adopt alternative i: its scales 1..k are held and it is planned again with its own seed (the same plan)."""
        s = self.state
        alts, k = s.overlay.alternatives, s.overlay.alternatives_scale
        if not 0 <= i < len(alts):
            return
        s.adopt(alts[i].tokens[:k], self._alts_seed)
        self.lbl.setText(f"Adopted alternative {i + 1}: scales 1..{k} held; Resample varies the finer ones.")
        self.lst.setCurrentRow(i)
