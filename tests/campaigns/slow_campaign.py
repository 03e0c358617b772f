"""A campaign with long tasks, for the command-line tests: status, cancel and resume from outside."""

import sys
import time

import steerflow as sf


def nap(seconds, marker):
    time.sleep(seconds)
    with open(marker, "a") as f:
        f.write(f"{seconds}\n")
    return seconds


directory, marker = sys.argv[1], sys.argv[2]
camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2),
                   pools={"simulate": {"cores": 2}}, progress=False)
camp.submit(sf.Function(nap, args=(60, marker), pool="simulate", name="long-nap"))
camp.submit(sf.Function(nap, args=(0.5, marker), pool="simulate", name="short-nap"))
camp.submit(sf.Function(nap, args=(0.5, marker), pool="simulate", name="short-nap", after=[]))
camp.run()
