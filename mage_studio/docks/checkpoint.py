"""Checkpoint dock: open a checkpoint, show its config and training metrics, and whether it fits the dataset/env."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QTreeWidget, QTreeWidgetItem

from mage_studio.docks.base import StudioDock, heading, muted


def _fill(parent, value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            item = QTreeWidgetItem([str(k), "" if isinstance(v, (dict, list)) and v and _nested(v) else _short(v)])
            parent.addChild(item) if isinstance(parent, QTreeWidgetItem) else parent.addTopLevelItem(item)
            if isinstance(v, (dict, list)) and _nested(v):
                _fill(item, v)
    elif isinstance(value, list):
        _fill(parent, {str(i): v for i, v in enumerate(value)})


def _nested(v) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v[:12]) + (", …]" if len(v) > 12 else "]")
    s = str(v)
    return s if len(s) < 120 else s[:117] + "…"


def dataset_identity(planner, ds) -> str | None:
    """Whether the loaded dataset is the one the checkpoint was trained on, by content size, not only by id (the
    100k-step dataset the studio generates and a 1M-step one share the id mage/<task>/expert-v0). None = same or
    unknown; otherwise a sentence saying how they differ."""
    rec = (getattr(planner, "ckpt_meta", None) or {}).get("dataset") or {}
    if ds is None or not rec:
        return None
    steps, episodes = rec.get("steps"), rec.get("episodes")
    size = f"{steps:,} steps in {episodes:,} episodes" if steps is not None and episodes is not None else None
    here = f"{ds.steps:,} steps in {len(ds.episodes):,} episodes"
    if rec.get("id") not in (None, ds.id):
        return f"the checkpoint was trained on {rec.get('id')}" + (f" ({size})" if size else "") + \
            f"; the loaded dataset is {ds.id} ({here})"
    if (steps is not None and int(steps) != ds.steps) or (episodes is not None and int(episodes) != len(ds.episodes)):
        return (f"the loaded {ds.id} is not the data the checkpoint was trained on: same id, but {here}, where the "
                f"training data had {size}")
    return None


class CheckpointDock(StudioDock):
    """Open a checkpoint; see what it is and whether it matches the loaded dataset."""

    def __init__(self, state, act, parent=None):
        super().__init__("Checkpoint", "dock_checkpoint", state, act, parent)
        row = QHBoxLayout()
        self.btn_open = QPushButton("Open checkpoint…")
        self.btn_open.setToolTip("Open a .pt checkpoint (Ctrl+O)")
        self.btn_open.clicked.connect(lambda: act.open_checkpoint_dialog())
        row.addWidget(self.btn_open)
        self.body.addLayout(row)
        self.lbl_path = muted("No checkpoint loaded.")
        self.body.addWidget(self.lbl_path)
        self.body.addWidget(heading("Compatibility"))
        self.lbl_compat = muted("—")
        self.body.addWidget(self.lbl_compat)
        self.body.addWidget(heading("Model and training"))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["key", "value"])
        self.tree.setMinimumHeight(220)
        self.tree.setColumnWidth(0, 170)
        self.body.addWidget(self.tree, 1)
        state.events.planner.connect(self._on_planner)
        state.events.dataset.connect(lambda _ds: self._compat())

    def show_info(self, info: dict) -> None:
        self.tree.clear()
        _fill(self.tree, info)
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.text(0) in ("metrics", "dataset", "spaces"):
                item.setExpanded(True)

    def _on_planner(self, planner) -> None:
        if planner is None:  # closed: nothing left of it here
            self.lbl_path.setText("No checkpoint loaded.")
            self.tree.clear()
            self._compat()
            return
        path = self.state.planner_path or "(in-memory planner)"
        self.lbl_path.setText(f"{path}\n{len(planner.scales)} scales {tuple(planner.scales)}, horizon {planner.horizon}, "
                              f"obs {planner.obs_dim}, act {planner.act_dim}")
        info = self.state.planner_info or getattr(planner, "info", None)
        if not isinstance(info, dict):
            info = {k: getattr(planner, k) for k in ("horizon", "scales", "obs_dim", "act_dim", "rtg_range")
                    if hasattr(planner, k)}
        self.show_info(info)
        self._compat()

    def _compat(self) -> None:
        s = self.state
        if s.planner is None:
            self.lbl_compat.setText("—")
            return
        problems = s.compatibility()
        other = dataset_identity(s.planner, s.dataset)
        if other and not problems:
            problems = [other]
        if problems:
            self.lbl_compat.setObjectName("warning")
            self.lbl_compat.setText("⚠ " + "; ".join(problems))
        elif s.dataset is None:
            self.lbl_compat.setObjectName("muted")
            self.lbl_compat.setText(f"Task {s.task.name}: no dataset loaded to compare with.")
        else:
            self.lbl_compat.setObjectName("ok")
            self.lbl_compat.setText(f"✓ matches dataset {s.dataset.id} ({s.dataset.obs_dim} obs dims, "
                                    f"{s.dataset.act_dim} action dims, task {s.task.name})")
        self.lbl_compat.style().unpolish(self.lbl_compat)
        self.lbl_compat.style().polish(self.lbl_compat)
