"""The narrow set of requests a dock may make of the studio, besides reading and setting the StudioState."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Actions:
    """What a dock may ask for; the main window fills it in (tests may pass their own)."""

    show_task: Callable[[str], None]  # show a built-in task by name (a checkpoint for another task is closed)
    open_dataset: Callable[[str], None]  # load a dataset by id or folder, off the UI thread
    open_dataset_dialog: Callable[[], None]  # ask for a dataset folder, then load it
    open_checkpoint: Callable[[str], None]  # load a checkpoint file, off the UI thread
    open_checkpoint_dialog: Callable[[], None]  # ask for a checkpoint file, then load it
    run_in_background: Callable[..., Any]  # (fn, on_done, on_error): fn on the worker; the callbacks on the UI thread
    show_episode_step: Callable[[Any, int], None]  # (episode, t): replay a dataset episode's step t in the view
    grab_view: Callable[[Callable], None]  # (callback): callback(QImage) once the view shows all that was asked of it
    report_error: Callable[[str, str], None]  # (title, message): a non-blocking error dialog and a status-bar line
    show_status: Callable[[str, int], None]  # (text, milliseconds): a status-bar line
    show_device: Callable[[str], None]  # the compute device training can use, in the status bar
    when_view_shown: Callable[[Callable], None]  # (callback): callback() once the view shows all asked of it so far
