"""A tour of steerflow in one runnable file: the runtime core, then a campaign that learns and steers.

    .venv/bin/steerflow run examples/00-tour/tour.py            # a few seconds on a laptop

Part 1 uses the runtime alone: functions in warm worker processes, futures as arguments, a program
as a subprocess. Part 2 is a campaign: simulations in one pool, a model trained in another every
batch of 8 results, and an agent that uses the model to choose the next simulations, until a task budget or
a wall-clock limit ends it. Everything of part 2 is journaled in runs/tour-*: kill it (Ctrl-C) and
`steerflow resume DIR` continues it.
"""

import os
import sys
import time

import numpy as np

import steerflow as sf


def simulate(x):
    """The expensive simulation (here: a cheap function whose minimum, at x = 3.7, we want)."""
    time.sleep(0.05)
    return (x - 3.7) ** 2 + 0.1 * np.sin(5 * x)


def train(data):
    """The model: a quadratic fitted to every (x, energy) so far; it predicts where the minimum is."""
    xs, ys = np.array(data).T
    a, b, _ = np.polyfit(xs, ys, 2)
    return -b / (2 * a) if a > 0 else float(xs[np.argmin(ys)])


# ---- part 1: the runtime core: futures in, exact placements out -------------------------------------
with sf.Runtime(sf.Allocation.detect()) as rt:           # or Allocation.declare(nodes=2, cores=4, gpus=2)
    f = rt.submit(pow, 2, 10)                             # a function in a warm worker process
    g = rt.submit(sf.Function(sum, args=([f, 1],), cores=1, timeout=60, retries=1))  # futures as arguments
    prog = rt.submit(sf.Executable([sys.executable, "-c", "print('a program ran')"]))  # ranks=N: through mpirun
    print("part 1:", g.result(), prog.result().stdout.strip())

# ---- part 2: a campaign: tasks + agents + a journal, in one directory --------------------------------
cores = sf.Allocation.detect().total_cores
camp = sf.Campaign(f"runs/tour-{time.strftime('%Y%m%d-%H%M%S')}",
                   pools={"simulate": {"cores": max(1, cores - 1)}, "train": {"cores": 1}})
BATCH = 8
data = []  # (x, energy) of every simulation, in the order results arrived
seen = {"simulate": 0}


@camp.on_result(pool="simulate")                          # agents run in one steering thread: no locks
def learn(result, ctx):
    seen["simulate"] += 1
    if result.ok:
        data.append((result.args[0], result.value))
    if seen["simulate"] % BATCH == 0:                     # a batch is in: retrain (long work is a task)
        ctx.submit(sf.Function(train, args=(list(data),), pool="train"))


@camp.on_result(pool="train")
def steer(result, ctx):
    best = result.value                                   # the model's guess of the minimum
    for i in range(BATCH):                                # the next batch: simulate around it
        ctx.submit(sf.Function(simulate, args=(best + (i - BATCH / 2) / BATCH,), pool="simulate"))


for x in np.linspace(0, 10, BATCH):                       # a first, coarse look
    camp.submit(sf.Function(simulate, args=(float(x),), pool="simulate"))
summary = camp.run(stop=sf.stop.tasks(40) | sf.stop.wall("2m"))

best_x, best_e = min(data, key=lambda d: d[1])
print(f"part 2: {summary['results_seen']} results in {summary['elapsed_s']:.1f} s ({summary['stop_reason']}); "
      f"lowest energy {best_e:.3f} at x = {best_x:.2f}; journal in {os.path.relpath(camp.directory)}")
