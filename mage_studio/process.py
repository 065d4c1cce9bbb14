"""A background `mage ...` subprocess (QProcess on the Qt/qasync loop) that streams JSON-lines events as Qt signals."""
from __future__ import annotations

import json
import os
import sys

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot

STDERR_KEEP = 200  # stderr lines kept for the error message / log view
STDOUT_KEEP = 20000  # non-event stdout lines kept (a command's printed result, e.g. `mage eval --json -`)


def mage_command(*args: str) -> list[str]:
    """argv that runs the `mage` CLI with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "mage_core", *args]


class EventProcess(QObject):
    """Runs a command whose stdout is JSON-lines events; never blocks the UI thread.

    Signals: event(dict) per JSON line, output(str) per stderr / non-JSON stdout line,
    finished(ok: bool, message: str) once — ok is False for a crash, a kill or an "error" event.
    `stdout_lines` keeps the non-event stdout lines of the current run (a result the command prints).
    """

    event = Signal(dict)
    output = Signal(str)
    finished = Signal(bool, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self.error_event: str | None = None
        self.stopping = False
        self._buf_out = b""
        self._buf_err = b""

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def start(self, argv: list[str], env: dict | None = None) -> None:
        if self.is_running():
            raise RuntimeError("a process is already running")
        self.stderr_lines, self.stdout_lines, self.error_event, self.stopping = [], [], None, False
        self._buf_out = self._buf_err = b""
        if self.proc is not None:
            self.proc.deleteLater()
        p = QProcess(self)
        penv = QProcessEnvironment.systemEnvironment()
        penv.insert("PYTHONUNBUFFERED", "1")
        for k, v in (env or {}).items():
            penv.insert(k, str(v))
        p.setProcessEnvironment(penv)
        p.readyReadStandardOutput.connect(self._on_stdout)
        p.readyReadStandardError.connect(self._on_stderr)
        p.finished.connect(self._on_finished)
        p.errorOccurred.connect(self._on_error)
        self.proc = p
        p.start(argv[0], argv[1:])

    def stop(self, grace_ms: int = 3000) -> None:
        """Ask the process to stop (SIGTERM), then kill it if it has not exited after grace_ms (non-blocking)."""
        if not self.is_running():
            return
        self.stopping = True
        self.proc.terminate()
        from PySide6.QtCore import QTimer

        timer = QTimer(self.proc)  # owned by the process: gone with it, never fires on a deleted object
        timer.setSingleShot(True)
        timer.timeout.connect(self.proc.kill)
        timer.start(grace_ms)

    def kill(self) -> None:
        if self.is_running():
            self.stopping = True
            self.proc.kill()

    @Slot()
    def _on_stdout(self) -> None:
        self._buf_out += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf_out = self._buf_out.split(b"\n")
        for raw in lines:
            self._handle_stdout_line(raw.decode("utf-8", "replace").strip())

    def _handle_stdout_line(self, line: str) -> None:
        if not line:
            return
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                ev = None
            if isinstance(ev, dict) and "event" in ev:
                if ev.get("event") == "error":
                    self.error_event = str(ev.get("message", "unknown error"))
                self.event.emit(ev)
                return
        if len(self.stdout_lines) < STDOUT_KEEP:
            self.stdout_lines.append(line)
        self.output.emit(line)

    @Slot()
    def _on_stderr(self) -> None:
        self._buf_err += bytes(self.proc.readAllStandardError())
        *lines, self._buf_err = self._buf_err.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if "\r" in line:  # progress bars redraw with carriage returns: keep the last state
                line = line.split("\r")[-1]
            if line:
                self.stderr_lines = (self.stderr_lines + [line])[-STDERR_KEEP:]
                self.output.emit(line)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        for raw in (self._buf_out,):
            if raw.strip():
                self._handle_stdout_line(raw.decode("utf-8", "replace").strip())
        self._buf_out = b""
        if self._buf_err.strip():
            self.stderr_lines.append(self._buf_err.decode("utf-8", "replace").strip())
        crashed = status == QProcess.ExitStatus.CrashExit
        if self.stopping:
            self.finished.emit(False, "stopped by the user")
        elif crashed:
            self.finished.emit(False, f"the process crashed or was killed; {self._last_error_line()}")
        elif code != 0 or self.error_event:
            msg = self.error_event or self._last_error_line()
            self.finished.emit(False, f"exited with code {code}: {msg}")
        else:
            self.finished.emit(True, "finished")

    @Slot(QProcess.ProcessError)
    def _on_error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.finished.emit(False, f"could not start {self.proc.program()}: {self.proc.errorString()}")

    def _last_error_line(self) -> str:
        for line in reversed(self.stderr_lines):
            if line.strip():
                return line.strip()[:300]
        return "no error output"


def env_for_children() -> dict:
    """Environment additions for child processes (keep torch from oversubscribing shared CPUs)."""
    return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")} if os.environ.get("OMP_NUM_THREADS") else {}
