"""Backfill into a reservation's shadow (EASY): what ends before a reserved wide request could start
still starts; what might not, or is unknown, waits; and the reserved request is never starved."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from steerflow.bench.floor import list_schedule_makespan, mixed_set, same_policy_makespan
from steerflow.resources import Allocation
from steerflow.scheduler import Request, Scheduler


class Clock:
    """An Estimator on a hand-moved clock: run times by request id, ends from the starts it was told."""

    def __init__(self, run_times: dict[int, float]) -> None:
        self.t = 0.0
        self.run_times = run_times
        self.started: dict[int, float] = {}

    def now(self) -> float:
        return self.t

    def run_time(self, req: Request) -> float:
        return self.run_times.get(req.id, math.inf)

    def end(self, req_id: int) -> float:
        return self.started[req_id] + self.run_times.get(req_id, math.inf) if req_id in self.started else math.inf


def place(s: Scheduler, clock: Clock) -> list[int]:
    ids = [p.request.id for p in s.schedule()]
    for i in ids:
        clock.started[i] = clock.t
    return ids


def reserved_node(run_times: dict[int, float]) -> tuple[Scheduler, Clock]:
    """1 node x 2 cores; task 1 (1 core, 10 s) runs; task 2 (2 cores) is blocked and reserves at once."""
    clock = Clock(run_times)
    s = Scheduler(Allocation.declare(nodes=1, cores=2), max_bypass=0, estimator=clock)
    s.submit(Request(1))
    assert place(s, clock) == [1]
    s.submit(Request(2, 1, 2))
    clock.t = 4.0
    return s, clock


def test_what_ends_before_the_shadow_starts_and_what_might_not_waits() -> None:
    s, clock = reserved_node({1: 10.0, 3: 7.0, 4: 5.0, 5: 6.5})
    s.submit(Request(3))  # 4 + 7 > 10: would delay task 2
    s.submit(Request(4))  # 4 + 5 <= 10: ends before task 2 could start anyway
    s.submit(Request(5))
    assert place(s, clock) == [4]  # one free core; task 5 (6 s left) would fit the time but not the room
    s.release(4)
    clock.t = 9.0
    assert place(s, clock) == []  # 1 s left: nothing fits in it
    s.release(1)
    clock.t = 10.0
    assert place(s, clock) == [2]  # the reserved task, on time


def test_unknown_run_times_and_overdue_ends_give_no_backfill() -> None:
    s, clock = reserved_node({1: 10.0})
    s.submit(Request(3))  # its run time is unknown
    assert place(s, clock) == []
    s2, clock2 = reserved_node({1: 3.0, 3: 0.5})  # task 1 was to end at 3 and still runs at 4: due any moment
    s2.submit(Request(3))
    assert place(s2, clock2) == []
    s3, clock3 = reserved_node({3: 0.5})  # the running task's end is unknown
    s3.submit(Request(3))
    assert place(s3, clock3) == []


def test_without_an_estimator_a_reservation_stops_the_pass() -> None:
    s = Scheduler(Allocation.declare(nodes=1, cores=2), max_bypass=0)
    s.submit(Request(1))
    s.schedule()
    s.submit(Request(2, 1, 2))
    s.submit(Request(3))
    assert s.schedule() == []


def test_a_short_request_behind_a_long_one_of_its_shape_goes_first() -> None:
    s, clock = reserved_node({1: 10.0, 3: 50.0, 4: 2.0})
    s.submit(Request(3))
    s.submit(Request(4))
    assert place(s, clock) == [4]
    assert s.n_waiting == 2  # task 3 stays at its queue's head, then runs after the reserved task
    s.release(4)
    s.release(1)
    clock.t = 10.0
    assert place(s, clock) == [2]
    s.release(2)
    assert place(s, clock) == [3]


def simulate(tasks: list[tuple[float, int, float, float]], cores: int, max_bypass: int,
             estimates: bool) -> dict[int, float]:
    """Start time of each task: (arrival, cores, run time, estimated run time), on one node."""
    clock = Clock({i: t[3] for i, t in enumerate(tasks)})
    s = Scheduler(Allocation.declare(nodes=1, cores=cores), max_bypass=max_bypass,
                  estimator=clock if estimates else None)
    arrivals = sorted((t[0], i) for i, t in enumerate(tasks))
    running: list[tuple[float, int]] = []
    starts: dict[int, float] = {}
    a = 0
    while a < len(arrivals) or running:
        clock.t = min(arrivals[a][0] if a < len(arrivals) else math.inf, running[0][0] if running else math.inf)
        while running and running[0][0] <= clock.t:
            s.release(heapq.heappop(running)[1])
        while a < len(arrivals) and arrivals[a][0] <= clock.t:
            i = arrivals[a][1]
            s.submit(Request(i, 1, tasks[i][1]))
            a += 1
        for i in place(s, clock):
            starts[i] = clock.t
            heapq.heappush(running, (clock.t + tasks[i][2], i))
    return starts


def stream(seed: int, error: float) -> list[tuple[float, int, float, float]]:
    """A 4-core task at t=1 under a stream of 1-core tasks arriving faster than 4 cores run them; estimates
    off by a factor of up to ``error`` either way."""
    rng = random.Random(seed)
    tasks = []
    for n in range(400):
        run = rng.uniform(0.2, 3.0)
        tasks.append((n * 0.1, 1, run, run * math.exp(rng.uniform(-math.log(error), math.log(error)))))
    run = rng.uniform(0.5, 2.0)
    tasks.append((1.0, 4, run, run))
    return tasks


@pytest.mark.parametrize("seed", range(12))
def test_exact_estimates_never_delay_the_reserved_task(seed: int) -> None:
    tasks = stream(seed, 1.0)
    wide = len(tasks) - 1
    easy = simulate(tasks, 4, 8, True)
    plain = simulate(tasks, 4, 8, False)
    assert easy[wide] <= plain[wide] + 1e-9
    # and the cores it would have idled did work: no fewer narrow tasks started before it
    assert sum(1 for i, t in easy.items() if t < easy[wide]) >= sum(1 for i, t in plain.items() if t < plain[wide])


def test_backfill_gives_back_the_idle_time_of_reservations() -> None:
    """Over the streams, the reservation without estimates idles cores; with exact ones most of that is back."""
    idle = {True: 0.0, False: 0.0}
    for seed in range(12):
        tasks = stream(seed, 1.0)
        work = sum(run * cores for _, cores, run, _ in tasks)
        for estimates in (True, False):
            starts = simulate(tasks, 4, 8, estimates)
            end = max(starts[i] + tasks[i][2] for i in starts)
            idle[estimates] += 4 * end - work
    assert idle[True] < 0.7 * idle[False]


@pytest.mark.parametrize("seed", range(12))
def test_wrong_estimates_delay_it_by_at_most_twice_their_largest_error(seed: int) -> None:
    tasks = stream(seed, 2.0)
    wide = len(tasks) - 1
    worst = max(abs(run - est) for _, _, run, est in tasks)
    easy = simulate(tasks, 4, 8, True)
    plain = simulate(tasks, 4, 8, False)
    assert wide in easy  # not starved by the stream
    assert easy[wide] <= plain[wide] + 2 * worst + 1e-9


def test_the_mixed_sets_policy_cost_at_zero_overhead_with_and_without_estimates() -> None:
    """On the benchmark's mixed set, reserving costs idle core time at zero overhead; with the run times
    known, backfill into the shadow gives most of it back (`same_policy_makespan`)."""
    tasks = [(c, d) for _, c, d in mixed_set()]
    ideal = list_schedule_makespan(tasks, 2)
    plain = same_policy_makespan(tasks, 2, 64)
    known = same_policy_makespan(tasks, 2, 64, [d for _, d in tasks])
    unknown = same_policy_makespan(tasks, 2, 64, [math.inf] * len(tasks))
    assert unknown == plain  # nothing known: exactly the reservation without backfill
    assert ideal <= known < plain
    assert (known - ideal) < 0.3 * (plain - ideal)


def test_on_several_nodes_the_reservation_drains_the_node_that_frees_first() -> None:
    """2 nodes x 2 cores: node A frees a core at 10, node B at 20; a 2-core request reserves. It drains A (the
    node estimated to have its room first); what comes after it runs on B meanwhile, and a 5 s task backfills A's
    free core (it ends at 9); an 8 s task would not have (it goes to B). The reserved request starts at 10."""
    clock = Clock({1: 10.0, 2: 30.0, 3: 20.0, 4: 40.0, 6: 8.0, 7: 5.0})
    s = Scheduler(Allocation.declare(nodes=2, cores=2), max_bypass=0, estimator=clock)
    for i in (1, 2, 3, 4):
        s.submit(Request(i))
    assert place(s, clock) == [1, 2, 3, 4]
    node = {i: r[0] for i, r in s._placed.items()}
    assert node[1] == node[2] != node[3] == node[4]  # (the test's premise)
    s.release(2)  # one core free on A (task 1's) ...
    s.release(4)  # ... and one on B (task 3's)
    s.submit(Request(5, 1, 2))
    s.submit(Request(6))
    s.submit(Request(7))
    clock.t = 4.0
    assert place(s, clock) == [6, 7]
    assert s.placed(6).slots[0].node == node[3] and s.placed(7).slots[0].node == node[1]
    clock.t = 10.0
    s.release(7)
    s.release(1)
    assert place(s, clock) == [5]
    assert s.placed(5).slots[0].node == node[1]


def test_on_several_nodes_without_estimates_only_one_node_waits() -> None:
    """4 nodes x 4 cores full of 1-core tasks; a 4-core request reserves (max_bypass=0): one node drains for it,
    and the 1-core tasks behind it keep the other three busy (before: nothing started anywhere)."""
    s = Scheduler(Allocation.declare(nodes=4, cores=4), max_bypass=0)
    for i in range(16):
        s.submit(Request(i))
    assert len(s.schedule()) == 16
    s.submit(Request(100, 1, 4))
    for i in range(101, 120):
        s.submit(Request(i))
    fenced = None
    for i in range(16):  # tasks end one by one
        s.release(i)
        ids = [p.request.id for p in s.schedule()]
        if 100 in ids:
            break
        for rid in ids:
            n = s.placed(rid).slots[0].node
            fenced = fenced if fenced is not None else {0, 1, 2, 3} - {n}
            assert s._classes[("default", 1, 4, 0, 0, None, 0)].fence[1] != n  # never on the drained node
    assert 100 in ids
    assert s.n_placed > 1  # the others kept running meanwhile


def test_no_shadow_is_walked_when_many_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above _SHADOW_WALK placed requests a reservation holds as without an estimator: the walk over what runs,
    one per pass, would cost more than backfill gains (at 10,000 nodes it made placements ~70x slower)."""
    from steerflow import scheduler_shadow

    n = scheduler_shadow._SHADOW_WALK + 2

    def reserved_with_a_short_one_waiting() -> list[int]:
        clock = Clock({**{i: 10.0 for i in range(n)}, n + 1: 5.0})
        s = Scheduler(Allocation.declare(nodes=1, cores=n + 1), max_bypass=0, estimator=clock)
        for i in range(n):
            s.submit(Request(i))
        assert len(place(s, clock)) == n
        s.submit(Request(n, 1, 2))  # reserves: one core is free, it needs two
        s.submit(Request(n + 1))  # ends at 6, before the others (10)
        clock.t = 1.0
        return place(s, clock)

    assert reserved_with_a_short_one_waiting() == []
    monkeypatch.setattr(scheduler_shadow, "_SHADOW_WALK", 10**9)
    assert reserved_with_a_short_one_waiting() != []  # (with the walk, it would start)
