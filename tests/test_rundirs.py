"""Reading campaign directories: where a running task runs (node, cores, GPUs), one task whole."""

from __future__ import annotations

import os
import re
import threading
import time

import steerflow as sf
from steerflow import rundirs

from .conftest import wait_until


def wait_for(path, seconds=60):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def test_status_and_show_say_where_a_task_runs_with_its_gpus(tmp_path):
    release = tmp_path / "release"
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2, gpus=2), progress=False)
    future = camp.submit(sf.Function(wait_for, args=(str(release),), gpus=1, name="on-a-gpu"))
    runner = threading.Thread(target=camp.run)
    runner.start()
    try:
        assert wait_until(lambda: bool(rundirs.status(tmp_path / "c")["running"]), timeout=30)
        running = rundirs.status(tmp_path / "c")["running"][0]
        assert running["name"] == "on-a-gpu" and re.fullmatch(r"node0\[c\d g\d\]", running["where"]), running
    finally:
        release.touch()
        runner.join(60)
    assert future.result() in ("0", "1")
    shown = rundirs.task(tmp_path / "c", future.task_id)
    assert shown["state"] == "done" and shown["gpus"] == 1
    assert any(re.fullmatch(r"node0\[c\d g\d\]", row["where"]) for row in shown["history"])
    assert shown["spec"]["function"] == f"{__name__}:wait_for" and shown["spec"]["args"] == repr((str(release),))


def test_status_of_a_folder_of_many_campaigns_lists_them(tmp_path, capsys):
    from steerflow.cli import main

    for i in range(5):
        sf.Campaign(tmp_path / f"run{i}" / "phase", allocation=sf.Allocation.declare(nodes=1, cores=1),
                    progress=False).close()
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5 campaigns in" in out and all(f"run{i}/phase" in out for i in range(5))
