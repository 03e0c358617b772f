"""A small adaptive campaign whose journal, as steerflow wrote it before journal schema 2, is kept in
tests/data/journal-v1/ (`test_journal_schema.py` resumes it with today's steerflow).

It was made with the steerflow of main 5f8ea9d (schema 1), stopped after 14 results:
    PYTHONPATH=<that steerflow> python tests/campaigns/schema_campaign.py DIR SIDEFX 14
Each run of a task appends a line to SIDEFX/X (X: its argument), so a test counts how often each ran.
"""

import json
import os
import sys
import time

import steerflow as sf

directory, sidefx, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3])


def work(x, sidefx):
    with open(os.path.join(sidefx, str(x)), "a") as f:
        f.write("ran\n")
    time.sleep(0.002 * (x % 5))
    if x == 7:
        raise ValueError("seven fails, on purpose")
    return x * x


def add(a, b):
    return a + b


camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), resume=True, progress=False)
state = {"seen": []}


@camp.on_result()
def react(result, ctx):
    x = result.args[0] if result.args and isinstance(result.args[0], int) else None  # (add's are futures)
    state["seen"].append([result.key, x, result.ok, result.replayed])
    if result.ok and x is not None and x < 24 and x % 2 == 0:
        ctx.submit(work, x + 100, sidefx)  # the agent's own work: the graph grows as results come


@camp.on_end
def report(ctx):
    with open(os.path.join(directory, "state.json"), "w") as f:
        json.dump(state, f)


first = [camp.submit(work, x, sidefx) for x in range(24)]
camp.submit(add, first[0], first[1])  # a dependency on two results
camp.run(stop=sf.stop.tasks(stop_after) if stop_after else None)
