"""The runtime with real worker processes and subprocesses: futures, binding, cancel, timeouts, retries, crashes."""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import as_completed, wait
from pathlib import Path

import pytest

from steerflow import (Allocation, DependencyFailed, Executable, Function, TaskFailed, TaskState, TaskTimeout,
                       WorkerLost)
from steerflow.proctree import process_alive

from .conftest import needs_mpirun, proc_state, wait_until


def add(a, b):
    return a + b


def report_binding():
    return {"cuda": os.environ["CUDA_VISIBLE_DEVICES"], "omp": os.environ["OMP_NUM_THREADS"],
            "node": os.environ["STEERFLOW_NODE"], "cores": os.environ["STEERFLOW_CORES"],
            "gpus": os.environ["STEERFLOW_GPUS"], "affinity": sorted(os.sched_getaffinity(0)),
            "pid": os.getpid()}


def test_functions_closures_and_lambdas(runtime):
    offset = 10
    assert runtime.submit(add, 1, 2).result(timeout=30) == 3
    assert runtime.submit(lambda x: x + offset, 5).result(timeout=30) == 15

    def closure(n):
        return [offset * i for i in range(n)]

    assert runtime.submit(closure, 3).result(timeout=30) == [0, 10, 20]
    assert list(runtime.map(add, range(20), range(20), timeout=30)) == [2 * i for i in range(20)]


def test_warm_workers_are_reused(runtime):
    pids = {runtime.submit(os.getpid).result(timeout=30) for _ in range(20)}
    assert 1 <= len(pids) <= 2  # two warm workers on two cores, not a process per task


def test_futures_as_arguments_and_after(runtime, tmp_path):
    a = runtime.submit(add, 1, 2)
    b = runtime.submit(add, a, 10)
    c = runtime.submit(Function(sum, args=([a, b, 100],)))
    assert c.result(timeout=30) == 3 + 13 + 100
    marker = tmp_path / "order"
    first = runtime.submit(Function(_append, args=(marker, "first"), kwargs={"delay": 0.2}))
    second = runtime.submit(Function(_append, args=(marker, "second"), after=[first]))
    second.result(timeout=30)
    assert marker.read_text().split() == ["first", "second"]


def _append(path, word, delay=0.0):
    time.sleep(delay)
    with open(path, "a") as f:
        f.write(word + "\n")


def _boom(x):
    raise ValueError(f"bad input {x}")


def test_exceptions_propagate_with_remote_traceback(runtime):
    future = runtime.submit(_boom, 7)
    with pytest.raises(ValueError, match="bad input 7") as info:
        future.result(timeout=30)
    assert any("Remote traceback" in note and "_boom" in note for note in info.value.__notes__)
    dependent = runtime.submit(add, future, 1)
    with pytest.raises(DependencyFailed, match="depends on"):
        dependent.result(timeout=30)


def test_as_completed_and_wait(runtime, tmp_path):
    futures = [runtime.submit(Function(time.sleep, args=(d,))) for d in (0.3, 0.0, 0.1)]
    done, not_done = wait(futures, timeout=30)
    assert len(done) == 3 and not not_done
    gate = tmp_path / "gate"
    futures = [runtime.submit(_after_gate, str(gate), "slow"), runtime.submit(_sleep_return, 0.0)]
    completed = as_completed(futures, timeout=30)
    assert next(completed).result() == 0.0  # the other cannot end before the gate opens ...
    gate.touch()
    assert next(completed).result() == "slow"  # ... and then it does


def _after_gate(gate, value):
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.005)
    return value


def _sleep_return(d):
    time.sleep(d)
    return d


def _spawn_sleeper(pidfile):
    import subprocess
    child = subprocess.Popen(["sleep", "60"])
    Path(pidfile).write_text(f"{os.getpid()} {child.pid}")
    child.wait()



def test_cancel_kills_running_function_and_its_children(runtime, tmp_path):
    pidfile = tmp_path / "pids"
    future = runtime.submit(_spawn_sleeper, str(pidfile))
    assert wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2)
    worker_pid, sleeper_pid = map(int, pidfile.read_text().split())
    t0 = time.monotonic()
    assert future.cancel()
    assert future.cancelled()
    assert wait_until(lambda: not process_alive(worker_pid) and not process_alive(sleeper_pid), timeout=5, interval=0.002)
    assert time.monotonic() - t0 < 1.0  # the benchmark measures it (target 100 ms); this bounds it loosely
    # the worker was replaced and the runtime goes on
    assert runtime.submit(add, 2, 2).result(timeout=30) == 4
    assert runtime.task(future.task_id).state is TaskState.CANCELLED


def test_cancel_running_executable(runtime, tmp_path):
    pidfile = tmp_path / "pid"
    future = runtime.submit(Executable(["sh", "-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; "
                                                    "exec sleep 60"]))
    assert wait_until(pidfile.exists)
    pid = int(pidfile.read_text())
    assert process_alive(pid)
    assert future.cancel()
    assert wait_until(lambda: not process_alive(pid), timeout=10)  # the program itself is gone ...
    assert future.cancelled() and runtime.task(future.task_id).state is TaskState.CANCELLED  # ... and so recorded
    # its core is released once the kill is confirmed: two more 1-core tasks can run
    assert [f.result(timeout=30) for f in [runtime.submit(add, 1, 1), runtime.submit(add, 2, 2)]] == [2, 4]


def test_cancel_waiting_task(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    blocker = rt.submit(Function(time.sleep, args=(0.5,)))
    waiting = rt.submit(add, 1, 1)
    assert waiting.cancel()
    assert blocker.result(timeout=30) is None
    assert waiting.cancelled()


def test_timeout_kills_the_task(runtime):
    t0 = time.monotonic()
    future = runtime.submit(Function(time.sleep, args=(60,), timeout=0.3))
    with pytest.raises(TaskTimeout, match="timeout of 0.3 s"):
        future.result(timeout=30)
    assert time.monotonic() - t0 < 10
    exe = runtime.submit(Executable(["sleep", "60"], timeout=0.3))
    with pytest.raises(TaskTimeout):
        exe.result(timeout=30)


def _fail_first_time(marker):
    p = Path(marker)
    if not p.exists():
        p.write_text("x")
        raise RuntimeError("first attempt fails")
    return "second attempt ok"


def test_retry_after_failure_records_attempts(runtime, tmp_path):
    future = runtime.submit(Function(_fail_first_time, args=(str(tmp_path / "m"),), retries=1))
    assert future.result(timeout=30) == "second attempt ok"
    attempts = runtime.task(future.task_id).attempts
    assert [a.outcome for a in attempts] == ["failed", "done"]
    assert "first attempt fails" in attempts[0].message
    no_retry = runtime.submit(Function(_fail_first_time, args=(str(tmp_path / "n"),)))
    with pytest.raises(RuntimeError, match="first attempt fails"):
        no_retry.result(timeout=30)


def _die_first_time(marker):
    p = Path(marker)
    if not p.exists():
        p.write_text("x")
        os._exit(3)
    return os.getpid()


def _segfault_first_time(marker):
    p = Path(marker)
    if not p.exists():
        p.write_text("x")
        os.kill(os.getpid(), signal.SIGSEGV)
    return os.getpid()


def test_worker_death_is_retried_and_worker_replaced(runtime, tmp_path):
    first_pids = {runtime.submit(os.getpid).result(timeout=30) for _ in range(6)}
    f1 = runtime.submit(_die_first_time, str(tmp_path / "a"))
    f2 = runtime.submit(_segfault_first_time, str(tmp_path / "b"))
    assert isinstance(f1.result(timeout=30), int) and isinstance(f2.result(timeout=30), int)
    lost = runtime.task(f1.task_id).attempts[0]
    assert lost.outcome == "lost" and "exit status 3" in lost.message
    assert "SIGSEGV" in runtime.task(f2.task_id).attempts[0].message
    later = {runtime.submit(os.getpid).result(timeout=30) for _ in range(10)}
    assert later - first_pids  # new workers replaced the dead ones


def test_worker_killed_from_outside_mid_task(runtime, tmp_path):
    pidfile = tmp_path / "pid"
    future = runtime.submit(_write_pid_then_sleep_once, str(pidfile))
    assert wait_until(lambda: pidfile.exists() and pidfile.read_text())
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert future.result(timeout=30) == "survived"
    assert runtime.task(future.task_id).attempts[0].outcome == "lost"


def _write_pid_then_sleep_once(pidfile):
    p = Path(pidfile)
    if p.exists() and p.read_text():
        return "survived"
    p.write_text(str(os.getpid()))
    time.sleep(60)


def test_worker_lost_too_often_fails(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2), lost_retries=1)
    future = rt.submit(os._exit, 1)
    with pytest.raises(WorkerLost, match="was lost"):
        future.result(timeout=30)
    assert len(rt.task(future.task_id).attempts) == 2


def test_declared_two_nodes_two_gpus_binding(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=2, cores=2, gpus=2))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    futures = [rt.submit(Function(_hold_and_report, args=(str(barrier), 4), gpus=1)) for _ in range(4)]
    reports = [f.result(timeout=30) for f in futures]
    held = {(r["node"], r["gpus"]) for r in reports}
    assert held == {("node0", "0"), ("node0", "1"), ("node1", "0"), ("node1", "1")}  # 4 GPUs, each once
    real = sorted(os.sched_getaffinity(0))
    for r in reports:
        assert r["cuda"] == r["gpus"] and r["omp"] == "1"
        assert r["affinity"] == [real[int(r["cores"]) % len(real)]]
    two = rt.submit(Function(report_binding, cores=2, gpus=2)).result(timeout=30)
    assert two["cuda"] == "0,1" and two["omp"] == "2" and two["cores"] == "0,1"
    none = rt.submit(report_binding).result(timeout=30)
    assert none["cuda"] == ""  # a task without GPUs sees none


def _hold_and_report(barrier, n):
    """Hold the GPU until all n tasks run at once (so each must have got a different one)."""
    Path(barrier, str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(os.listdir(barrier)) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return report_binding()


def test_executable_output_env_pre_post(runtime, tmp_path):
    future = runtime.submit(Executable(["sh", "-c", "echo hello $GREETING; echo cores=$STEERFLOW_CORES >&2"],
                                       env={"GREETING": "world"}, cwd=tmp_path,
                                       pre=["echo pre > pre.txt"], post=["echo post > post.txt"]))
    result = future.result(timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == "hello world"
    assert result.stderr.strip() in ("cores=0", "cores=1")
    assert (tmp_path / "pre.txt").exists() and (tmp_path / "post.txt").exists()
    failing = runtime.submit(Executable(["sh", "-c", "echo oops >&2; exit 4"]))
    with pytest.raises(TaskFailed, match="exited with status 4(.|\n)*oops"):
        failing.result(timeout=30)
    silent = runtime.submit(Executable(["sh", "-c", "exit 3"]))
    with pytest.raises(TaskFailed, match=r"exited with status 3\. It wrote nothing to its stderr"):
        silent.result(timeout=30)


def test_executable_affinity(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    result = rt.submit(Executable([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                                  launcher="none", cores_per_rank=1)).result(timeout=30)
    assert len(eval(result.stdout)) == 1


MPI_HELLO = """
from mpi4py import MPI
import os
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank(), op=MPI.SUM)
line = f"rank {comm.Get_rank()} of {comm.Get_size()} sum {total} cpus {os.environ['STEERFLOW_CPUS']}"
with open(f"rank{comm.Get_rank()}.txt", "w") as f:  # mpirun may drop the last forwarded output under load
    f.write(line)
print(line, flush=True)
"""


@needs_mpirun
def test_mpi_hello_world_two_ranks(make_runtime, tmp_path):
    pytest.importorskip("mpi4py")
    script = tmp_path / "hello.py"
    script.write_text(MPI_HELLO)
    rt = make_runtime(allocation=Allocation.declare(nodes=2, cores=1))
    result = rt.submit(Executable([sys.executable, str(script)], ranks=2, timeout=120, cwd=tmp_path)).result(
        timeout=150)
    assert result.stdout.startswith("rank ")
    lines = sorted((tmp_path / f"rank{r}.txt").read_text() for r in range(2))
    assert [l.split(" sum")[0] for l in lines] == ["rank 0 of 2", "rank 1 of 2"]
    assert all("sum 1" in l for l in lines)  # a real allreduce over both ranks


def test_suspend_and_resume(runtime, tmp_path):
    counter = tmp_path / "count"
    future = runtime.submit(Executable(["sh", "-c", f"echo $$ > {tmp_path}/pid; for i in $(seq 1 400); do "
                                                   f"echo $i >> {counter}; sleep 0.01; done"]))
    assert wait_until(lambda: counter.exists() and len(counter.read_text().split()) > 3)
    shell = int((tmp_path / "pid").read_text())
    runtime.suspend(future)
    assert wait_until(lambda: future.state is TaskState.PAUSED)
    # nothing runs while paused: the program and whatever it started are stopped (state T), not sleeping. A
    # `sleep` that ended just before its shell was stopped stays a zombie (Z) until the shell runs again to reap it:
    # it runs nothing either (seen once in CI: the suspend is right, a test that wanted T only was wrong).
    # And a shell stopped in vfork() waits in D state for its child, stopped before its exec: it runs nothing
    # either, and stays D until the child runs again (seen twice under load, 60 s long).
    from steerflow.proctree import descendants

    def idle(p: int) -> bool:
        state = proc_state(p)
        return state in ("T", "Z", "gone") or (state == "D" and any(proc_state(c) == "T" for c in children(p)))

    assert wait_until(lambda: all(idle(p) for p in [shell, *descendants(shell)]), timeout=60), \
        {p: proc_state(p) for p in [shell, *descendants(shell)]}
    n = len(counter.read_text().split())
    assert all(idle(p) for p in [shell, *descendants(shell)])
    assert len(counter.read_text().split()) == n
    runtime.resume(future)
    assert future.result(timeout=60).returncode == 0
    assert len(counter.read_text().split()) == 400


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def test_pool_quota_limits_concurrency(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2), quotas={"sim": (1, None)})
    futures = [rt.submit(Function(_interval, args=(0.2,), pool="sim")) for _ in range(3)]
    spans = sorted(f.result(timeout=30) for f in futures)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert s2 >= e1  # never two at once in a pool capped at one core (one system-wide monotonic clock)


def _interval(d):
    t = time.monotonic()
    time.sleep(d)
    return (t, time.monotonic())


def test_two_thousand_mixed_tasks_each_complete_once(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    calls: dict[int, int] = {}
    futures = []
    for i in range(2000):
        if i % 10 == 0:
            f = rt.submit(Executable(["sh", "-c", f"echo {i}"]))
        elif i % 10 == 5:
            f = rt.submit(_boom, i)
        else:
            f = rt.submit(add, i, 1)
        f.add_done_callback(lambda fut, i=i: calls.__setitem__(i, calls.get(i, 0) + 1))
        futures.append(f)
    done, not_done = wait(futures, timeout=240)
    assert not not_done
    assert wait_until(lambda: len(calls) == 2000)
    assert set(calls.values()) == {1}
    for i, f in enumerate(futures):
        if i % 10 == 0:
            assert f.result().stdout.strip() == str(i)
        elif i % 10 == 5:
            assert isinstance(f.exception(), ValueError)
        else:
            assert f.result() == i + 1
    assert all(len(rt.task(f.task_id).attempts) == 1 for f in futures)


def test_shutdown_kill_cancels_running_tasks(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    running = rt.submit(Function(time.sleep, args=(60,)))
    queued = rt.submit(add, 1, 2)
    assert wait_until(lambda: running.state is TaskState.RUNNING)
    rt.shutdown(kill=True)
    assert running.cancelled() and queued.cancelled()


_CACHE: dict = {}


def _keep(array):
    _CACHE["kept"] = array  # a task that holds on to its argument after it returns
    return float(array.sum())


def _kept_sum():
    return float(_CACHE["kept"].sum())


def _array_sum(array):
    return float(array.sum())


def test_large_arguments_by_reference_and_safe_reuse(make_runtime):
    np = pytest.importorskip("numpy")
    from steerflow import serialize

    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))  # one worker: every task shares it
    first = np.full(2**20, 1.0)  # 8 MB: travels through shared memory
    assert rt.submit(_keep, first).result(timeout=30) == 2**20
    for value in (2.0, 3.0, 4.0):  # same-size payloads: files are reused when nobody maps them
        assert rt.submit(_array_sum, np.full(2**20, value)).result(timeout=30) == value * 2**20
    # the array the first task kept was never overwritten by a later payload
    assert rt.submit(_kept_sum).result(timeout=30) == 2**20
    assert serialize._recycled  # and unmapped files were kept for reuse


def test_tune_gc_only_raises_the_threshold():
    import gc

    from steerflow.runtime import tune_gc

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, saved[1], saved[2])
        tune_gc(None)
        assert gc.get_threshold()[0] == 700
        tune_gc(5000)
        assert gc.get_threshold()[0] == 5000
        tune_gc(1000)  # never lowers it
        assert gc.get_threshold()[0] == 5000
    finally:
        gc.set_threshold(*saved)
