"""A campaign whose one task streams partial results, then waits for a file; the test kills it and resumes."""

import json
import os
import sys
import time

import steerflow as sf
from steerflow import partial

directory, acks = sys.argv[1], sys.argv[2]


def stream(acks):
    for i in range(5):
        partial.emit(i)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(acks, "go")) and time.monotonic() < deadline:
        time.sleep(0.02)
    partial.emit("end")
    return "finished"


camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), resume=True, progress=False)
seen = []


@camp.on_partial()
def got(p, ctx):
    seen.append((p.index, p.value, p.replayed))


@camp.on_end
def save(ctx):
    with open(os.path.join(directory, "seen.json"), "w") as f:
        json.dump(seen, f)


camp.submit(stream, acks)
camp.run()
