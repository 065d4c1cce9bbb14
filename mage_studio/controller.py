"""The studio's controller: re-plans (debounced, on a worker thread) whenever the condition changes, and loads tasks,
datasets and checkpoints into the state without the window ever waiting."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject

from mage_core.errors import MageError
from mage_core.tasks import get_task
from mage_studio.qt_util import UiInvoker, Worker
from mage_studio.state import DatasetView, episode_rtg0

PLANNER_THREADS = int(os.environ.get("MAGE_STUDIO_THREADS", "1"))  # torch CPU threads for batch-1 planning (more
# threads only add synchronisation overhead at batch 1, and spin badly on a shared CPU)


class StudioController(QObject):
    """Drives the StudioState: plans for every new condition (one plan at a time, the latest condition wins) and runs
    the slow loading work on its worker thread, delivering results to the state on the UI thread."""

    def __init__(self, state, report_error: Callable[[str, str], None], show_status: Callable[[str, int], None],
                 planner_device: str = "cpu", parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.report_error = report_error  # (title, message): a non-blocking error dialog
        self.show_status = show_status  # (text, milliseconds): a status-bar line (0: until replaced)
        self.planner_device = planner_device  # where loaded checkpoints plan (batch-1 planning is fastest on CPU)
        self.invoker = UiInvoker(self)
        self.worker = Worker(self.invoker, threads=1, name="mage-plan")
        self._busy = False
        self._dirty = False
        self._closed = False
        self._requested_at = 0.0
        self.dataset_pending: Callable[[], bool] = lambda: False  # whether a dataset is being generated right now
        state.events.condition.connect(lambda _c: self.request_replan())  # first of the condition's subscribers

    @property
    def busy(self) -> bool:
        """A plan is being made on the worker."""
        return self._busy

    def run_in_background(self, fn: Callable, on_done: Callable | None = None, on_error: Callable | None = None):
        """fn() on the worker (after any plan queued before it); on_done(result) or on_error(message) on the UI
        thread."""
        return self.worker.submit(fn, on_done, on_error)

    # ---- planning ----------------------------------------------------------------------------------------------
    def request_replan(self) -> None:
        """Plan the condition now, on the worker, while the window repaints (a timer would wait for the repaint);
        while a plan is being made, the latest condition is planned as soon as it is done (changes coalesce)."""
        if self.state.planner is None:
            return
        if not self._dirty:
            self._requested_at = time.perf_counter()
        self._start_plan()

    def replan_now(self) -> None:
        self._requested_at = time.perf_counter()
        self._start_plan()

    def _start_plan(self) -> None:
        s = self.state
        if s.planner is None:
            return
        if self._busy:
            self._dirty = True
            return
        self._busy = True
        try:
            obs = s.condition_obs()  # may itself set the condition (a robot's first start state): already included
        except MageError as exc:
            self._busy = False
            s.events.plan_failed.emit(str(exc))
            return
        self._dirty = False
        planner, rtg, seed = s.planner, s.rtg, s.seed
        held = {"prefix_tokens": list(s.held_tokens)} if s.held_tokens else {}  # the finer scales only
        self.worker.submit(lambda: planner.plan(obs, rtg, seed=seed, **held), self._plan_done, self._plan_error)

    def _plan_done(self, plan) -> None:
        self._busy = False
        if self._closed:
            return
        self.state.replan_latency_ms = (time.perf_counter() - self._requested_at) * 1000
        self.state.plan = plan
        if self._dirty:
            self._dirty = False
            self._requested_at = time.perf_counter()
            self._start_plan()

    def _plan_error(self, msg: str) -> None:
        self._busy = False
        self._dirty = False
        self.state.events.plan_failed.emit(msg)
        self.state.events.notify.emit("error", f"Planning failed: {msg}")

    def nudge_rtg(self, frac: float) -> None:
        """Move the RTG target by this fraction of its range (PgUp / PgDn), within the range."""
        s = self.state
        lo, hi = s.rtg_range()
        s.rtg = float(np.clip(s.rtg + frac * (hi - lo), lo, hi))

    # ---- task / dataset / checkpoint -------------------------------------------------------------------------
    def show_task(self, name: str) -> None:
        """Show a built-in task (its evaluation start and goal); a checkpoint for another task is closed."""
        try:
            task = get_task(name)
        except MageError as exc:
            self.report_error("Unknown task", str(exc))
            return
        self._drop_planner_unless(name)
        self.state.task = task

    def _drop_planner_unless(self, task_name: str) -> None:
        """Close a loaded checkpoint that was trained for another task than `task_name`, saying so."""
        planner = self.state.planner
        if planner is not None and getattr(planner, "task", None) is not None and planner.task.name != task_name:
            self.show_status(f"The loaded checkpoint is for {planner.task.name}; showing {task_name} without it",
                             6000)
            self.state.close_planner()

    def open_dataset(self, id_or_path: str) -> None:
        self.show_status(f"Loading dataset {id_or_path}…", 0)

        def job():
            from mage_core.data.store import load_episodes

            task, episodes, meta = load_episodes(id_or_path)
            if not episodes:
                raise MageError(f"dataset {id_or_path} has no episodes")
            info = dict(meta) if isinstance(meta, dict) else {}
            return DatasetView(str(id_or_path), task, episodes, info, episode_rtg0(task, episodes))

        def done(ds: DatasetView):
            self._drop_planner_unless(ds.task.name)
            self.state.set_dataset(ds)

        self.worker.submit(job, done, lambda m: self.report_error("Cannot load dataset", m))

    def open_checkpoint(self, path: str) -> None:
        self.show_status(f"Loading checkpoint {path}…", 0)
        device = self.planner_device

        def job():
            if not Path(path).is_file():
                raise MageError(f"There is no checkpoint file at {path}.")
            try:
                import torch

                from mage_core.planner import Planner
            except ImportError as exc:
                raise MageError(f"this build has no planner engine ({exc})") from None
            torch.set_num_threads(max(1, PLANNER_THREADS))
            planner = Planner.from_checkpoint(path, device=device)
            _warm_up(planner)
            try:
                from mage_core.checkpoint import checkpoint_info

                info = checkpoint_info(path)
            except Exception:  # noqa: BLE001 - the card is optional: the dock falls back to the planner's fields
                info = None
            return planner, info

        self.worker.submit(job, lambda result: self.load_planner(result[0], path, result[1]),
                           lambda m: self.report_error("Cannot open checkpoint", m))

    def load_planner(self, planner, path: str | None = None, info: dict | None = None) -> None:
        """Install a planner (from a checkpoint or any object with the Planner API)."""
        prev = self.state.planner_path
        try:
            self.state.set_planner(planner, path, info or None)
        except MageError as exc:
            self.report_error("Cannot use checkpoint", str(exc))
            return
        self._load_dataset_for(planner)
        problems = self.state.compatibility()
        if problems:
            self.show_status("Checkpoint loaded with warnings: " + "; ".join(problems), 10000)
        elif prev and path and _bundled(prev) and not _bundled(path):  # e.g. a just-finished (tiny) training run
            self.show_status(f"{Path(path).name} replaces the bundled {Path(prev).name}. A checkpoint from a short "
                             f"run plans roughly: evaluate it (Run ▸ Evaluate) before trusting it; File ▸ Recent "
                             f"opens the bundled one again.", 15000)

    def _load_dataset_for(self, planner) -> None:
        """A checkpoint for another task than the loaded dataset's: load the data it was trained on (its recorded id,
        else the task's default dataset) when it is local, so the Data and Condition panels describe its task."""
        task = getattr(planner, "task", None)
        ds = self.state.dataset
        if task is None or (ds is not None and ds.task.name == task.name):
            return
        rec = (getattr(planner, "ckpt_meta", None) or {}).get("dataset") or {}
        try:
            from mage_core.data.store import list_datasets

            local = {r["id"]: r for r in list_datasets()}
        except Exception:  # noqa: BLE001 - no store: nothing to load
            local = {}
        for cand in (rec.get("id"), getattr(task, "dataset_id", None)):
            if cand and cand in local and local[cand].get("task") in (None, task.name):
                self.open_dataset(cand)
                return
        if self.dataset_pending():
            self.show_status(f"No local dataset for {task.name} yet: one is being generated (Data panel).", 10000)
            return
        self.show_status(f"No local dataset for {task.name}: generate one in the Data panel to see its summary and "
                         f"replay episodes.", 10000)

    def shutdown(self) -> None:
        self._closed = True
        self.worker.shutdown()


def _bundled(path: str) -> bool:
    """Whether a checkpoint file is one of the bundled ones (checkpoints/*.pt of the source checkout)."""
    from mage_core.bundled import CHECKPOINT_DIR

    return Path(path).resolve().parent == CHECKPOINT_DIR


def _warm_up(planner) -> None:
    """One throw-away plan so the first interactive plan is not paying for lazy initialisation."""
    import warnings

    task = getattr(planner, "task", None)
    if task is None:
        return
    obs = task.suite.example_condition(task, planner.obs_dim)
    if obs is None:  # any state of the right size warms the same code: the data's mean state
        norm = getattr(planner, "normaliser", None)
        if norm is None:
            return
        obs = np.asarray(norm.x_mean_D[1:], np.float32)
    lo, hi = getattr(planner, "rtg_range", (0.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        planner.plan(obs, 0.5 * (lo + hi), seed=0)
