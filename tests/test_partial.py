"""Streamed partial results: values a running task sends reach agents in order while it still runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import steerflow as sf
from steerflow import partial

ALLOC = sf.Allocation.declare(nodes=1, cores=2)
SCRIPT = Path(__file__).parent / "campaigns" / "partial_campaign.py"


def wait_for(path: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


def handshake(n: int, acks: str) -> str:
    """Send n partial values; each waits for the agent's acknowledgement, so they must arrive while it runs."""
    for i in range(n):
        partial.emit({"step": i})
        if not wait_for(os.path.join(acks, str(i))):
            return f"no ack for {i}"
    return "done"


def forever(acks: str) -> str:
    i = 0
    while True:
        partial.emit(i)
        i += 1
        time.sleep(0.01)


def test_function_partials_arrive_in_order_while_the_task_runs(tmp_path):
    acks = tmp_path / "acks"
    acks.mkdir()
    camp = sf.Campaign(tmp_path / "c", allocation=ALLOC, progress=False)
    seen: list[tuple[int, int, bool]] = []
    results = []

    @camp.on_partial()
    def got(p, ctx):
        seen.append((p.index, p.value["step"], camp.futures()[p.key].done()))
        (acks / str(p.value["step"])).touch()

    @camp.on_result()
    def done(r, ctx):
        results.append(r.value)

    camp.submit(handshake, 5, str(acks))
    camp.run()
    assert results == ["done"]
    assert seen == [(i, i, False) for i in range(5)]
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    kinds = [k for (k,) in conn.execute("SELECT kind FROM steering ORDER BY seq")]
    conn.close()
    assert kinds.count("partial") == 5 and kinds.index("result") > max(i for i, k in enumerate(kinds) if k == "partial")
    assert partial.emit("outside a task") is False


def test_program_partials_and_an_agent_that_kills_early(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=ALLOC, progress=False)
    program = sf.Executable(["bash", "-c", 'for i in 0 1 2 3 4 5 6 7 8 9; do echo "{\\"frame\\": $i}" > '
                             '"$STEERFLOW_PARTIAL"; sleep 0.05; done; echo not-json > "$STEERFLOW_PARTIAL"'], tags=("prog",))
    frames, text, killed = [], [], []

    @camp.on_partial(tag="prog")
    def got(p, ctx):
        if isinstance(p.value, dict):
            frames.append(p.value["frame"])
        else:
            text.append(p.value)

    endless = camp.submit(forever, "x")

    @camp.on_partial()
    def stop_it(p, ctx):
        if p.key == endless.task_id and p.index == 3:
            ctx.cancel(p.key)
            killed.append(p.index)

    camp.submit(program)
    camp.run()
    assert frames == list(range(10)) and text == ["not-json"]
    assert killed == [3] and endless.cancelled()
    assert not list((tmp_path / "c" / "tasks").glob("*.partial"))  # the named pipes are removed


def test_partials_survive_a_crash_and_are_replayed_in_order(tmp_path):
    directory, acks = tmp_path / "camp", tmp_path / "acks"
    acks.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, str(SCRIPT), str(directory), str(acks)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    db = directory / "journal.db"
    deadline = time.monotonic() + 60
    n = 0
    while time.monotonic() < deadline and n < 3:
        time.sleep(0.05)
        if db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
                n = conn.execute("SELECT COUNT(*) FROM steering WHERE kind = 'partial'").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                pass
    assert n >= 3, "the campaign journaled no partial results"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-task
    proc.wait()
    (acks / "go").touch()  # the rerun of the task may now finish
    out = subprocess.run(cmd, env=env, timeout=120, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    log = json.loads((directory / "seen.json").read_text())
    replayed = [(i, v) for i, v, r in log if r]
    fresh = [(i, v) for i, v, r in log if not r]
    assert len(replayed) >= 3 and replayed == [(i, i) for i in range(len(replayed))]
    indices = [i for i, _, _ in log]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # numbering continues after resume
    assert fresh and fresh[-1][1] == "end"
