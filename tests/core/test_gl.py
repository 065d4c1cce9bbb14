"""The MuJoCo GL backend is chosen by platform and situation, and a user's MUJOCO_GL is kept."""
from __future__ import annotations

import pytest

from mage_core.gl import choose_gl_backend, configure_gl, has_display

LINUX_LIBS = dict(egl=True, glfw=True, osmesa=True)


@pytest.mark.parametrize("platform,display,expected", [
    ("linux", False, "egl"), ("linux", True, "egl"),  # EGL renders offscreen from any thread, display or not
    ("darwin", False, "cgl"), ("darwin", True, "cgl"),  # macOS: its native CGL context
    ("win32", False, "glfw"), ("win32", True, "glfw"),  # Windows: MuJoCo's only backend
])
def test_the_platform_backend(platform, display, expected):
    assert choose_gl_backend(platform, {}, display, **LINUX_LIBS) == expected


def test_linux_without_egl_falls_back_to_glfw_on_a_desktop_and_osmesa_on_a_server():
    assert choose_gl_backend("linux", {}, True, egl=False, glfw=True, osmesa=True) == "glfw"
    assert choose_gl_backend("linux", {}, False, egl=False, glfw=True, osmesa=True) == "osmesa"  # GLFW needs a display
    assert choose_gl_backend("linux", {}, True, egl=False, glfw=False, osmesa=True) == "osmesa"
    assert choose_gl_backend("linux", {}, False, egl=False, glfw=False, osmesa=False) == "egl"  # its error names it


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_the_users_mujoco_gl_is_kept(platform):
    assert choose_gl_backend(platform, {"MUJOCO_GL": "osmesa"}, True, **LINUX_LIBS) == "osmesa"
    assert choose_gl_backend(platform, {"MUJOCO_GL": " "}, True, **LINUX_LIBS) == choose_gl_backend(
        platform, {}, True, **LINUX_LIBS)  # blank counts as unset


def test_a_display_is_x11_or_wayland_on_linux_and_always_there_elsewhere():
    assert not has_display("linux", {}) and has_display("linux", {"DISPLAY": ":0"})
    assert has_display("linux", {"WAYLAND_DISPLAY": "wayland-0"})
    assert has_display("darwin", {}) and has_display("win32", {})


def test_configure_sets_the_variable_once_and_keeps_a_set_one():
    env = {}
    chosen = configure_gl(env)
    assert env["MUJOCO_GL"] == chosen and chosen in ("egl", "glfw", "osmesa", "cgl")
    env = {"MUJOCO_GL": "glfw"}
    assert configure_gl(env) == "glfw" and env["MUJOCO_GL"] == "glfw"
