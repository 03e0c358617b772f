"""A campaign whose tasks end when the test says so (a file per task), for the live dashboard tests."""

import os
import sys
import time

import steerflow as sf


def gate(i, where):
    deadline = time.monotonic() + 120  # bounded: a test that dies leaves no task behind for long
    while not os.path.exists(os.path.join(where, f"go-{i}")) and time.monotonic() < deadline:
        time.sleep(0.02)
    if i == 1:
        raise RuntimeError("gate 1 fails on purpose: the dashboard lists it")
    return i


directory, gates = sys.argv[1], sys.argv[2]
camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
for i in range(4):
    camp.submit(sf.Function(gate, args=(i, gates), pool="sim" if i % 2 else "ana", name=f"gate-{i}"))
camp.run()
