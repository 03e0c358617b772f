"""An agent that raises what is awkward to report: a huge message, on every result; an exception whose str() raises.

Before: with on_agent_error="log", an agent raising a 1 MB message on each of 100 results made a 96 MB journal (each
error's whole message in a meta row) and printed 100 MB; an exception whose ``str()`` raised escaped the steering
thread, so `run()` ended in a traceback of the steerflow internals instead of the agent's error (also with "log").
"""

from __future__ import annotations

import pytest

import steerflow as sf
from steerflow.campaign import AgentError


def noop(x):
    return x


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def journal_bytes(directory) -> int:
    return sum(p.stat().st_size for p in directory.glob("journal.db*"))


def test_an_agent_raising_a_huge_message_on_every_result_keeps_the_journal_and_the_terminal_small(tmp_path, capfd):
    camp = sf.Campaign(tmp_path / "c", progress=False, on_agent_error="log",
                       allocation=sf.Allocation.declare(nodes=1, cores=2))

    @camp.on_result()
    def bad(result, ctx):
        raise ValueError("x" * 1_000_000)

    for i in range(150):
        camp.submit(sf.Function(noop, args=(i,)))
    assert camp.run()["results_seen"] == 150
    camp.close()
    assert journal_bytes(tmp_path / "c") < 4_000_000, journal_bytes(tmp_path / "c")  # was ~150 MB
    err = capfd.readouterr().err
    assert err.count(".bad raised ValueError") == 150 and len(err) < 2_000_000, len(err)
    assert "more characters" in err


@pytest.mark.parametrize("mode", ["stop", "log"])
def test_an_agent_exception_whose_str_raises_is_reported_as_the_agents_error(tmp_path, mode, capfd):
    camp = sf.Campaign(tmp_path / "c", progress=False, on_agent_error=mode,
                       allocation=sf.Allocation.declare(nodes=1, cores=2))

    @camp.on_result()
    def bad(result, ctx):
        raise Unprintable()

    for i in range(3):
        camp.submit(sf.Function(noop, args=(i,)))
    if mode == "stop":
        with pytest.raises(AgentError, match="bad raised Unprintable: .its message cannot be shown"):
            camp.run()
    else:
        assert camp.run()["results_seen"] == 3
        assert capfd.readouterr().err.count("bad raised Unprintable: (its message cannot be shown") == 3
    camp.close()
