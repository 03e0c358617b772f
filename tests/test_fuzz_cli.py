"""The ``steerflow`` command with wrong paths, wrong directories, another campaign's directory and odd values:
one message and an exit status, never a traceback, never a hang.

Before: ``bench --repeat 0`` and ``bench scale --tasks -5`` ended in an IndexError; ``status --watch nan``
never redrew and ``--watch 0``/``dashboard --refresh 0`` were taken.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerflow as sf
from steerflow import cli

pytestmark = pytest.mark.usefixtures("no_leftover_processes")


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """Every kind of path a user may give by mistake, and one real campaign."""
    root = tmp_path_factory.mktemp("cli-fuzz")
    camp = sf.Campaign(root / "camp", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf.Function(abs, args=(-1,)))
    camp.submit(sf.Function(abs, args=("x",)))  # one failure, for `show`
    camp.run()
    (root / "two" / "a").mkdir(parents=True)
    (root / "two" / "b").mkdir()
    for name in ("a", "b"):
        sqlite3.connect(root / "camp" / "journal.db").backup(sqlite3.connect(root / "two" / name / "journal.db"))
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("hello")
    (root / "bad.yaml").write_text("stages: [")
    (root / "fake").mkdir()
    (root / "fake" / "journal.db").write_text("not a database")
    return {"camp": str(root / "camp"), "two": str(root / "two"), "empty": str(root / "empty"),
            "journal": str(root / "camp" / "journal.db"), "txt": str(root / "notes.txt"),
            "yaml": str(root / "bad.yaml"), "fake": str(root / "fake"), "missing": str(root / "nope"),
            "out": str(root / "out"), "blank": "", "dash": "-", "unicode": "ünï/☃\u202e", "long": "x" * 300 + "/" + "y" * 5000}


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    sigterm = signal.getsignal(signal.SIGTERM)  # `run` and `resume` install their own: not pytest's to keep
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            signal.signal(signal.SIGTERM, sigterm)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("argv, says", [
    (["bench", "steering", "--repeat", "0"], "give an integer of at least 1"),
    (["bench", "scale", "--tasks", "-5"], "give an integer of at least 1"),
    (["status", "{camp}", "--watch", "nan"], "give a number of seconds above 0"),
    (["status", "{camp}", "--watch", "inf"], "give a number of seconds above 0"),
    (["status", "{camp}", "--watch", "0"], "give a number of seconds above 0"),
    (["dashboard", "{camp}", "--refresh", "0"], "give a number of seconds above 0"),
    (["dashboard", "{camp}", "--refresh", "-1"], "give a number of seconds above 0"),
])
def test_odd_numbers_are_refused_at_the_command_line(places, argv, says):
    code, text = run_cli([a.format(**places) for a in argv])
    assert code == 2 and says in text, text


COMMANDS = [
    ["status", "{p}"], ["show", "{p}", "{k}"], ["show", "{p}"], ["cancel", "{p}", "{k}"], ["report", "{p}", "--json"],
    ["report", "{p}", "--out", "{out}"], ["resume", "{p}"], ["run", "{p}"], ["run", "--dir", "{p}", "{yaml}"],
    ["bench", "{k}"], ["bench", "--repeat", "{k}", "{k}"],  # (never a valid benchmark: none runs here)
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS),
       place=st.sampled_from(["camp", "two", "empty", "journal", "txt", "yaml", "fake", "missing", "blank", "dash",
                              "unicode", "long"]),
       key=st.one_of(st.sampled_from(["1", "2", "0", "-1", "99", "1.5", "nan", "", "abc", "10**9", str(2**80)]),
                     st.text(max_size=8)))
def test_fuzz_commands_answer_with_a_message(places, tmp_path, command, place, key):
    argv = [a.format(p=places[place], k=key, out=places["out"], yaml=places["yaml"]) for a in command]
    with contextlib.chdir(tmp_path):
        code, text = run_cli(argv)
    assert code in (0, 1, 2), (argv, code, text)
    assert "Traceback" not in text, (argv, text)
    assert text.strip() or code == 0, argv  # a failure always says something


@pytest.mark.parametrize("argv", [["report", "{camp}", "--json"], ["status", "{camp}"], ["show", "{camp}", "2"]])
def test_a_reader_that_goes_away_gets_no_traceback(places, argv):
    """`steerflow report DIR --json | head -1`: before, a BrokenPipeError traceback when head had exited."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "steerflow.cli", *[a.format(**places) for a in argv]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) != 0
    assert "Traceback" not in err and "Exception ignored" not in err, err
