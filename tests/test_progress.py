"""The live display: progress against the stop condition, per pool, failures, in 80 columns."""

from __future__ import annotations

import io

from rich.console import Console

import steerflow as sf
from steerflow.observe.progress import ProgressDisplay


def square(x):
    if x == 3:
        raise ValueError("three is not allowed here")
    return x * x


def _text(display: ProgressDisplay, width: int = 80) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False).print(display._render(width))
    return out.getvalue()


def test_the_display_shows_budget_pools_and_failures_in_80_columns(tmp_path):
    camp = sf.Campaign(tmp_path / "a-campaign", allocation=sf.Allocation.declare(nodes=1, cores=2),
                       pools={"simulate": {"cores": 2}}, progress=False)
    for x in range(6):
        camp.submit(sf.Function(square, args=(x,), pool="simulate"))
    summary = camp.run(stop=sf.stop.tasks(10) | sf.stop.wall("1h"))
    assert summary["states"] == {"done": 5, "failed": 1}
    text = _text(ProgressDisplay(camp))
    assert "a-campaign" in text.splitlines()[0]  # the title names the campaign
    assert "6/10 results" in text and "60%" in text and "of 1h00m" in text
    assert "simulate" in text and "ValueError: three is not allowed here" in text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_without_a_stop_condition_it_says_so(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf.Function(square, args=(2,)))
    camp.run()
    assert "no task budget or wall limit" in _text(ProgressDisplay(camp))


def hold(path):
    import os
    import time

    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return 1


def test_the_display_says_where_the_longest_running_tasks_run(tmp_path):
    import threading

    from .conftest import wait_until

    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    camp.submit(sf.Function(hold, args=(str(tmp_path / "go"),), name="holder"))
    runner = threading.Thread(target=camp.run)
    runner.start()
    try:
        assert wait_until(lambda: any(r.state.value == "running" for r in camp.runtime._records.values()), 30)
        text = _text(ProgressDisplay(camp))
    finally:
        (tmp_path / "go").touch()
        runner.join(60)
    assert "running 1, the longest:" in text and "1 holder on node0[c" in text, text
