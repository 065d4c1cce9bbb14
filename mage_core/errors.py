"""User-facing error types: anything raised as MageError is shown as a one-line message, never a traceback.

The command line exits 1 for a MageError (the work failed: a missing or corrupt file, an unreadable dataset, a
diverged run) and 2 for a UsageError (the command was asked for something it cannot mean: a bad option value, a
flag that does not apply), the code argparse uses for its own usage errors."""
from __future__ import annotations

from contextlib import contextmanager


class MageError(Exception):
    """A problem with the user's input (file, id, value) that deserves a clear one-line message."""


class UsageError(MageError):
    """A MageError caused by how the command was called (an option's value, a combination of options)."""


@contextmanager
def usage_errors():
    """Inside this block, a MageError is the caller's usage error: re-raised as a UsageError with the same message.

    Wrap the step that turns options into values (e.g. looking up --task), not the work that follows."""
    try:
        yield
    except UsageError:
        raise
    except MageError as exc:
        raise UsageError(str(exc)) from None
