"""Architecture rules: the engine never imports Qt or the studio, and its modules import only down a declared layer
order, with no import cycles."""
import ast
import pathlib
import subprocess
import sys

import pytest

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qasync", "shiboken6")
ROOT = pathlib.Path(__file__).resolve().parents[1]

# The engine's layers, lowest first. A module may import modules of its own layer and of the layers below it, never
# of a layer above; within a layer the cycle check below keeps imports one way. An entry names a module and, unless it
# is the package root "mage_core", every module under it; a module belongs to its longest matching entry.
# Every import counts, also one inside a function: a lazy import that runs up the order still runs at call time.
LAYERS = (
    ("foundations", ("mage_core", "mage_core.errors", "mage_core.config", "mage_core.rtg", "mage_core.maze",
                     "mage_core.progress", "mage_core.device", "mage_core.checkpoint", "mage_core.render",
                     "mage_core.bundled", "mage_core.gl", "mage_core.video")),
    ("segments", ("mage_core.data.segments",)),  # episodes -> normalised segments: arrays only, no suite
    ("suites", ("mage_core.suites", "mage_core.tasks")),  # task families, their envs, data recipes and scenes
    ("evaluation protocol", ("mage_core.evaluate",)),  # rolling policies out on a task (reference scores too)
    ("data", ("mage_core.data",)),  # Minari storage and dataset generation
    ("model", ("mage_core.model",)),  # MAGE's networks; told everything suite-specific by whoever builds them
    ("model factory and task records", ("mage_core.factory", "mage_core.task_spec")),
    ("training", ("mage_core.training",)),  # the generic loop and MAGE's stages
    ("planning", ("mage_core.planner", "mage_core.plancheck")),
    ("baselines", ("mage_core.baselines",)),
    ("algorithms", ("mage_core.algos", "mage_core.policies", "mage_core.train_command")),  # MAGE and baselines alike
    ("benchmarks and demos", ("mage_core.bench", "mage_core.quality", "mage_core.controllability",
                              "mage_core.target_pair")),
    ("command line", ("mage_core.cli", "mage_core.__main__")),
    ("public API", ("mage_core.api",)),  # what `from mage_core import ...` forwards to (lazily)
)


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


# ---- the checker ------------------------------------------------------------------------------------------------
def module_files(package_dir: pathlib.Path) -> dict:
    """{dotted module name: (path, is_package)} for every .py file under a package folder."""
    out = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(files: dict) -> dict:
    """{module: set of modules of the same tree it imports}, from every import statement (inside functions too).
    `from pkg import name` is an edge to pkg.name when that is a module, else to pkg; relative imports resolved."""
    graph = {}
    for name, (path, is_package) in files.items():
        package = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    targets.add(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base)
        edges = set()
        for t in targets:
            while t and t not in files:  # a name inside a module (import a.b.c where c is a function) -> its module
                t = t.rpartition(".")[0]
            if t and t != name:
                edges.add(t)
        graph[name] = edges
    return graph


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index of the layer a module belongs to (its longest matching entry), or None when no entry matches."""
    best, best_len = None, -1
    for i, (_, entries) in enumerate(layers):
        for entry in entries:
            root = "." not in entry
            hit = module == entry or (not root and module.startswith(entry + "."))
            if hit and len(entry) > best_len:
                best, best_len = i, len(entry)
    return best


def upward_imports(graph: dict, layers=LAYERS) -> list[str]:
    """Every import that runs up the layer order, as 'a (layer) imports b (higher layer)'."""
    found = []
    for mod, targets in sorted(graph.items()):
        for t in sorted(targets):
            lm, lt = layer_of(mod, layers), layer_of(t, layers)
            if lm is not None and lt is not None and lt > lm:
                found.append(f"{mod} ({layers[lm][0]}) imports {t} ({layers[lt][0]})")
    return found


def import_cycles(graph: dict) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm), each sorted."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(sccs)


@pytest.fixture(scope="module")
def engine_graph() -> dict:
    return import_graph(module_files(ROOT / "mage_core"))


# ---- the rules on the engine ------------------------------------------------------------------------------------
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


def test_every_engine_module_has_a_layer(engine_graph):
    unplaced = [m for m in sorted(engine_graph) if layer_of(m) is None]
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_no_engine_import_runs_up_the_layer_order(engine_graph):
    assert not upward_imports(engine_graph), "\n".join(upward_imports(engine_graph))


def test_no_import_cycle_between_engine_modules(engine_graph):
    assert not import_cycles(engine_graph), import_cycles(engine_graph)


# ---- the checker catches what it must ---------------------------------------------------------------------------
def _plant(tmp_path: pathlib.Path, files: dict) -> dict:
    """Write a package of modules ({relative path: source}) under tmp_path and return its import graph."""
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(module_files(tmp_path / "pkg"))


TOY_LAYERS = (("low", ("pkg", "pkg.base")), ("middle", ("pkg.mid",)), ("high", ("pkg.top",)))


def test_the_checker_catches_a_planted_upward_import_even_inside_a_function(tmp_path):
    graph = _plant(tmp_path, {
        "pkg/__init__.py": '"""toy"""\n',
        "pkg/base.py": '"""toy"""\n\ndef f():\n    from pkg.mid import g  # runs up a layer at call time\n',
        "pkg/mid/__init__.py": '"""toy"""\nfrom . import helpers\n',
        "pkg/mid/helpers.py": '"""toy"""\nimport numpy\n\ndef g():\n    pass\n',
        "pkg/top.py": '"""toy"""\nimport pkg.mid.helpers\nfrom pkg.mid import helpers\nfrom pkg import base\n'})
    assert graph == {"pkg": set(), "pkg.base": {"pkg.mid"}, "pkg.mid": {"pkg.mid.helpers"}, "pkg.mid.helpers": set(),
                     "pkg.top": {"pkg.mid.helpers", "pkg.base"}}
    assert upward_imports(graph, TOY_LAYERS) == ["pkg.base (low) imports pkg.mid (middle)"]
    assert not import_cycles(graph)
    assert layer_of("pkg.mid.helpers", TOY_LAYERS) == 1 and layer_of("pkg.other", TOY_LAYERS) is None


def test_the_checker_catches_a_planted_cycle(tmp_path):
    graph = _plant(tmp_path, {
        "pkg/__init__.py": '"""toy"""\n',
        "pkg/a.py": '"""toy"""\nfrom pkg.b import x\n',
        "pkg/b.py": '"""toy"""\nx = 1\n\ndef late():\n    from pkg.c import y\n',
        "pkg/c.py": '"""toy"""\nimport pkg.a\ny = 2\n',
        "pkg/d.py": '"""toy"""\nfrom pkg import a\n'})
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []
