"""CLI conventions: `--json FILE|-` with pure JSON on stdout, exit status 1 for failed work and 2 for usage errors,
both stated in `mage --help`."""
from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys


def _mage(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mage_core", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


def test_help_states_the_conventions_and_no_command_is_a_usage_error():
    r = _mage("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--json FILE|-" in text and "exit status" in text
    assert "1 the work failed" in text and "2 usage error" in text
    r = _mage()
    assert r.returncode == 2 and "usage: mage" in r.stderr and r.stdout == ""


def test_eval_json_to_stdout_is_pure_json(micro_checkpoint):
    r = _mage("eval", "--checkpoint", micro_checkpoint, "--episodes", "2", "--envs", "2", "--quiet", "--json", "-")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)  # the whole of stdout: pipes into jq
    assert d["n"] == 2 and "normalised" in r.stderr  # the summary line went to stderr


@pytest.mark.slow
def test_json_goes_to_a_file_or_stdout_for_every_reporting_command(micro_checkpoint, umaze_dataset, tmp_path):
    r = _mage("ckpt", "info", micro_checkpoint, "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["algo"] == "mage"
    r = _mage("ckpt", "info", micro_checkpoint, "--json", tmp_path / "info.json")
    assert r.returncode == 0 and r.stdout == "" and json.loads((tmp_path / "info.json").read_text())["algo"] == "mage"
    r = _mage("data", "info", umaze_dataset, "--json")  # a bare --json is stdout
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == umaze_dataset
    r = _mage("data", "list", "--json", "-")
    assert r.returncode == 0 and umaze_dataset in [d["id"] for d in json.loads(r.stdout)]
    r = _mage("diagnose", "--checkpoint", micro_checkpoint, "--episodes", "1", "--quiet", "--json", "-")
    assert r.returncode == 0 and len(json.loads(r.stdout)["episodes"]) == 1 and "episode" in r.stderr
    r = _mage("bench", "latency", micro_checkpoint, "--repeats", "4", "--warmup", "1", "--rounds", "2", "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["rows"][0]["algo"] == "mage" and "median ms" in r.stderr
    r = _mage("sweep-rtg", "--checkpoint", micro_checkpoint, "--rtgs", "100,300", "--episodes", "1", "--quiet",
              "--out", tmp_path / "sw", "--json", "-")
    assert r.returncode == 0 and len(json.loads(r.stdout)["rows"]) == 2 and (tmp_path / "sw.png").is_file()


@pytest.mark.slow
def test_usage_errors_exit_2_and_failed_work_exits_1(micro_checkpoint, tmp_path):
    usage = [("eval", "--checkpoint", micro_checkpoint, "--episodes", "0"),  # a bad option value
             ("eval", "--checkpoint", micro_checkpoint, "--bogus"),  # an unknown option
             ("demo", "--task", "pointmaze-nope"),  # an unknown task
             ("demo", "--checkpoint", micro_checkpoint, "--video", tmp_path / "x.avi"),  # a format it cannot write
             ("eval", "--checkpoint", micro_checkpoint, "--top-k", "-2", "--episodes", "1")]
    for args in usage:
        r = _mage(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
    (tmp_path / "corrupt.pt").write_bytes(b"\x00" * 10)
    runtime = [("eval", "--checkpoint", tmp_path / "missing.pt"), ("ckpt", "info", tmp_path / "corrupt.pt"),
               ("data", "info", "no/such-v0")]
    for args in runtime:
        r = _mage(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("mage: error:") and "Traceback" not in r.stderr
