"""Qt helpers: run short work on worker threads and deliver results on the UI thread; non-blocking error reporting."""
from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import gc

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from mage_core.errors import MageError


class UiInvoker(QObject):
    """Lives on the UI thread; `call(fn, *args)` from any thread runs fn on the UI thread (queued signal, not a lambda)."""

    _invoke = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._invoke.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def call(self, fn: Callable, *args) -> None:
        self._invoke.emit((fn, args))

    @Slot(object)
    def _run(self, item) -> None:
        fn, args = item
        try:
            fn(*args)
        except RuntimeError as exc:  # a callback for a widget that was closed meanwhile
            if "deleted" not in str(exc):
                raise


UNSAFE_ADVICE = ("weights_only", "arbitrary code")  # sentences naming these (torch's "re-run with weights_only=False")
# are dropped from any message shown: following that advice would run whatever code a file holds


def as_sentence(text: str) -> str:
    """Message text as full sentences: unsafe advice removed, a capital first letter, a final full stop."""
    import re

    text = " ".join(str(text).split())
    parts = re.split(r"(?<=[.!?])\s+", text)
    kept = [p for p in parts if not any(w in p.lower() for w in UNSAFE_ADVICE)]
    text = " ".join(kept).strip() or "Something went wrong, and the reason could not be shown safely."
    if text[0].islower():
        text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text


def error_text(exc: BaseException) -> str:
    """User-facing text for an exception: a MageError's own words, others with their kind, as full sentences."""
    if isinstance(exc, MageError):
        return as_sentence(str(exc))
    return as_sentence(f"{type(exc).__name__}: {exc}")


class Worker:
    """A small pool for short jobs (one plan, one rollout step); callbacks run on the UI thread."""

    def __init__(self, invoker: UiInvoker, threads: int = 1, name: str = "mage-worker"):
        self.invoker = invoker
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None):
        def job():
            try:
                result = fn()
            except Exception as exc:  # delivered to the UI as a message, never a dead window
                if not isinstance(exc, MageError):
                    traceback.print_exc()
                if on_error is not None:
                    self.invoker.call(on_error, error_text(exc))
                return
            if on_done is not None:
                self.invoker.call(on_done, result)

        return self.pool.submit(job)

    def shutdown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """A non-blocking (window-modal, `open()`ed) error dialog; returns it so tests can find and close it."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, as_sentence(message), QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("mageErrorDialog")
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


class MainThreadGC(QObject):
    """Runs Python's cyclic garbage collector on the GUI thread only (a timer), never on a worker thread.

    Collected on a worker thread, a cycle holding QObjects destroys them off their thread, which leaves dangling Qt
    timers behind (a crash in QTimerInfoList::activateTimers). stop() hands collection back to Python.
    """

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    @Slot()
    def check(self) -> None:
        t0, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        if c0 > t0:
            gc.collect(2 if c2 > t2 else 1 if c1 > t1 else 0)

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()
