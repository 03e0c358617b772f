"""A bad task fails alone and the runtime's loop goes on; a failure of the loop itself fails every pending
future with its cause and stops a campaign with an error (never a silent hang)."""

import heapq
import operator
import time

import pytest

from steerflow import Allocation, Campaign, Executable, Function, RuntimeBroken, TaskFailed, TaskSpecError
from steerflow.engines.local import LocalEngine

from .conftest import wait_until


def test_a_task_the_engine_cannot_start_fails_alone(runtime):
    bad = Executable(["true"])
    bad.env["X"] = "a\0b"  # past validation (as a preempt with a new argv could be): Popen raises ValueError
    f = runtime.submit(bad)
    with pytest.raises(TaskFailed, match="could not be launched.*null byte"):
        f.result(timeout=30)
    assert runtime.task(f.task_id).attempts[-1].outcome == "failed"
    assert runtime.submit(Function(operator.add, (1, 2))).result(timeout=30) == 3
    assert runtime.submit(Executable(["true"])).result(timeout=30).returncode == 0


def test_an_unpicklable_function_fails_alone(runtime):
    import threading

    lock = threading.Lock()
    f = runtime.submit(Function(lambda: lock))  # cloudpickle cannot pickle the lock it closes over
    with pytest.raises(TaskFailed, match="could not be launched"):
        f.result(timeout=30)
    assert runtime.submit(Function(operator.add, (2, 2))).result(timeout=30) == 4


def test_a_deadline_past_what_epoll_can_wait_does_not_stop_the_loop(runtime):
    spec = Function(time.sleep, (0.01,))
    spec.timeout = 1e300  # past validation: submit checks it again now
    with pytest.raises(TaskSpecError, match="timeout"):
        runtime.submit(spec)
    f = runtime.submit(Function(time.sleep, (0.01,)))
    # the loop's own wait must still be bounded, whatever deadline it holds
    runtime.call_soon(lambda: heapq.heappush(runtime._deadlines, (1e300, f.task_id, 1)))
    assert f.result(timeout=30) is None
    assert runtime.submit(Function(operator.add, (1, 1))).result(timeout=30) == 2


class BreakingEngine(LocalEngine):
    """The real local engine, whose wait raises once told to: a stand-in for a bug in the loop."""

    broken = False

    def wait(self, timeout):
        if self.broken:
            raise RuntimeError("the engine's event loop broke")
        return super().wait(timeout)


def test_a_loop_failure_fails_every_pending_future_with_its_cause(make_runtime):
    engine = BreakingEngine()
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1), engine=engine)
    running = rt.submit(Function(time.sleep, (60,)))
    queued = rt.submit(Function(operator.add, (1, 2)))
    dependent = rt.submit(Function(operator.add, (running, 1)))
    assert wait_until(lambda: running.running(), timeout=20)
    engine.broken = True
    engine.wakeup()
    for f in (running, queued, dependent):
        with pytest.raises(RuntimeBroken, match="loop failed") as info:
            f.result(timeout=30)
        assert isinstance(info.value.__cause__, RuntimeError)
    assert rt.failure is not None
    with pytest.raises(RuntimeBroken):
        rt.submit(Function(operator.add, (1, 2)))


def test_a_loop_failure_stops_the_campaign_with_an_error(tmp_path):
    engine = BreakingEngine()
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), engine=engine, progress=False)
    done = []

    @camp.on_result()
    def on_result(result, ctx):
        done.append(result.key)
        if len(done) == 2:
            engine.broken = True
            engine.wakeup()
        ctx.submit(operator.add, 1, 1)

    camp.submit(operator.add, 1, 2)
    with pytest.raises(RuntimeBroken, match="loop failed"):
        camp.run()
    assert len(done) >= 2


def test_an_agent_that_submits_into_the_broken_runtime_reports_the_runtime_failure(tmp_path):
    """The agent's failing submit is a consequence: run() names the runtime's failure, not the agent."""
    engine = BreakingEngine()
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), engine=engine, progress=False)

    @camp.on_result()
    def on_result(result, ctx):
        engine.broken = True
        engine.wakeup()
        assert wait_until(lambda: camp.runtime.failure is not None, timeout=30)
        ctx.submit(operator.add, 1, 1)  # raises RuntimeBroken inside the agent

    camp.submit(operator.add, 1, 2)
    with pytest.raises(RuntimeBroken, match="loop failed") as info:
        camp.run()
    assert isinstance(info.value.__cause__, RuntimeError)
