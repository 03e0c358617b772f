"""Active learning for the QM9 molecule with the lowest ionisation potential (GFN2-xTB).

All three ML couplings in one small campaign:
- simulations (xTB vertical IP, pool `simulate`) run a batch at a time on every free core;
- ML-about-HPC: a random forest retrains on every result so far (pool `train`) and scores the
  remaining candidates (pool `infer`), each a task of its own;
- ML-out-HPC: the agent picks the next batch by the forest's lower confidence bound.
Then the plain method, random search, runs until it matches the best molecule found, and the
script prints the effective performance (simulations random search needed / ours) and writes
a report (JSON + learning-curve plot) into the campaign directory.

Run: steerflow run examples/01-active-learning-ip/campaign.py   (add --help for the knobs)
Kill it at any moment and run it again with --resume --dir DIR: it continues from its journal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import steerflow as sf  # noqa: E402
from science import fingerprints, fit_forest, load_qm9, predict_with_std, vertical_ip  # noqa: E402


def score(model, x: np.ndarray, kappa: float) -> np.ndarray:
    """Lower confidence bound: promising = low predicted IP or high uncertainty."""
    mean, std = predict_with_std(model, x)
    return mean - kappa * std


class ActiveLearner(sf.Agent):
    """Batch active learning: simulate a batch, retrain beside the last ones, rank, simulate the next batch.

    The batch after the first is chosen by the model trained on every result so far; the
    first batch is random.
    """

    def __init__(self, mols, features, budget, batch, kappa, seed):
        self.mols, self.x, self.budget, self.batch, self.kappa = mols, features, budget, batch, kappa
        self.queue = list(range(len(mols)))
        random.Random(seed).shuffle(self.queue)  # before the first model: random order
        self.submitted: set[int] = set()
        self.done: list[tuple[int, float]] = []
        self.in_flight = 0

    def _submit_batch(self, ctx):
        for i in [i for i in self.queue if i not in self.submitted][:min(self.batch, self.budget - len(self.submitted))]:
            self.submitted.add(i)
            self.in_flight += 1
            ctx.submit(sf.Function(vertical_ip, args=(self.mols[i]["elements"], self.mols[i]["xyz"]),
                                   pool="simulate", timeout=300, retries=1, tags=(str(i),)))

    @sf.on_start
    def begin(self, ctx):
        self._submit_batch(ctx)

    @sf.on_result(pool="simulate")
    def simulated(self, result, ctx):
        self.in_flight -= 1
        if result.ok:
            self.done.append((int(result.tags[0]), result.value))
        if self.in_flight == 0 and len(self.submitted) < self.budget:  # the batch is in: retrain (a task)
            idx = np.array([i for i, _ in self.done])
            ctx.submit(sf.Function(fit_forest, args=(self.x[idx], np.array([v for _, v in self.done])),
                                   pool="train"))

    @sf.on_result(pool="train")
    def trained(self, result, ctx):
        remaining = np.array([i for i in range(len(self.mols)) if i not in self.submitted])
        if result.ok and len(remaining):  # score the candidates left (inference is a task too)
            self._remaining = remaining
            ctx.submit(sf.Function(score, args=(result.value, self.x[remaining], self.kappa), pool="infer"))

    @sf.on_result(pool="infer")
    def ranked(self, result, ctx):
        if result.ok:
            self.queue = [int(i) for i in self._remaining[np.argsort(result.value)]]
        self._submit_batch(ctx)


class Screening(sf.Agent):
    """The plain method: simulate every candidate, in random order (what a brute-force screen does)."""

    def __init__(self, mols, seed, width):
        self.mols, self.width = mols, width
        self.order = list(range(len(mols)))
        random.Random(seed + 1).shuffle(self.order)
        self.values: dict[int, float] = {}  # position in the random order -> IP
        self.next = 0

    def _fill(self, ctx):
        while self.next < len(self.order) and self.next - len(self.values) < self.width:
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
        self._fill(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=time.strftime("runs/al-ip-%Y%m%d-%H%M%S"),
                        help="campaign directory (default: a new runs/al-ip-DATE-TIME; give it with --resume)")
    parser.add_argument("--candidates", type=int, default=400, help="QM9 molecules to choose from")
    parser.add_argument("--budget", type=int, default=64, help="xTB simulations the active learner may run")
    parser.add_argument("--batch", type=int, default=8, help="simulations per round; the model retrains between rounds")
    parser.add_argument("--kappa", type=float, default=1.0, help="exploration weight of the confidence bound")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its journal")
    args = parser.parse_args()

    print(f"campaign directory: {args.dir}  (continue a killed run with --resume --dir {args.dir})")
    mols = load_qm9(args.candidates, seed=args.seed)
    features = fingerprints([m["smiles"] for m in mols])
    cores = sf.Allocation.detect().total_cores
    pools = {"simulate": {"cores": cores}, "train": {"cores": 1}, "infer": {"cores": 1}}

    camp = sf.Campaign(os.path.join(args.dir, "active"), pools=pools, resume=args.resume or None)
    learner = camp.add_agent(ActiveLearner(mols, features, args.budget, args.batch, args.kappa, args.seed))
    summary = camp.run()
    best_i, best = min(learner.done, key=lambda t: t[1])
    reached = 1 + next(k for k, (_, v) in enumerate(learner.done) if v <= best + 1e-9)

    screen = sf.Campaign(os.path.join(args.dir, "screen"), pools={"simulate": {"cores": cores}},
                         resume=args.resume or None)
    plain = screen.add_agent(Screening(mols, args.seed, width=cores))
    screen.run()
    random_curve = [plain.values.get(k, float("inf")) for k in range(len(mols))]
    as_good = sum(v <= best + 1e-9 for v in random_curve)  # candidates at least as good as ours
    needed = 1 + next(k for k, v in enumerate(random_curve) if v <= best + 1e-9)
    expected = (len(mols) + 1) / (as_good + 1)  # random order: expected draws to hit one of them

    report = {
        "molecule": mols[best_i]["smiles"], "ip_ev": best, "candidates": len(mols),
        "global_minimum_ev": min(random_curve), "found_global_minimum": as_good == 1,
        "active_simulations_to_best": reached, "active_simulations": len(learner.done),
        "random_order_simulations_to_match": needed,
        "random_order_expected_simulations_to_match": expected,
        "effective_performance": expected / reached,
        "active_elapsed_s": summary["elapsed_s"],
    }
    _plot(args.dir, [v for _, v in learner.done], random_curve)
    from steerflow.observe.report import build

    util = build(os.path.join(args.dir, "active"), os.path.join(args.dir, "active-report"))
    report["active_mean_utilisation_pct"] = util["utilization_mean_pct"]["cores"]
    rank = "the lowest" if as_good == 1 else f"one of the {as_good} lowest"
    print(f"\nActive learning: {best:.3f} eV ({mols[best_i]['smiles']}), {rank} of {len(mols)} candidates, "
          f"after {reached} of {len(learner.done)} simulations (global minimum {min(random_curve):.3f} eV).")
    print(f"Screening in random order needs {expected:.0f} simulations on average to match it ({needed} in "
          f"this run's order): effective performance {expected / reached:.1f}x.")
    with open(os.path.join(args.dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"Report: {os.path.join(args.dir, 'report.json')}, learning-curves.png, and the utilisation of the "
          f"active campaign ({util['utilization_mean_pct']['cores']:.0f} % mean) in active-report/report.html")


def _plot(directory: str, active: list[float], plain: list[float]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for values, label in ((active, "active learning (steerflow)"), (plain, "screening in random order")):
        ax.plot(range(1, len(values) + 1), np.minimum.accumulate(values), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("xTB simulations (log scale)")
    ax.set_ylabel("lowest vertical IP found (eV)")
    ax.legend()
    ax.set_title("Learning curve")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "learning-curves.png"), dpi=120)


if __name__ == "__main__":
    main()
