"""What session 7's campaign fuzz pass left open: tags holding commas, `run --dir ""`, a changed task's old result
file, and event payloads bounded per event but not in all.

Before:
- a task tagged "a,b" was read back as the two tags "a" and "b" by `steerflow show` and the report (the journal joins
  a task's tags with commas);
- `steerflow run p.yaml --dir ""` ran the pipeline in the spec's own directory (a falsy test);
- a task whose description changed in the script ran again on resume and its old result row was dropped, but its
  old result FILE (results/KEY.pkl, for results over 64 KB) stayed on disk when the new result was small;
- each event payload was journaled up to 256 KiB, but an agent emitting a 250 KB event per result journaled 250 KB a
  result, without a bound.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import steerflow as sf
from steerflow import rundirs
from steerflow.journal import join_tags, split_tags
from steerflow.observe import metrics
from steerflow.observe.timeline import read as read_timeline

TAGS = ["a,b", "50%", "x%2Cy", "plain", "quote\"d", "ü,ñ"]


def noop(x):
    return x


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def test_tags_holding_commas_or_percents_are_read_back_whole_by_show_and_the_report(tmp_path):
    directory = tmp_path / "c"
    camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf.Function(noop, args=(1,), tags=TAGS))
    camp.submit(sf.Function(noop, args=(2,), tags=["one"]))
    camp.run()
    assert rundirs.task(directory, 1)["tags"] == TAGS
    assert rundirs.task(directory, 2)["tags"] == ["one"]
    table = {row["key"]: row["tags"] for row in metrics.task_table(read_timeline(directory))}
    assert table == {1: TAGS, 2: ["one"]}
    shown = subprocess.run([sys.executable, "-m", "steerflow", "show", str(directory), "1"], capture_output=True,
                           text=True, timeout=60, env=env())
    assert shown.returncode == 0, shown.stderr
    assert '"a,b"' in " ".join(shown.stdout.split()), shown.stdout  # quoted: one tag, not two


def test_join_and_split_tags_give_back_any_tags_and_read_old_columns():
    for tags in (TAGS, [], ["%"], ["%%2C,"], [","], ["a", "b"], ["%25"]):
        assert split_tags(join_tags(tags)) == list(tags) or (tags == [] and split_tags(join_tags(tags)) == [])
    assert join_tags(["a", "b"]) == "a,b"  # a tag without ',' or '%' is stored as before
    assert split_tags("learner:x,candidate=7") == ["learner:x", "candidate=7"]  # a column an older steerflow wrote
    assert split_tags(None) == [] and split_tags("") == []


def test_run_with_an_empty_dir_says_so_and_makes_nothing(tmp_path):
    spec = tmp_path / "p.yaml"
    (tmp_path / "steps.py").write_text("def one(x):\n    return x\n")
    spec.write_text("stages:\n  - name: one\n    function: 'steps:one'\n    kwargs: {x: '{x}'}\n"
                    "    foreach: {x: [1, 2]}\n")
    for args in (["run", str(spec), "--dir", ""], ["run", "--dir", "", str(spec)], ["run", str(spec), "--dir="]):
        out = subprocess.run([sys.executable, "-m", "steerflow", *args], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env=env())
        assert out.returncode == 2, (args, out.returncode, out.stdout, out.stderr)
        assert "--dir" in out.stderr and "empty" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "steps.py"], list(tmp_path.iterdir())


def big(x):
    return bytes(200_000)


def small(x):
    return x


def test_a_changed_tasks_old_large_result_file_is_removed_when_its_new_result_is_small(tmp_path):
    directory = tmp_path / "c"
    for fn, resume in ((big, False), (small, True)):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                           resume=resume)
        futures = [camp.submit(sf.Function(fn, args=(i,))) for i in range(3)]
        camp.run()
        camp.close()
        if fn is big:
            assert len(list((directory / "results").iterdir())) == 3
    assert [f.result() for f in futures] == [0, 1, 2]
    assert list((directory / "results").iterdir()) == []  # the old files: dropped with their rows
    with sqlite3.connect(directory / "journal.db") as conn:
        assert conn.execute("SELECT count(*) FROM results WHERE path IS NOT NULL").fetchone()[0] == 0


def test_a_changed_task_with_a_new_large_result_keeps_its_new_file(tmp_path):
    directory = tmp_path / "c"
    for fn, resume in ((small, False), (big, True), (big, True)):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                           resume=resume)
        futures = [camp.submit(sf.Function(fn, args=(i,))) for i in range(2)]
        camp.run()
        camp.close()
        assert [len(f.result()) for f in futures] == [200_000] * 2 if fn is big else True
    assert sorted(p.name for p in (directory / "results").iterdir()) == ["1.pkl", "2.pkl"]


def journal_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("journal.db*"))


def test_an_agent_emitting_a_large_event_per_result_keeps_the_journal_bounded_and_replays(tmp_path, capfd):
    """200 results, each answered by a 200 KB event (under the 256 KiB bound each): 40 MB in the journal before."""
    directory = tmp_path / "c"

    def build(resume):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False,
                           resume=resume)
        got = []

        @camp.on_result()
        def emit(result, ctx):
            ctx.emit("model", bytes([result.value % 256]) * 200_000)

        @camp.on_event("model")
        def model(payload, ctx):
            got.append((payload[0], len(payload)))

        for i in range(200):
            camp.submit(sf.Function(noop, args=(i,)))
        return camp, got

    camp, live = build(False)
    camp.run()
    camp.close()
    assert len(live) == 200
    assert journal_bytes(directory) < 24 * 2**20, journal_bytes(directory)
    assert "events" in capfd.readouterr().err  # said once
    camp, replayed = build(True)
    camp.run()
    camp.close()
    assert replayed == live  # every event replayed, with its payload (the replayed emitter's, past the budget)


def test_run_dir_before_a_python_script_is_refused_instead_of_ignored(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text("open('ran', 'w').close()\n")
    out = subprocess.run([sys.executable, "-m", "steerflow", "run", "--dir", str(tmp_path / "x"), str(script)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env())
    assert out.returncode == 2 and "Campaign(DIR)" in out.stderr, out.stderr  # was: 0, the script ran elsewhere
    assert not (tmp_path / "ran").exists() and not (tmp_path / "x").exists()


def test_resume_of_a_pipeline_whose_spec_moved_says_how_to_run_it_from_where_it_is(tmp_path):
    spec = tmp_path / "p.yaml"
    (tmp_path / "steps.py").write_text("def one(x):\n    return x\n")
    spec.write_text("stages:\n  - name: one\n    function: 'steps:one'\n    kwargs: {x: '{x}'}\n    foreach: {x: [1]}\n")
    first = subprocess.run([sys.executable, "-m", "steerflow", "run", "--dir", str(tmp_path / "c"), str(spec)],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env())
    assert first.returncode == 0, first.stderr
    spec.rename(tmp_path / "moved.yaml")
    out = subprocess.run([sys.executable, "-m", "steerflow", "resume", str(tmp_path / "c")], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env=env())
    assert out.returncode == 2, out.stderr
    assert "steerflow run --resume --dir" in out.stderr and "Campaign(DIR" not in out.stderr, out.stderr  # was: Python
    again = subprocess.run([sys.executable, "-m", "steerflow", "run", "--resume", "--dir", str(tmp_path / "c"),
                            str(tmp_path / "moved.yaml")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env=env())
    assert again.returncode == 0 and "2 drivers" in again.stdout, again.stdout + again.stderr


def test_report_with_an_empty_out_says_so_and_writes_nothing(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf.Function(noop, args=(1,)))
    camp.run()
    camp.close()
    work = tmp_path / "work"
    work.mkdir()
    for args in (["--out", ""], ["--out="], ["--out", " "]):
        out = subprocess.run([sys.executable, "-m", "steerflow", "report", str(tmp_path / "c"), *args],
                             capture_output=True, text=True, timeout=120, cwd=work, env=env())
        assert out.returncode == 2 and "--out is empty" in out.stderr, (args, out.stderr)
        assert list(work.iterdir()) == []  # was: report.html, report.json and tasks.csv in the current folder


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(",%2Cc5a ü\\"), min_size=1, max_size=8), max_size=6))
def test_any_tags_survive_the_journal_column(tags):
    assert split_tags(join_tags(tags)) == tags
