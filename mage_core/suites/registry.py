"""The suite registry itself: suites by name, with the fallback that claims every dataset kept last (it holds Suite
objects of mage_core.suites.base without importing it, so a Task can find its suite from here)."""
from __future__ import annotations

from mage_core.errors import MageError

FALLBACK = "generic"  # the suite that claims any dataset no other suite does; always asked last

# Suites in the order they are asked to claim a dataset (mage_core.suites registers the built-in ones).
SUITES: dict[str, "Suite"] = {}


def register_suite(suite: "Suite") -> "Suite":
    """Add a suite (and its built-in tasks) to the registry; a suite registered under a taken name replaces it."""
    SUITES[suite.name] = suite
    if suite.name != FALLBACK and FALLBACK in SUITES:
        SUITES[FALLBACK] = SUITES.pop(FALLBACK)  # keep the fallback last
    return suite


def get_suite(name: str) -> "Suite":
    try:
        return SUITES[name]
    except KeyError:
        raise MageError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}") from None


def all_tasks() -> dict[str, "Task"]:
    """Every built-in task of every suite, by name."""
    return {t.name: t for s in SUITES.values() for t in s.tasks()}
