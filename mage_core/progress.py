"""The engine's one progress bar (stderr, with rate and ETA) and its one JSON-lines event writer (what the studio reads)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np


class ProgressBar:
    """A one-line progress bar on stderr: label, bar, count, rate, ETA. Quiet when disabled or not a terminal-like run."""

    def __init__(self, total: int, label: str = "", unit: str = "steps", enabled: bool = True, stream=None,
                 min_interval_s: float = 0.2, initial: int = 0):
        self.total, self.label, self.unit, self.enabled = max(int(total), 1), label, unit, enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.min_interval_s = min_interval_s  # minimum seconds between redraws
        self._last = 0.0
        self.initial = int(initial)  # count already done when the bar starts (a resumed run): not part of the rate
        self.done = self.initial
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_log = 0.1  # when not a terminal, log a plain line at every further 10%

    def update(self, done: int, extra: str = "") -> None:
        """Show `done` of `total` (an absolute count), with `extra` text after the ETA."""
        self.done = int(done)
        now = time.perf_counter()
        if not self.enabled or (now - self._last < self.min_interval_s and self.done < self.total):
            return
        if not self.tty and self.done / self.total < self._next_log and self.done < self.total:
            return
        self._last = now
        elapsed = now - self.t0
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        frac = min(self.done / self.total, 1.0)
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta_s = f"{eta:5.0f}s" if eta != float("inf") else "    ?"
        line = f"\r{self.label} [{bar}] {self.done}/{self.total} {self.unit} {rate:,.0f}/s ETA {eta_s} {extra}"
        if self.tty:
            self.stream.write(line[:160].ljust(100))
        else:
            self._next_log = (int(frac * 10) + 1) / 10
            self.stream.write(line[1:160] + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.update(self.done)
            self.stream.write("\n")
            self.stream.flush()


class EventWriter:
    """JSON-lines events, one object per line: {"event": name, "time": unix seconds, **fields} (docs/ARCHITECTURE.md).

    target: a file path (appended, its folder created), "-" for stdout, or None for no file; callbacks get every
    event dict too. A disabled writer (the non-zero ranks of a data-parallel job) drops everything."""

    def __init__(self, target: str | os.PathLike | None = None,
                 callbacks: list[Callable[[dict], None]] | None = None, enabled: bool = True):
        self.callbacks = list(callbacks or [])
        self.enabled = enabled
        self._fh = None
        if enabled and target is not None:
            if str(target) == "-":
                self._fh = sys.stdout
            else:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(target, "a", buffering=1)

    def emit(self, event: str, **fields) -> dict:
        """Write one event and hand it to the callbacks; returns the event dict."""
        record = {"event": event, "time": time.time(), **fields}
        if not self.enabled:
            return record
        if self._fh is not None:
            self._fh.write(json.dumps(record, default=_json_default) + "\n")
            self._fh.flush()
        for cb in self.callbacks:
            cb(record)
        return record

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        self._fh = None


def as_event_writer(events) -> EventWriter:
    """An EventWriter from None, an object with .emit(name, **fields) (returned as is) or a callable(event dict)."""
    if events is None:
        return EventWriter(None)
    if hasattr(events, "emit"):
        return events
    return EventWriter(None, callbacks=[events])


def _json_default(v):
    """JSON for numpy scalars, tensors (as lists) and anything else (as its text)."""
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


class Ticker:
    """Calls progress(done, total) every `every` steps and once at the end (data generation's progress)."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int, every: int = 2000):
        self.progress, self.total, self.every, self.n = progress, int(total), max(1, int(every)), 0

    def __call__(self, k: int) -> None:
        before, self.n = self.n, self.n + k
        if self.progress is not None and self.n // self.every > before // self.every:
            self.progress(min(self.n, self.total), self.total)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(min(self.n, self.total), self.total)
