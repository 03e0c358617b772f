"""The loop is woken (an eventfd write) only when it waits: posts to a loop at work cost no wake-up.

And no post is ever lost: tasks posted from many threads while the loop goes to sleep and wakes
all run.
"""

from __future__ import annotations

import threading

from steerflow import Allocation, Runtime
from steerflow.engines.local import LocalEngine

BOUND = 60.0


class CountingEngine(LocalEngine):
    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0

    def wakeup(self) -> None:
        self.wakeups += 1
        super().wakeup()


def test_posts_to_a_busy_loop_do_not_wake_it(tmp_path) -> None:
    engine = CountingEngine()
    with Runtime(Allocation.declare(nodes=1, cores=2), engine=engine, run_dir=tmp_path) as rt:
        assert rt.submit(abs, -1).result(timeout=BOUND) == 1
        held, gate = threading.Event(), threading.Event()

        def hold() -> None:
            held.set()
            gate.wait(BOUND)

        rt.call_soon(hold)
        try:
            assert held.wait(BOUND)  # the loop is at work (in `hold`), not waiting
            before = engine.wakeups
            futures = [rt.submit(abs, -i) for i in range(200)]
            assert engine.wakeups == before  # (one write per round of posts, before)
        finally:
            gate.set()
        assert [f.result(timeout=BOUND) for f in futures] == list(range(200))


def test_no_post_is_lost_from_many_threads(tmp_path) -> None:
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path) as rt:
        results: list[list[int]] = []

        def client(k: int) -> None:
            mine = []
            for i in range(150):
                f = rt.submit(abs, -i)
                if i % 10 == 0:  # now and then wait, so the loop goes to sleep and is woken again
                    f.result(timeout=BOUND)
                mine.append(f)
            results.append([f.result(timeout=BOUND) for f in mine])

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOUND)
        assert results == [list(range(150))] * 4
