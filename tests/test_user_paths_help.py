"""`steerflow COMMAND --help` says what each argument is: a new user's first look at a command.

Before: the positional arguments (`file`, `dir`, `key`, `tasks`) were listed bare, with no word of what to give.
"""

from __future__ import annotations

import argparse

from steerflow import cli


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_argument_of_every_command_says_what_it_is():
    commands = _subcommands()
    assert {"run", "resume", "status", "show", "cancel", "report", "dashboard"} <= set(commands)
    bare = [f"steerflow {name} {action.dest}" for name, sub in commands.items() if name != "bench"
            for action in sub._actions if not action.help and not isinstance(action, argparse._HelpAction)]
    assert not bare, f"arguments without help: {bare}"
