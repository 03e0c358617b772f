"""Starting the Dask engine: a campaign script without ``if __name__ == "__main__":`` runs unchanged on it,
and a scheduler address where nothing listens fails at once.

`steerflow run --engine dask camp.py` starts a LocalCluster whose nannies start their workers with
multiprocessing spawn, which runs the parent's ``__main__`` again in each child unless told otherwise:
the script's top level ran a second time inside the worker and failed there ("An attempt has been made
to start a new process before ... bootstrapping", "Nanny failed to start"). Checked here with the real
CLI in a subprocess: the script's top level runs once, its campaign finishes on the Dask engine, and
no process of it is left behind. A refused address used to wait out the whole connect timeout (60 s)
before it said so; now it fails after a few seconds of refusals, with a message saying what to check.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from .conftest import wait_until  # noqa: E402

SCRIPT = textwrap.dedent('''
    import os
    import steerflow as sf


    def square(x):
        return x * x


    print("top level ran in", os.getpid(), flush=True)
    camp = sf.Campaign(os.environ["CAMPAIGN_DIR"])
    futures = [camp.submit(sf.Function(square, args=(i,))) for i in range(6)]
    camp.run(stop=sf.stop.tasks(6) | sf.stop.wall("2m"))
    print("results", [f.result() for f in futures], type(camp.runtime.engine).__name__, flush=True)
''')


def in_session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the CLI's, which its cluster's processes inherit)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def test_a_script_without_a_main_guard_runs_on_the_dask_engine(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, CAMPAIGN_DIR=str(tmp_path / "campaign"))
    env.pop("STEERFLOW_DASK_SCHEDULER", None)
    steerflow = Path(sys.executable).parent / "steerflow"
    proc = subprocess.Popen([str(steerflow), "run", "--engine", "dask", str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    assert out.count("top level ran") == 1, out  # not once more inside a worker
    assert "results [0, 1, 4, 9, 16, 25] DaskEngine" in out, out
    assert "bootstrapping" not in err and "Nanny failed" not in err, err[-3000:]
    left = []
    assert wait_until(lambda: not (left := in_session(proc.pid)), timeout=30), f"left behind: {left}"


def test_an_address_where_nothing_listens_fails_at_once(tmp_path):
    from steerflow import Runtime
    from steerflow.engines.dask import DaskEngine
    from steerflow.errors import AllocationError

    with socket.socket() as s:  # a port nothing listens on (bound, then closed)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(AllocationError, match="nothing listens at tcp://127.0.0.1") as info:
        Runtime(engine=DaskEngine(f"tcp://127.0.0.1:{port}"), run_dir=tmp_path / "run")
    assert time.monotonic() - t0 < 40, "it waited out the whole connect timeout (60 s)"
    assert "dask scheduler" in str(info.value)


def test_the_scripts_spec_is_given_back_when_the_engines_cluster_closes(tmp_path, monkeypatch):
    import types

    from steerflow import Runtime
    from steerflow.engines.dask import DaskEngine

    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and not getattr(main, "__file__", None):
        # (a pytest-xdist worker's __main__ is its bootstrap, neither: stand in a script, as `python camp.py` has)
        script = tmp_path / "camp.py"
        script.write_text("")
        main = types.ModuleType("__main__")
        main.__file__ = str(script)
        monkeypatch.setitem(sys.modules, "__main__", main)
    before = getattr(main, "__spec__", None)
    rt = Runtime(engine=DaskEngine(cluster={"n_workers": 1, "resources": {"cores": 1}}), run_dir=tmp_path / "run")
    try:
        assert rt.submit(abs, -3).result(timeout=60) == 3
        if before is None and not getattr(main, "__file__", None):
            pytest.skip("this __main__ is neither a script nor a module: nothing to keep out of the workers")
        assert main.__spec__.name == "__main__"  # spawn does not run it again in a worker
    finally:
        rt.shutdown()
    assert getattr(main, "__spec__", None) is before
