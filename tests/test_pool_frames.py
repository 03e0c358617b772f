"""The driver reads a worker's replies with one read per wake-up (`engines.pool.read_frames`).

Frames waiting together come out together and in order; a frame cut by the read's end (a reply
larger than the pipe, or a header split by the read size) is read on whole; EOF, even mid-frame,
says the pipe is closed. Then, on real workers: replies larger than a pipe, and bursts of partial
results that arrive several per read.
"""

from __future__ import annotations

import os
import pickle
import threading

from steerflow import Allocation, Runtime
from steerflow.engines.pool import read_frames
from steerflow.engines.worker import _HEADER

BOUND = 60.0


def frame(body: bytes) -> bytes:
    return _HEADER.pack(len(body)) + body


def pipe_with(*chunks: bytes, close: bool = False) -> tuple[int, int]:
    r, w = os.pipe()
    for chunk in chunks:
        os.write(w, chunk)
    if close:
        os.close(w)
        w = -1
    return r, w


def close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def test_one_frame() -> None:
    r, w = pipe_with(frame(b"hello"))
    frames, open_ = read_frames(r)
    assert [bytes(f) for f in frames] == [b"hello"] and open_
    close(r, w)


def test_frames_waiting_together_come_out_in_order() -> None:
    r, w = pipe_with(frame(b"a") + frame(b"") + frame(b"ccc"), frame(b"dd"))
    frames, open_ = read_frames(r)
    assert [bytes(f) for f in frames] == [b"a", b"", b"ccc", b"dd"] and open_
    close(r, w)


def test_a_header_split_by_the_read_is_read_on() -> None:
    # a read of 10 bytes takes frame A whole (8 bytes) and 2 of B's 4 header bytes
    r, w = pipe_with(frame(b"xxxx") + frame(b"yyyyy"))
    frames, open_ = read_frames(r, size=10)
    assert [bytes(f) for f in frames] == [b"xxxx", b"yyyyy"] and open_
    close(r, w)


def test_a_body_cut_by_the_read_is_read_on() -> None:
    r, w = pipe_with(frame(b"a" * 50) + frame(b"b" * 3))
    frames, open_ = read_frames(r, size=20)
    assert [bytes(f) for f in frames] == [b"a" * 50] and open_
    frames, open_ = read_frames(r, size=20)  # what came after it stays in the pipe for the next wake-up
    assert [bytes(f) for f in frames] == [b"b" * 3] and open_
    close(r, w)


def test_a_frame_larger_than_the_pipe_comes_out_whole() -> None:
    r, w = os.pipe()
    big = os.urandom(300_000)
    writer = threading.Thread(target=lambda: os.write(w, frame(big) + frame(b"next")) and None, daemon=True)
    writer.start()
    got: list[bytes] = []
    while len(got) < 2:
        frames, open_ = read_frames(r)
        assert open_
        got.extend(bytes(f) for f in frames)
    writer.join(BOUND)
    assert got == [big, b"next"]
    close(r, w)


def test_end_of_file_closes_even_after_whole_frames_or_mid_frame() -> None:
    r, _ = pipe_with(frame(b"last"), close=True)
    frames, open_ = read_frames(r)
    assert [bytes(f) for f in frames] == [b"last"] and open_  # the frame first ...
    assert read_frames(r) == ([], False)  # ... then the end
    close(r)
    r, _ = pipe_with(frame(b"whole") + _HEADER.pack(100) + b"only part", close=True)  # the writer died mid-frame
    frames, open_ = read_frames(r)
    assert [bytes(f) for f in frames] == [b"whole"] and not open_
    close(r)


def raise_big(n: int) -> None:
    raise ValueError("x" * n)


def burst(n: int) -> int:
    from steerflow import partial

    for i in range(n):
        partial.emit(i)
    return n


def test_real_workers_large_replies_and_bursts_of_partials(tmp_path) -> None:
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path) as rt:
        seen: dict[int, list] = {}
        rt.add_partial_listener(lambda record, attempt, value: seen.setdefault(record.id, []).append(value))
        big = rt.submit(raise_big, 200_000)  # its reply (exception + traceback) is larger than a pipe
        bursts = [rt.submit(burst, 300) for _ in range(4)]  # many frames per read
        error = big.exception(timeout=BOUND)
        assert isinstance(error, ValueError) and len(str(error)) == 200_000
        assert [f.result(timeout=BOUND) for f in bursts] == [300] * 4
        assert all(seen[f.task_id] == list(range(300)) for f in bursts)
        assert rt.submit(pickle.dumps, 1).result(timeout=BOUND) == pickle.dumps(1)  # the workers serve on


def test_the_worker_reads_messages_whole_one_after_another() -> None:
    from steerflow.engines.worker import Frames

    big = os.urandom(200_000)
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: os.write(w, frame(b"a") + frame(b"bb") + frame(big) + frame(b"c"))
                              and os.close(w), daemon=True)
    writer.start()
    frames = Frames(r)
    assert [bytes(frames.next()) for _ in range(4)] == [b"a", b"bb", big, b"c"]
    writer.join(BOUND)
    try:
        frames.next()
    except EOFError:
        pass
    else:
        raise AssertionError("no EOFError at the end of the pipe")
    os.close(r)
    r, w = pipe_with(frame(b"xy")[:3])  # a header cut short by the writer's end
    os.close(w)
    try:
        Frames(r).next()
    except EOFError:
        pass
    else:
        raise AssertionError("no EOFError for a cut header")
    os.close(r)


def task_env() -> tuple[str, str, str]:
    return os.environ["STEERFLOW_TASK_ID"], os.environ["STEERFLOW_CHECKPOINT"], os.environ["OMP_NUM_THREADS"]


def test_each_task_on_a_worker_sees_its_own_environment(tmp_path) -> None:
    # the worker sets only the variables that changed since its last task: each task still sees its own
    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
        futures = [rt.submit(task_env) for _ in range(5)]
        for f in futures:
            task_id, checkpoint, threads = f.result(timeout=BOUND)
            assert task_id == str(f.task_id) and checkpoint.endswith(f"{f.task_id}.ckpt") and threads == "1"


def bound_env(cores: int) -> tuple[str, str, list[int], str, int]:
    return (os.environ["STEERFLOW_TASK_ID"], os.environ["STEERFLOW_CPUS"], sorted(os.sched_getaffinity(0)),
            os.environ["OMP_NUM_THREADS"], cores)


def test_a_worker_moved_to_other_cores_gets_their_environment(tmp_path) -> None:
    # a message carries the binding's variables only when the worker was last given another binding's
    from steerflow import Function

    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path) as rt:
        futures = []
        for i in range(60):
            cores = 2 if i % 7 == 3 else 1
            futures.append(rt.submit(Function(bound_env, (cores,), cores=cores)))
        for f in futures:
            task_id, cpus, affinity, threads, cores = f.result(timeout=BOUND)
            assert task_id == str(f.task_id)
            assert sorted(int(c) for c in cpus.split(",")) == affinity  # its variables match where it runs
            assert threads == str(cores)
