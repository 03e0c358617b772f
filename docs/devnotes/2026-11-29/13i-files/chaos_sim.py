"""How much one list's efficiency swings from small per-task jitter alone (the schedule's chaos), by list length."""
import sys, statistics
import numpy as np
from steerflow.bench import floor
rng = np.random.default_rng(1)
for n in (120, 240, 480, 720):
    for model in ("sf", "pool"):
        sds = []; means = []
        for seed in range(7, 13):
            tasks = floor.mixed_set(n, seed=seed)
            shape = [(c, d) for _, c, d in tasks] if model == "sf" else [(1, d) for _, _, d in tasks]
            ideal = floor.list_schedule_makespan(shape, 2)
            effs = []
            for _ in range(40):
                jit = [(c, d + 0.0003 + rng.exponential(0.0003)) for c, d in shape]  # ~0.6 ms per task, jittered
                effs.append(100 * ideal / floor.list_schedule_makespan(jit, 2))
            sds.append(statistics.pstdev(effs)); means.append(statistics.mean(effs))
        print(n, model, "sd of one list's efficiency (median over lists) %.3f" % statistics.median(sds),
              "mean eff %.2f" % statistics.mean(means), flush=True)
