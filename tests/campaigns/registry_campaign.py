"""Trains a small model six times, one after another, registering each version; the test kills and resumes it."""

import json
import os
import sys
import time

import numpy as np

import steerflow as sf
from steerflow import learn

directory = sys.argv[1]


def train(seed):
    time.sleep(0.3)
    rng = np.random.default_rng(seed)
    x = rng.random((30, 2))
    return learn.fit_model(learn.Forest(n_estimators=5, seed=seed), x, x.sum(axis=1))


camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), resume=True, progress=False)
registry = learn.ModelRegistry(camp)
made = []


@camp.on_result()
def register(result, ctx):
    version = registry.register("m", result.value, metrics={"seed": result.args[0]}, source=result.key)
    made.append(version.version)
    if result.args[0] < 5:
        ctx.submit(train, result.args[0] + 1)


@camp.on_end
def save(ctx):
    with open(os.path.join(directory, "made.json"), "w") as f:
        json.dump(made, f)


camp.submit(train, 0)
camp.run()
