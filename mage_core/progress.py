"""Terminal progress bars with rate and ETA (stderr), and JSON-lines progress events for the studio."""
from __future__ import annotations

import json
import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr: label, bar, count, rate, ETA. Quiet when disabled or not a terminal-like run."""

    def __init__(self, total: int, label: str = "", unit: str = "steps", enabled: bool = True, stream=None,
                 min_interval_s: float = 0.2):
        self.total, self.label, self.unit, self.enabled = max(int(total), 1), label, unit, enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.min_interval_s = min_interval_s  # minimum seconds between redraws
        self._last = 0.0
        self.done = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_log = 0.1  # when not a terminal, log a plain line at every further 10%

    def update(self, done: int, extra: str = "") -> None:
        self.done = int(done)
        now = time.perf_counter()
        if not self.enabled or (now - self._last < self.min_interval_s and self.done < self.total):
            return
        if not self.tty and self.done / self.total < self._next_log and self.done < self.total:
            return
        self._last = now
        elapsed = now - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
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
    """Writes one JSON object per line to a file or stdout ("-"); a no-op when target is None."""

    def __init__(self, target: str | None):
        self.target = target
        self._fh = None
        if target == "-":
            self._fh = sys.stdout
        elif target:
            self._fh = open(target, "a", buffering=1)

    def emit(self, event: str, **fields) -> None:
        if self._fh is None:
            return
        self._fh.write(json.dumps({"event": event, "time": time.time(), **fields}, default=float) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
