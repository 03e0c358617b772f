"""Command-line checks for campaign scripts: numbers within bounds, and ``--resume`` that must find a campaign.

The examples' scripts use them; a user's script can too (``from steerflow.script_args import bounded``).
A bad flag then ends the script at once with one line naming it (argparse's exit 2), not with a traceback or a
campaign that runs nonsense.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable


def bounded(kind: type, low: float, high: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite ``kind`` (int or float) >= ``low`` (> with ``above``) and <= ``high``."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not (math.isfinite(value) and (value > low if above else value >= low) and value <= high):
            upper = f" and <= {high:g}" if math.isfinite(high) else ""
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {noun} {'>' if above else '>='} {low:g}"
                                             f"{upper}")
        return value

    return parse


def folder(text: str) -> str:
    """An argparse ``type`` for a directory: not empty (``--dir ""`` meant the current folder, or the default one)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give a directory, or leave the option out")
    return text


def require_campaign(parser: argparse.ArgumentParser, resume: bool, journal: str) -> None:
    """``--resume`` continues a campaign: a directory without one is a mistake (a typo), not a new campaign.

    (Under ``steerflow resume`` the script's own directory is mapped there: it is taken as given.)
    """
    if resume and os.environ.get("STEERFLOW_RESUME") != "1" and not os.path.exists(journal):
        parser.error(f"--resume: {journal} does not exist, so there is no campaign to continue there; give the "
                     "directory of the killed run with --dir (it was printed when that run started), or leave "
                     "out --resume to start a new one.")
