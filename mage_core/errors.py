"""User-facing error type: anything raised as MageError is shown as a one-line message, never a traceback."""


class MageError(Exception):
    """A problem with the user's input (file, id, value) that deserves a clear one-line message."""
