"""Active learning for the QM9 molecule with the lowest ionisation potential (GFN2-xTB).

All three ML couplings in one small campaign:
- simulations (xTB vertical IP, pool `simulate`) run on every free core;
- ML-about-HPC: a random forest retrains beside them (pool `train`) every `--batch` results, and
  scores the remaining candidates (pool `infer`);
- ML-out-HPC: the agent reorders the queue of candidates by the forest's lower confidence bound,
  so the next free core simulates the most promising molecule.
Then the plain method, random search, runs until it matches the best molecule found, and the
script prints the effective performance (simulations random search needed / ours) and writes
a report (JSON + learning-curve plot) into the campaign directory.

Run: steerflow run examples/01-active-learning-ip/campaign.py   (add --help for the knobs)
Kill it at any moment and run it again with --resume: it continues from its journal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import steerflow as sf  # noqa: E402
from science import fingerprints, fit_forest, load_qm9, predict_with_std, vertical_ip  # noqa: E402


def score(model, x: np.ndarray, kappa: float) -> np.ndarray:
    """Lower confidence bound: promising = low predicted IP or high uncertainty."""
    mean, std = predict_with_std(model, x)
    return mean - kappa * std


class ActiveLearner(sf.Agent):
    def __init__(self, mols, features, budget, batch, kappa, seed):
        self.mols, self.x, self.budget, self.batch, self.kappa = mols, features, budget, batch, kappa
        self.queue = list(range(len(mols)))
        random.Random(seed).shuffle(self.queue)  # before the first model: random order
        self.submitted: set[int] = set()
        self.done: list[tuple[int, float]] = []
        self.trained_at = 0

    def _fill(self, ctx):
        """Keep every simulate slot busy with the best-ranked candidates not yet run."""
        for _ in range(max(1, ctx.free_slots("simulate"))):
            if len(self.submitted) >= self.budget:
                return
            while self.queue and self.queue[0] in self.submitted:
                self.queue.pop(0)
            if not self.queue:
                return
            i = self.queue.pop(0)
            self.submitted.add(i)
            ctx.submit(sf.Function(vertical_ip, args=(self.mols[i]["elements"], self.mols[i]["xyz"]),
                                   pool="simulate", timeout=300, retries=1, tags=(str(i),)))

    @sf.on_start
    def begin(self, ctx):
        self._fill(ctx)

    @sf.on_result(pool="simulate")
    def simulated(self, result, ctx):
        if result.ok:
            self.done.append((int(result.tags[0]), result.value))
        if len(self.done) - self.trained_at >= self.batch and len(self.done) < self.budget:
            self.trained_at = len(self.done)
            idx = np.array([i for i, _ in self.done])
            ctx.submit(sf.Function(fit_forest, args=(self.x[idx], np.array([v for _, v in self.done])),
                                   pool="train"))
        self._fill(ctx)

    @sf.on_result(pool="train")
    def trained(self, result, ctx):
        remaining = np.array([i for i in range(len(self.mols)) if i not in self.submitted])
        if result.ok and len(remaining):
            ctx.submit(sf.Function(score, args=(result.value, self.x[remaining], self.kappa), pool="infer",
                                   tags=("rank",)), )
            self._remaining = remaining

    @sf.on_result(pool="infer")
    def ranked(self, result, ctx):
        if result.ok:
            order = self._remaining[np.argsort(result.value)]
            self.queue = [int(i) for i in order if int(i) not in self.submitted]


class RandomSearch(sf.Agent):
    """The plain method: simulate in random order until a molecule as good as `target` turns up."""

    def __init__(self, mols, target, seed, width):
        self.mols, self.target, self.width = mols, target, width
        self.order = list(range(len(mols)))
        random.Random(seed + 1).shuffle(self.order)
        self.values: dict[int, float] = {}
        self.next = 0
        self.found_at: int | None = None

    def _fill(self, ctx):
        while self.next < len(self.order) and self.next - len(self.values) < self.width and self.found_at is None:
            i = self.order[self.next]
            ctx.submit(sf.Function(vertical_ip, args=(self.mols[i]["elements"], self.mols[i]["xyz"]),
                                   pool="simulate", timeout=300, retries=1, tags=(str(self.next),)))
            self.next += 1

    @sf.on_start
    def begin(self, ctx):
        self._fill(ctx)

    @sf.on_result(pool="simulate")
    def simulated(self, result, ctx):
        self.values[int(result.tags[0])] = result.value if result.ok else float("inf")
        position = 0
        while position in self.values:  # the first hit among a completed prefix of the random order
            if self.values[position] <= self.target + 1e-9:
                self.found_at = position + 1
                ctx.stop("random search matched the active learner")
                return
            position += 1
        self._fill(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="runs/al-ip", help="campaign directory (default: runs/al-ip)")
    parser.add_argument("--candidates", type=int, default=400, help="QM9 molecules to choose from")
    parser.add_argument("--budget", type=int, default=48, help="xTB simulations the active learner may run")
    parser.add_argument("--batch", type=int, default=8, help="retrain after this many new results")
    parser.add_argument("--kappa", type=float, default=1.0, help="exploration weight of the confidence bound")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its journal")
    args = parser.parse_args()

    mols = load_qm9(args.candidates, seed=args.seed)
    features = fingerprints([m["smiles"] for m in mols])
    cores = sf.Allocation.detect().total_cores
    pools = {"simulate": {"cores": cores}, "train": {"cores": 1}, "infer": {"cores": 1}}

    camp = sf.Campaign(os.path.join(args.dir, "active"), pools=pools, resume=args.resume or None)
    learner = camp.add_agent(ActiveLearner(mols, features, args.budget, args.batch, args.kappa, args.seed))
    summary = camp.run()
    best_i, best = min(learner.done, key=lambda t: t[1])
    reached = 1 + next(k for k, (_, v) in enumerate(learner.done) if v <= best + 1e-9)

    base = sf.Campaign(os.path.join(args.dir, "random"), pools={"simulate": {"cores": cores}},
                       resume=args.resume or None)
    search = base.add_agent(RandomSearch(mols, best, args.seed, width=cores))
    base.run()
    needed = search.found_at or len(mols)
    random_curve = [search.values.get(k, float("inf")) for k in range(needed)]

    report = {
        "molecule": mols[best_i]["smiles"], "ip_ev": best, "candidates": len(mols),
        "active_simulations_to_best": reached, "active_simulations": len(learner.done),
        "random_simulations_to_match": needed,
        "effective_performance": needed / reached,
        "active_elapsed_s": summary["elapsed_s"],
    }
    with open(os.path.join(args.dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    _plot(args.dir, [v for _, v in learner.done], random_curve)
    print(f"\nLowest xTB vertical IP found: {best:.3f} eV ({mols[best_i]['smiles']}) "
          f"after {reached} of {len(learner.done)} simulations.")
    print(f"Random search needed {needed} simulations to match it: effective performance "
          f"{needed / reached:.1f}x.  Report: {os.path.join(args.dir, 'report.json')}, learning-curves.png")


def _plot(directory: str, active: list[float], plain: list[float]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for values, label in ((active, "active learning (steerflow)"), (plain, "random search")):
        ax.plot(range(1, len(values) + 1), np.minimum.accumulate(values), label=label)
    ax.set_xlabel("xTB simulations")
    ax.set_ylabel("lowest vertical IP found (eV)")
    ax.legend()
    ax.set_title("Learning curve")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "learning-curves.png"), dpi=120)


if __name__ == "__main__":
    main()
