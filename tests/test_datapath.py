"""Data between tasks: large bytes through shared memory, results to dependents by reference, files freed."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from steerflow import Function, TaskState, serialize

from .conftest import wait_until

MB = 1 << 20


def make_bytes(size: int, fill: bytes = b"x") -> bytes:
    return fill * size


def make_array(n: int, delay: float = 0.0) -> np.ndarray:
    time.sleep(delay)  # long enough for its dependents to be queued before it ends
    return np.arange(n, dtype=np.float64)


def backing_files(*values: object) -> list[str]:
    """Which shared-memory files this worker maps for its arguments right now."""
    return sorted(serialize.mapped_paths())


def total_len(*parts: bytes) -> int:
    assert all(type(p) is bytes for p in parts)
    return sum(len(p) for p in parts)


def fail_first_time(marker: str, data: bytes) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return len(data)


@pytest.mark.parametrize("value", [b"a" * MB, bytearray(b"b" * MB), (1, b"c" * MB), ((b"d" * MB,), {}),
                                   {"k": [b"e" * MB, 2]}])
def test_large_bytes_go_through_shared_memory_not_the_pickle(value):
    data = serialize.dumps(value)
    assert serialize.in_shared_memory(data) and len(data) < 4096
    assert serialize.loads(data) == value


def test_small_bytes_stay_in_the_pickle():
    data = serialize.dumps((b"x" * 1000, {}))
    assert not serialize.in_shared_memory(data) and serialize.loads(data) == (b"x" * 1000, {})


def result_files(runtime) -> dict[int, list[str]]:
    """Task id -> the shared-memory files its result came back in (seen by a listener as it finishes)."""
    blobs: dict[int, list[str]] = {}

    def listen(record, state):
        if state is TaskState.DONE and record.result_blob is not None:
            blobs[record.id] = serialize.shm_paths(record.result_blob)

    runtime.add_listener(listen)
    return blobs


def test_a_result_goes_to_its_dependents_by_reference(runtime):
    blobs = result_files(runtime)
    source = runtime.submit(make_array, MB // 8, 0.5)  # 1 MB of float64
    # the dependents map the very file the source's worker wrote: nothing went through the driver
    files = runtime.submit(backing_files, source).result(timeout=60)
    (path,) = blobs[source.task_id]
    assert path in files
    assert source.result().sum() == np.arange(MB // 8, dtype=np.float64).sum()


def test_fan_out_and_fan_in_by_reference_leave_no_file_behind(runtime):
    blobs = result_files(runtime)
    source = runtime.submit(make_bytes, MB)
    middle = [runtime.submit(make_bytes, MB, bytes([65 + i % 26])) for i in range(6)]
    readers = [runtime.submit(total_len, source, m) for m in middle]
    sink = runtime.submit(total_len, *middle)
    assert [r.result(timeout=120) for r in readers] == [2 * MB] * 6
    assert sink.result(timeout=120) == 6 * MB
    paths = [blobs[f.task_id][0] for f in (source, *middle)]
    # every result's last reader has finished: its file is gone from /dev/shm ...
    assert wait_until(lambda: not any(os.path.exists(p) for p in paths))
    # ... and the driver can still load each value (it kept a mapping, not a copy)
    assert source.result() == b"x" * MB and middle[3].result() == b"D" * MB


def test_a_retried_dependent_reads_its_input_again(runtime, tmp_path):
    source = runtime.submit(make_bytes, MB)
    dependent = runtime.submit(Function(fail_first_time, args=(str(tmp_path / "m"), source), retries=1))
    assert dependent.result(timeout=60) == MB
    assert len(runtime.task(dependent.task_id).attempts) == 2


def test_a_dependent_submitted_after_its_input_settled_gets_the_value(runtime):
    source = runtime.submit(make_bytes, MB, b"q")
    assert source.result(timeout=60) == b"q" * MB
    assert runtime.submit(total_len, source, source).result(timeout=60) == 2 * MB


def test_results_resolved_in_the_driver_and_passed_back(runtime):
    values = [runtime.submit(make_bytes, MB, bytes([97 + i])).result(timeout=60) for i in range(3)]
    assert runtime.submit(total_len, *values).result(timeout=60) == 3 * MB


def test_a_task_keeping_its_argument_is_reported_and_its_file_not_reused(runtime):
    array = np.ones(MB // 8)
    kept = runtime.submit(_keep, array)
    assert kept.result(timeout=60) == MB // 8
    # later payloads must not be written into the file that worker still maps
    for _ in range(5):
        assert runtime.submit(_check_kept).result(timeout=60) in (None, float(MB // 8))
        runtime.submit(_keep_sum, np.zeros(MB // 8)).result(timeout=60)


_KEPT: dict = {}


def _keep(array: np.ndarray) -> int:
    _KEPT["a"] = array
    return int(array.sum())


def _keep_sum(array: np.ndarray) -> float:
    return float(array.sum())


def _check_kept() -> float | None:
    kept = _KEPT.get("a")
    return None if kept is None else float(kept.sum())


def test_results_streamed_through_map_are_freed_as_they_are_consumed(make_runtime):
    """Driver memory and /dev/shm stay flat while 1 MB results stream by: nothing keeps a consumed value."""
    from steerflow import Allocation

    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    blobs = result_files(rt)
    before = _rss_mb()
    total = 0
    for value in rt.map(make_bytes, [MB] * 150):
        total += len(value)
        del value
    assert total == 150 * MB
    assert wait_until(lambda: not any(os.path.exists(p) for paths in blobs.values() for p in paths))
    import gc

    gc.collect()
    assert _rss_mb() - before < 60, "the driver kept the streamed results"
    assert all(r.future is None for r in rt.tasks())  # finished records do not hold futures (or values)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20



def pid_and_bytes(size: int) -> tuple[int, bytes]:
    return os.getpid(), b"s" * size


def second_len(pair: tuple[int, bytes]) -> int:
    return len(pair[1])


def wait_for_file(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_result_outlives_the_worker_that_made_it(runtime, tmp_path):
    """Its worker dies (a crash, or a kill with another task) while a dependent still waits for the result:
    the files are named after the driver, so any runtime's clean-up of dead processes' files keeps them."""
    import signal

    gate = str(tmp_path / "gate")
    source = runtime.submit(pid_and_bytes, MB)
    held = runtime.submit(Function(wait_for_file, args=(gate,), after=[source]))
    dependent = runtime.submit(Function(second_len, args=(source,), after=[held]))
    pid = source.result(timeout=60)[0]
    os.kill(pid, signal.SIGKILL)  # the worker that wrote the result dies
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read()
                      .rsplit(")", 1)[1].split()[0] == "Z", timeout=30)
    serialize.cleanup_stale()  # what any runtime starting on this machine does
    open(gate, "w").close()
    assert dependent.result(timeout=60) == MB
