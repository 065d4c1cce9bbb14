"""Architecture rule: the engine (mage_core) never imports Qt; the studio depends on the engine, not the reverse."""
import ast
import pathlib
import subprocess
import sys

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qasync", "shiboken6")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_engine_source_never_imports_qt_or_the_studio():
    offenders = []
    for path in (ROOT / "mage_core").rglob("*.py"):
        for mod in _imports(path):
            if mod.split(".")[0] in QT_MODULES or mod.startswith("mage_studio"):
                offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not offenders, offenders


def test_importing_the_whole_engine_loads_no_qt():
    mods = [p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") for p in (ROOT / "mage_core").rglob("*.py")]
    mods = [m.removesuffix(".__init__") for m in mods if not m.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_module_opens_with_a_docstring():
    missing = [str(p.relative_to(ROOT)) for pkg in ("mage_core", "mage_studio") for p in (ROOT / pkg).rglob("*.py")
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not missing, missing
