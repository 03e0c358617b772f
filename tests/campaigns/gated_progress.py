"""A campaign whose tasks end when the test says so (a file per task), with the default live display
(on when stdout is a terminal): for the test that the run's display shows what `status` shows."""

import os
import sys
import time

import steerflow as sf


def gate(i, where):
    deadline = time.monotonic() + 120  # bounded: a test that dies leaves no task behind for long
    while not os.path.exists(os.path.join(where, f"go-{i}")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return i


directory, gates = sys.argv[1], sys.argv[2]
camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2))
for i in range(3):
    camp.submit(sf.Function(gate, args=(i, gates), name=f"gate-{i}"))
camp.run(stop=sf.stop.tasks(3))
