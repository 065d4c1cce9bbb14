"""The engine's one progress bar (tqdm on stderr, with rate and ETA) and its one JSON-lines event writer (what the studio
reads, what a training run leaves beside its checkpoint)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm


class ProgressBar:
    """A one-line progress bar on stderr through tqdm: label, bar, count, rate, ETA. On a terminal it redraws in place;
    elsewhere (a log file, the studio reading a subprocess) it writes a plain line at every further 10%."""

    def __init__(self, total: int, label: str = "", unit: str = "steps", enabled: bool = True, stream=None,
                 min_interval_s: float = 0.2, initial: int = 0):
        self.label, self.unit, self.enabled = label, unit, enabled
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s  # minimum seconds between redraws on a terminal
        self.initial = int(initial)  # count already done when the bar starts (a resumed run): not part of the rate
        self.done = self.initial
        self.t0 = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_log = 0.1  # when not a terminal, log a plain line at every further 10%
        self._bar = None
        self._total = max(int(total), 1)
        if enabled and self.tty:
            self._bar = tqdm(total=self._total, initial=self.initial, desc=label, unit=unit, file=self.stream,
                             mininterval=min_interval_s, dynamic_ncols=True, leave=True)

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, n: int) -> None:
        """A total known only once the work has started (e.g. the states of the expert's routes)."""
        self._total = max(int(n), 1)
        if self._bar is not None:
            self._bar.total = self._total
            self._bar.refresh()

    def update(self, done: int, extra: str = "") -> None:
        """Show `done` of `total` (an absolute count), with `extra` text after the rate (e.g. the loss)."""
        self.done = int(done)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self.done - self._bar.n)
            if extra:
                self._bar.set_postfix_str(extra, refresh=False)
            return
        frac = self.done / self._total
        if frac < self._next_log and self.done < self._total:
            return
        self._next_log = (int(min(frac, 1.0) * 10) + 1) / 10
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else None
        line = tqdm.format_meter(min(self.done, self._total), self._total, elapsed, prefix=self.label, unit=self.unit,
                                 rate=rate, postfix=extra or None, ncols=0)
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EventWriter:
    """JSON-lines events, one object per line: {"event": name, "time": unix seconds, **fields} (docs/ARCHITECTURE.md).

    target: a file path (appended, its folder created), "-" for stdout, or None for no file; add_target adds more
    (a training run writes beside its checkpoint as well). Callbacks get every event dict too. A disabled writer (the
    non-zero ranks of a data-parallel job) drops everything."""

    def __init__(self, target: str | os.PathLike | None = None,
                 callbacks: list[Callable[[dict], None]] | None = None, enabled: bool = True):
        self.callbacks = list(callbacks or [])
        self.enabled = enabled
        self._files: dict[str, object] = {}  # target -> open file (sys.stdout for "-")
        if target is not None:
            self.add_target(target)

    def add_target(self, target: str | os.PathLike) -> None:
        """Also write every later event to `target` (a file, appended, or "-" for stdout)."""
        key = str(target)
        if not self.enabled or key in self._files:
            return
        if key == "-":
            self._files[key] = sys.stdout
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._files[key] = open(target, "a", buffering=1)

    def target_for(self, path: str | os.PathLike) -> str | None:
        """The target this writer already writes `path` through (the same file named another way), or None."""
        want = os.path.abspath(path)
        return next((k for k in self._files if k != "-" and os.path.abspath(k) == want), None)

    def remove_target(self, target: str | os.PathLike) -> None:
        """Stop writing to `target` (closing it unless it is stdout)."""
        fh = self._files.pop(str(target), None)
        if fh is not None and fh is not sys.stdout:
            fh.close()

    def emit(self, event: str, **fields) -> dict:
        """Write one event and hand it to the callbacks; returns the event dict."""
        record = {"event": event, "time": time.time(), **fields}
        if not self.enabled:
            return record
        if self._files:
            line = json.dumps(record, default=_json_default) + "\n"
            for fh in self._files.values():
                fh.write(line)
                fh.flush()
        for cb in self.callbacks:
            cb(record)
        return record

    def close(self) -> None:
        for key in list(self._files):
            self.remove_target(key)


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
