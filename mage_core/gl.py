"""The OpenGL backend MuJoCo renders with (MUJOCO_GL), chosen by platform and situation before MuJoCo is imported.

MuJoCo reads MUJOCO_GL once, when its GL module is first imported, and accepts per platform: Linux `egl`, `glfw`,
`glx`, `osmesa`; macOS `cgl`, `glfw`; Windows `glfw`, `wgl` (a GLFW context). The engine renders offscreen, often from
a worker thread (the studio's viewport, a planner worker), so on Linux EGL comes first whether or not a display is
up: it needs neither a window nor the main thread, where GLFW needs both. GLFW is the Linux fallback on a desktop
without libEGL, OSMesa (software, slow) the last resort on a server without either; macOS uses its native CGL and
Windows GLFW. A MUJOCO_GL the user set is always kept.
"""
from __future__ import annotations

import ctypes.util
import importlib.util
import os
import sys
from typing import Mapping

def has_display(platform: str = sys.platform, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a window system is there: on Linux an X11 or Wayland display; macOS and Windows always have one."""
    if platform.startswith("linux"):
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


def _library(name: str) -> bool:
    return ctypes.util.find_library(name) is not None


def choose_gl_backend(platform: str = sys.platform, environ: Mapping[str, str] = os.environ,
                      display: bool | None = None, *, egl: bool | None = None, glfw: bool | None = None,
                      osmesa: bool | None = None) -> str:
    """The MUJOCO_GL value to render with: the user's when set, else the platform's best offscreen backend.

    platform: sys.platform ("linux", "darwin", "win32"). display: whether a window system is up (None: from the
    environment). egl, glfw, osmesa: whether those libraries load (None: probe this machine); they matter on Linux
    only."""
    chosen = (environ.get("MUJOCO_GL") or "").strip()
    if chosen:
        return chosen
    if platform == "darwin":
        return "cgl"
    if platform.startswith("win") or platform == "cygwin":
        return "glfw"
    display = has_display(platform, environ) if display is None else display
    if egl if egl is not None else _library("EGL"):
        return "egl"
    if display and (glfw if glfw is not None else importlib.util.find_spec("glfw") is not None):
        return "glfw"
    if osmesa if osmesa is not None else _library("OSMesa"):
        return "osmesa"
    return "egl"  # nothing found: EGL's own error names the missing library (README: system packages)


def configure_gl(environ: dict = os.environ) -> str:
    """Set MUJOCO_GL for this process (and its children) unless the user did; returns the backend in use."""
    backend = choose_gl_backend(sys.platform, environ)
    environ["MUJOCO_GL"] = backend
    return backend

