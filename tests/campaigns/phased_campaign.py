"""A script with two phases (two campaigns) under a directory it time-stamps itself, like the demo.

Its directory changes on every run, so only `steerflow resume`'s directory mapping can continue it.
argv: BASE MARKER RELEASE. Tasks append their name to MARKER; the long task waits for RELEASE to exist.
"""

import json
import os
import sys
import time

import steerflow as sf


def nap(name, marker, release=None):
    deadline = time.monotonic() + 60
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(marker, "a") as f:
        f.write(name + "\n")
    return name


base, marker, release = sys.argv[1:4]
root = f"{base}-{time.strftime('%H%M%S')}-{os.getpid()}"  # a new directory on every run
allocation = sf.Allocation.declare(nodes=1, cores=2)
first = sf.Campaign(os.path.join(root, "first"), allocation=allocation, progress=False)
first.submit(sf.Function(nap, args=("long", marker, release), name="long"))
for i in range(2):
    first.submit(sf.Function(nap, args=(f"short{i}", marker), name="short"))
summary = first.run()
with open(os.path.join(first.directory, "summary.json"), "w") as f:
    json.dump(summary, f)
second = sf.Campaign(os.path.join(root, "second"), allocation=allocation, progress=False)
second.submit(sf.Function(nap, args=("second", marker), name="second"))
second.run()
