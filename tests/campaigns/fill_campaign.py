"""A campaign whose 40 results (150 KB each, incompressible) overflow a small disk: for the disk-full tests."""

import random
import sys

import steerflow as sf


def blob(i):
    return random.Random(i).randbytes(150_000)


if __name__ == "__main__":
    directory = sys.argv[1]
    camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    for i in range(40):
        camp.submit(blob, i)
    summary = camp.run()
    print(f"done: {summary['states'].get('done', 0)}")
