"""A campaign with a 1 ms timer agent, killed with SIGKILL by a test and resumed: each delivered result logs
how many ticks came before it, so the test can check that replay keeps the ticks' order among the results."""

import os
import sys
import time

import steerflow as sf

directory, log_path = sys.argv[1], sys.argv[2]


def nap(i):
    time.sleep(0.05)
    return i


camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), resume=True, progress=False)
ticks = [0]


@camp.on_timer(0.001)
def tick(ctx):
    ticks[0] += 1


@camp.on_result()
def log(result, ctx):
    with open(log_path, "a") as f:
        f.write(f"{os.getpid()} {result.key} {ticks[0]} {int(result.replayed)}\n")
    if result.value < 60:
        ctx.submit(nap, result.value + 1)


camp.submit(nap, 0)
camp.run()
