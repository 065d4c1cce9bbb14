"""MAGE Studio: the Qt desktop planning studio built on mage_core."""
from __future__ import annotations

import ctypes
import sys

# PySide6 6.12 wheels return None/True/False from C++ calls and Signal.emit without taking a reference (harmless on
# Python >= 3.12, where these singletons are immortal). On Python 3.11 every such call steals one reference and the
# process aborts with "bool_dealloc"/"none_dealloc" after a few thousand calls. The singletons are never freed anyway,
# so we make them effectively immortal by adding a large reference count once, at import.
_IMMORTAL_BOOST = 1 << 40  # references added to None/True/False on Python < 3.12


def _immortalize_singletons() -> None:
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):  # immortal already / debug build layout
        return
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _IMMORTAL_BOOST


if not getattr(sys, "_mage_singletons_immortal", False):
    _immortalize_singletons()
    sys._mage_singletons_immortal = True
