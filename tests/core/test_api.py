"""The public Python API: `import mage_core` stays light, its names resolve lazily, the README's script runs as written,
and train() is `mage train` with keywords."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_python_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section under `## heading`, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_import_is_light_and_every_public_name_resolves():
    code = ("import sys, mage_core\n"
            "heavy = [m for m in ('torch', 'mujoco', 'minari', 'PySide6') if m in sys.modules]\n"
            "import mage_core.api\n"
            "names = [n for n in mage_core.__all__ if getattr(mage_core, n) is not getattr(mage_core.api, n)]\n"
            "import mage_core.evaluate\n"  # the submodule of the same stem must not shadow the function
            "from mage_core import evaluate_policy\n"
            "print(heavy, names, sorted(mage_core.__all__) == sorted(mage_core.api.__all__), callable(evaluate_policy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "[]", "True", "True"]
    import mage_core

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mage_core.nope  # noqa: B018


def test_the_readme_api_script_runs_as_written(tmp_path):
    (script,) = readme_python_blocks("Python API")[:1]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "pointmaze-umaze: 4 scales" in r.stdout and "normalised" in r.stdout and "(n=3)" in r.stdout
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_takes_the_cli_options_as_keywords(umaze_dataset, tmp_path):
    from mage_core import UsageError, train
    from mage_core.checkpoint import load_checkpoint

    out = train(dataset=umaze_dataset, preset="tiny", out=tmp_path / "api.pt", steps_scale=0.05, threads=1,
                stage3_steps=0, inv_lookahead=(1, 2), overrides={"train.lr_stage1": 0.003, "model.beta_commit": 0.3},
                progress=False)
    cfg = load_checkpoint(out)["config"]
    assert cfg["train"]["lr_stage1"] == 0.003 and cfg["model"]["beta_commit"] == 0.3
    assert cfg["model"]["inv_lookahead"] == [1, 2] and cfg["train"]["stage3_steps"] == 0
    events = [json.loads(line) for line in (tmp_path / "api.events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    with pytest.raises(UsageError, match="did you mean steps_scale"):
        train(dataset=umaze_dataset, steps_scal=0.1)
    with pytest.raises(UsageError, match="--stage1-steps"):
        train(dataset=umaze_dataset, stage1_steps=-3)


def test_the_readme_train_snippet_names_real_options():
    """The README's train() call uses only options train() knows (it trains for minutes, so it is parsed, not run)."""
    import ast

    from mage_core.api import _OptionParser
    from mage_core.train_command import add_train_arguments

    (snippet,) = readme_python_blocks("Python API")[1:2]
    call = next(n for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "train")
    parser = _OptionParser()
    add_train_arguments(parser)
    known = {a.dest for a in parser._actions} | {"overrides", "progress"}
    assert {k.arg for k in call.keywords} <= known
