"""How commands report: `--json FILE|-` (the JSON to a file, or to stdout as pure JSON) and their summary lines, which
go to stderr whenever stdout carries the JSON."""
from __future__ import annotations

import json
import sys
from pathlib import Path

JSON_HELP = "write the result as JSON to FILE, or to stdout with - (then pure JSON: summary lines go to stderr)"


def add_json_option(p, help_text: str = JSON_HELP, optional_value: bool = False, **kw) -> None:
    """Add `--json FILE|-` to a parser. optional_value: a bare `--json` means stdout (`--json` alone = `--json -`)."""
    if optional_value:
        kw.update(nargs="?", const="-")
    p.add_argument("--json", dest="json_out", metavar="FILE|-", default=kw.pop("default", None), help=help_text, **kw)


def human(json_target) -> object:
    """Where a command's human-readable lines go: stderr when the JSON goes to stdout, else stdout."""
    return sys.stderr if json_target is not None and str(json_target) == "-" else sys.stdout


def write_json_output(obj, target, indent: int = 2) -> None:
    """The JSON of obj to `target`: "-" prints it to stdout, a path is written (its folder created)."""
    text = json.dumps(obj, indent=indent)
    if str(target) == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
