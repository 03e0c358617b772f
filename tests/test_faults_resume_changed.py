"""Resume after the script changed: a task whose description differs from the journal's runs again (with a
warning), and the journaled delivery of its old result must not crash the replay (it did: InvalidStateError
"Task 1 has not finished" from the steering loop, on every resume)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import steerflow as sf

    def first(x):
        return x

    def second(x):
        time.sleep(0.5)  # still running when the replay reaches the journaled delivery of its old result
        return x + 100

    fn = second if os.environ.get("CHANGED") else first
    camp = sf.Campaign(sys.argv[1], resume=True, progress=False)
    seen = []

    @camp.on_result()
    def got(result, ctx):
        seen.append(result.value)

    for i in range(3):
        camp.submit(sf.Function(fn, args=(i,)))
    summary = camp.run()
    print("seen", sorted(seen), summary["stop_reason"])
""")


def run(script, directory, **env):
    return subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_a_changed_task_runs_again_and_its_old_delivery_does_not_crash_the_replay(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    first = run(script, tmp_path / "run")
    assert first.returncode == 0, first.stderr
    assert "seen [0, 1, 2]" in first.stdout
    again = run(script, tmp_path / "run", CHANGED="1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "not deterministic; running it again" in again.stderr
    assert "seen [100, 101, 102]" in again.stdout, again.stdout + again.stderr[-2000:]
