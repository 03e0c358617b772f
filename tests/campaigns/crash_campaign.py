"""A small adaptive campaign that the crash test kills with SIGKILL and resumes, again and again.

Every task appends a line to a side-effect file named by its key, so the test can count how
often each task really ran. The agent's running sum is rebuilt on resume only by replay.
"""

import json
import os
import sys
import time

import steerflow as sf

directory, sidefx, initial, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def work(x, sidefx):
    with open(os.path.join(sidefx, os.environ["STEERFLOW_TASK_ID"]), "a") as f:
        f.write(f"{x}\n")
    time.sleep(0.01 + (x % 7) * 0.01)
    return 2 * x


camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), resume=True, progress=False)
state = {"sum": 0, "seen": 0}


@camp.on_result()
def react(result, ctx):
    state["seen"] += 1
    state["sum"] += result.value
    x = result.args[0]
    if x + initial < total:
        ctx.submit(work, x + initial, sidefx)


@camp.on_end
def report(ctx):
    with open(os.path.join(directory, "state.json.tmp"), "w") as f:
        json.dump(state, f)
    os.replace(os.path.join(directory, "state.json.tmp"), os.path.join(directory, "state.json"))


for x in range(initial):
    camp.submit(work, x, sidefx)
camp.run()
