"""argparse value types shared by several `mage` commands."""
from __future__ import annotations

import argparse

from mage_core.train_command import non_negative_int_arg, positive_int_arg


def seed_list(text: str) -> list[int]:
    """argparse type of --seeds: comma-separated integers, e.g. 0,1,2."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None


# whole-number types: the same ones `mage train` uses
non_negative_int = non_negative_int_arg
positive_int = positive_int_arg
