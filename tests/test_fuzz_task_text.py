"""Text a task carries into the journal (its name, pool, tags, its program's file name, its error): any str a user
may hold, or one TaskSpecError at submit; never a journal that stops the campaign at its next commit.

Before: a lone surrogate (what ``os.listdir`` gives for a file name that is not UTF-8, decoded with
surrogateescape) in a task's name or tags, in a program's file name, or in the message of an exception a
task raised, stopped the whole campaign: "the journal could not be written: UnicodeEncodeError ... Free
space (or fix the cause)", and the same script failed the same way on resume.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerflow as sf
from steerflow import TaskSpecError

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

TWO_CORES = sf.Allocation.declare(nodes=1, cores=2)
UNDECODABLE = os.fsdecode(b"run-\xff.dat")  # 'run-\udcff.dat'


@pytest.mark.parametrize("field, make", [
    ("name", lambda: sf.Function(abs, args=(-1,), name=UNDECODABLE)),
    ("tags", lambda: sf.Function(abs, args=(-1,), tags=["ok", UNDECODABLE])),
    ("pool", lambda: sf.Function(abs, args=(-1,), pool=UNDECODABLE)),
    ("name", lambda: sf.Executable(["true"], name="\ud800")),
])
def test_a_name_that_is_not_valid_unicode_is_refused_at_the_boundary(field, make):
    with pytest.raises(TaskSpecError, match=f"'{field}'.*not valid Unicode text"):
        make()


def fails_on(name):
    raise FileNotFoundError(2, "No such file or directory", name)


def test_undecodable_file_names_in_programs_and_errors_are_journaled(tmp_path):
    program = tmp_path / os.fsdecode(b"prog-\xfe")
    program.write_text("#!/bin/sh\necho ran\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    camp = sf.Campaign(tmp_path / "c", allocation=TWO_CORES, progress=False)
    results = []
    camp.on_result()(lambda result, ctx: results.append(result))
    camp.submit(sf.Executable([str(program), UNDECODABLE]))
    camp.submit(sf.Function(fails_on, args=(UNDECODABLE,)))
    camp.submit(sf.Function(repr, args=(UNDECODABLE,)))
    summary = camp.run()  # before: JournalError (UnicodeEncodeError)
    assert summary["results_seen"] == 3 and summary["states"] == {"done": 2, "failed": 1}
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    names = [n for (n,) in conn.execute("SELECT name FROM tasks ORDER BY key")]
    errors = [e for (e,) in conn.execute("SELECT error FROM results WHERE ok = 0")]
    conn.close()
    assert names[0] == "prog-\\udcfe"  # written as its escape
    assert "run-\\udcff.dat" in errors[0]
    assert str(sorted(results, key=lambda r: r.key)[2].value) == repr(UNDECODABLE)  # the value itself, unchanged


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.tuples(ANY_TEXT, st.lists(ANY_TEXT, max_size=2), ANY_TEXT), min_size=1, max_size=6))
def test_fuzz_task_text_is_refused_or_journaled_as_given(tmp_path_factory, names):
    directory = tmp_path_factory.mktemp("text") / "c"
    accepted = {}
    specs = []
    for name, tags, pool in names:
        try:
            specs.append(sf.Function(abs, args=(-1,), name=name, tags=tags, pool=pool))
        except TaskSpecError as exc:
            assert "Task field" in str(exc)
    camp = sf.Campaign(directory, allocation=TWO_CORES, progress=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (undeclared pools warn; not what this test is about)
            for spec in specs:
                accepted[camp.submit(spec).task_id] = spec.name
        summary = camp.run(stop=sf.stop.wall("60s"))
    finally:
        camp.close()
    assert summary["results_seen"] == len(accepted)
    conn = sqlite3.connect(directory / "journal.db")
    stored = dict(conn.execute("SELECT key, name FROM tasks"))
    conn.close()
    assert stored == accepted

