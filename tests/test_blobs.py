"""The journal stays small: a large argument sent to many tasks is stored once, content-addressed."""

from __future__ import annotations

import sqlite3

import numpy as np

import steerflow as sf
from steerflow import blobs, rundirs


def column_sum(matrix, j):
    return float(matrix[:, j].sum())


def test_a_matrix_sent_to_many_tasks_is_stored_once(tmp_path):
    matrix = np.arange(400_000, dtype=np.float64).reshape(1000, 400)  # 3.2 MB
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    futures = [camp.submit(sf.Function(column_sum, args=(matrix, j))) for j in range(40)]
    camp.submit(sf.Function(column_sum, args=(matrix + 1, 0)))  # another matrix: a second blob
    summary = camp.run()
    assert summary["states"] == {"done": 41}
    assert futures[3].result() == float(matrix[:, 3].sum())
    stored = sorted((tmp_path / "c" / "blobs").iterdir())
    assert len(stored) == 2 and all(p.name.endswith((".pkl", ".pkl.zlib")) for p in stored)
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    spec_bytes = conn.execute("SELECT sum(length(spec)) FROM tasks").fetchone()[0]
    conn.close()
    assert spec_bytes < 41 * 1000, spec_bytes  # references, not 41 copies of 3.2 MB
    # the description still says what ran, and the stored argument can be read back whole
    shown = rundirs.task(tmp_path / "c", 4)
    assert "column_sum" in shown["spec"]["fn"] and "stored once in blobs/" in shown["spec"]["args"]
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    blob = conn.execute("SELECT spec FROM tasks WHERE key = 4").fetchone()[0]
    conn.close()
    spec = blobs.load_spec(tmp_path / "c", blob, resolve=True)
    assert np.array_equal(spec["args"][0], matrix) and spec["args"][1] == 3


def test_resume_with_blobs_runs_nothing_again(tmp_path):
    matrix = np.ones((300, 300))
    for attempt in range(2):
        camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False,
                           resume=attempt == 1)
        futures = [camp.submit(sf.Function(column_sum, args=(matrix, j))) for j in range(5)]
        camp.run()
        assert [f.result() for f in futures] == [300.0] * 5
    assert camp.resumed and len(list((tmp_path / "c" / "blobs").iterdir())) == 1
    assert rundirs.status(tmp_path / "c")["pools"]["default"] == {"done": 5}


class Point:
    def __init__(self, x):
        self.x = x


def test_show_reads_a_description_without_running_what_it_names(tmp_path):
    import pickle

    victim = tmp_path / "victim"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {victim}",))

    import os

    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf.Function(column_sum, args=(np.ones((2, 2)), Point(3))))
    camp.run()
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    with conn:
        conn.execute("UPDATE tasks SET spec = ? WHERE key = 1",
                     (pickle.dumps({"fn": "x", "args": (Evil(), np.arange(3), Point(1)), "kwargs": {}}),))
    conn.close()
    shown = rundirs.task(tmp_path / "c", 1)
    assert not victim.exists()
    assert "<posix.system>" in shown["spec"]["args"] and "array([0, 1, 2])" in shown["spec"]["args"]
    assert "Point>" in shown["spec"]["args"]
