"""The journal's bytes per task stay bounded whatever a task is given: many arguments, a long command line, many tags.

Before: an argument whose pickle is over 64 KB went to blobs/, but a task with 100 arguments of 15 KB each (each
under the bound) put 1.5 MB a task into the journal (50 tasks: 77 MB); a program with a 100 KB argument 100 KB a
task; 1,000 tags of 1 KB each 1 MB a task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerflow as sf
from steerflow import blobs
from steerflow.errors import TaskSpecError


def journal_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("journal.db*"))


def noop(*args, **kwargs):
    return len(args) + len(kwargs)


def test_fifty_tasks_of_a_hundred_arguments_each_keep_the_journal_small(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    futures = [camp.submit(sf.Function(noop, args=tuple(f"{i}-{k}-" + "a" * 15_000 for k in range(100)),
                                       kwargs={"x": "b" * 15_000, "y": i})) for i in range(50)]
    camp.run()
    assert [f.result() for f in futures] == [102] * 50
    assert journal_bytes(tmp_path / "c") < 3_000_000, journal_bytes(tmp_path / "c")  # was 77 MB
    import sqlite3

    with sqlite3.connect(tmp_path / "c" / "journal.db") as conn:
        blob = conn.execute("SELECT spec FROM tasks WHERE key = 7").fetchone()[0]
    spec = blobs.load_spec(tmp_path / "c", blob, resolve=True)  # the description is all still there
    assert spec["args"][0] == "6-0-" + "a" * 15_000 and len(spec["args"]) == 100
    assert spec["kwargs"] == {"x": "b" * 15_000, "y": 6}
    shown = subprocess.run([sys.executable, "-m", "steerflow.cli", "show", str(tmp_path / "c"), "7"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert shown.returncode == 0 and "stored once in blobs/" in shown.stdout, shown.stdout + shown.stderr


def test_programs_with_a_long_command_line_keep_the_journal_small(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    futures = [camp.submit(sf.Executable(["/bin/true", f"{i}" + "a" * 100_000])) for i in range(30)]
    camp.run()
    assert all(f.result().returncode == 0 for f in futures)
    assert journal_bytes(tmp_path / "c") < 1_000_000, journal_bytes(tmp_path / "c")  # was 3 MB (100 KB a task)
    import sqlite3

    with sqlite3.connect(tmp_path / "c" / "journal.db") as conn:
        blob = conn.execute("SELECT spec FROM tasks WHERE key = 3").fetchone()[0]
    assert blobs.load_spec(tmp_path / "c", blob, resolve=True)["argv"] == ["/bin/true", "2" + "a" * 100_000]


def test_a_tasks_tags_are_bounded_in_all_and_the_error_names_the_field():
    sf.Function(noop, tags=[f"candidate={i}" for i in range(500)])  # ordinary tags: fine
    with pytest.raises(TaskSpecError, match="tags.*at most 10,000 characters in all"):
        sf.Function(noop, tags=["t" * 990 + str(i) for i in range(1000)])
    with pytest.raises(TaskSpecError, match="tags"):
        sf.Executable(["/bin/true"], tags=["x" * 900] * 12)


_values = st.recursive(
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
              st.builds(lambda n, c: c * n, st.integers(0, 40_000), st.sampled_from("ab")),
              st.binary(max_size=2_000)),
    lambda inner: st.one_of(st.lists(inner, max_size=30), st.dictionaries(st.text(max_size=8), inner, max_size=10)),
    max_leaves=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(args=st.lists(_values, max_size=40), kwargs=st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                                                   _values, max_size=10))
def test_a_journaled_description_is_bounded_and_gives_back_every_argument(tmp_path_factory, args, kwargs):
    directory = tmp_path_factory.mktemp("blobs")
    store = blobs.Store(directory)
    try:
        blob = blobs.spec_blob(store, sf.Function(noop, args=tuple(args), kwargs=kwargs))
    finally:
        store.close()
    assert blob is not None and len(blob) <= blobs.THRESHOLD + 4096, len(blob)
    spec = blobs.load_spec(directory, blob, resolve=True)
    import math

    def same(a, b):  # NaN != NaN: compare their reprs
        return repr(a) == repr(b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    assert len(spec["args"]) == len(args) and all(same(a, b) for a, b in zip(spec["args"], args))
    assert spec["kwargs"].keys() == kwargs.keys() and all(same(spec["kwargs"][k], v) for k, v in kwargs.items())


def chatty(n, size):
    from steerflow import partial

    for i in range(n):
        partial.emit(bytes([i % 256]) * size)
    return n


def test_a_task_streaming_many_partial_results_keeps_the_journal_bounded(tmp_path, capfd):
    """Each partial under the 256 KiB bound, but 80 of 200 KB from one task: 16 MB in the journal before."""
    directory = tmp_path / "c"

    def build(resume):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                           resume=resume)
        seen = []
        camp.on_partial()(lambda p, ctx: seen.append((p.index, len(p.value))))
        camp.submit(sf.Function(chatty, args=(80, 200_000)))
        return camp, seen

    camp, live = build(False)
    camp.run()
    assert len(live) == 80  # the live agents get every one
    assert journal_bytes(directory) < 6 * 2**20, journal_bytes(directory)  # was 16 MB
    assert "MiB a task" in capfd.readouterr().err  # said once
    camp, replayed = build(True)
    camp.run()
    assert 10 <= len(replayed) < 80 and replayed == live[:len(replayed)]  # the first ones, in order
