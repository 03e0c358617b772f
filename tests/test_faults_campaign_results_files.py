"""Results stored in files (over 64 KB: results/KEY.pkl) after the campaign directory moved, or the files were damaged.

Before:
- the journal named each file by its absolute path, and readers opened that path: a campaign moved (or copied) to
  another directory read its large results from the old place on resume, so once the old one was gone every such task
  became a failed task ("stored result could not be read"), and while it was there a copy read the other campaign's
  files; `steerflow show` named the old place;
- a result file that was missing or damaged (a copy without results/, a truncated transfer) made its task a failed
  task on every resume, though it had succeeded. Now it runs again, once, with a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import steerflow as sf
from steerflow import learn


def big(i):
    return bytes([i]) * 100_000


def run(directory, resume):
    camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False, resume=resume)
    seen = {}
    camp.on_result()(lambda r, ctx: seen.__setitem__(r.key, (r.ok, r.value[:1] if r.ok else str(r.error))))
    futures = [camp.submit(sf.Function(big, args=(i,), tags=[learn.candidate_tag(i)])) for i in range(4)]
    summary = camp.run()
    camp.close()
    return seen, futures, summary


def test_a_moved_campaign_reads_its_large_results_where_they_are_now(tmp_path):
    first, moved = tmp_path / "first", tmp_path / "moved"
    before, _, _ = run(first, False)
    assert before == {k: (True, bytes([k - 1])) for k in range(1, 5)}
    shutil.move(first, moved)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: every result is read
        after, futures, _ = run(moved, True)
    assert after == before and [f.result()[:1] for f in futures] == [bytes([i]) for i in range(4)]
    shown = subprocess.run([sys.executable, "-m", "steerflow", "show", str(moved), "2"], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert shown.returncode == 0 and "moved" in shown.stdout and "first" not in shown.stdout, shown.stdout
    trace = learn.Trace.from_journal(moved, pool="default")
    assert sorted(e.value[:1] for e in trace.evaluations) == [bytes([i]) for i in range(4)]


def test_a_copied_campaign_does_not_read_the_originals_files(tmp_path):
    first, copy = tmp_path / "first", tmp_path / "copy"
    run(first, False)
    shutil.copytree(first, copy)
    for name in ("1.pkl", "2.pkl"):  # the original's files changed since (its own result files are its own)
        (first / "results" / name).write_bytes(b"not a pickle")
    after, _, _ = run(copy, True)
    assert after == {k: (True, bytes([k - 1])) for k in range(1, 5)}


def test_a_missing_or_damaged_result_file_runs_its_task_again_once(tmp_path, recwarn):
    directory = tmp_path / "c"
    run(directory, False)
    (directory / "results" / "3.pkl").unlink()
    with open(directory / "results" / "2.pkl", "r+b") as f:
        f.truncate(100)
    seen, futures, summary = run(directory, True)
    assert seen == {k: (True, bytes([k - 1])) for k in range(1, 5)}  # was: tasks 2 and 3 failed
    assert summary["states"].get("failed", 0) == 0
    said = [str(w.message) for w in recwarn if "cannot be read" in str(w.message)]
    assert len(said) == 2 and "running it again" in said[0], said
    recwarn.clear()
    assert run(directory, True)[0] == seen  # the next resume reads them all, and says nothing
    assert not [w for w in recwarn if "cannot be read" in str(w.message)]
    assert sorted(p.name for p in (directory / "results").iterdir()) == ["1.pkl", "2.pkl", "3.pkl", "4.pkl"]
