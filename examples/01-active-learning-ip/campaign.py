"""Active learning for drug-like molecules with the lowest ionisation potential (GFN2-xTB), all three ML modes.

- ML-in: the xTB simulation sits behind a UQ-gated surrogate (steerflow.learn.Surrogate): where
  its forest is sure enough (Proxima's controller keeps the audited error under --error-bound)
  it answers and no simulation runs; its retraining is a task in the `train` pool.
- ML-about: a learner retrains a random forest (pool `train`) after every --retrain-after
  results while the simulations go on, registers each version in the model registry, and
  re-ranks the remaining pool with inference tasks (pool `infer`) that load that version.
- ML-out: an acquisition function (UCB, lowest IP) turns the ranking into the next simulations.

Afterwards the script reads the run back from its journal and prints the effective performance
against random order AND against label-free heuristic rankings, using the ground truth in
data/moses-vertical-ip.csv (computed with the same xTB function by make_ground_truth.py).

Run: steerflow run examples/01-active-learning-ip/campaign.py   (add --help for the knobs)
Kill it at any moment and run it again with --resume --dir DIR: it continues from its journal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import steerflow as sf  # noqa: E402
from science import DESCRIPTORS, features, load_pool, replayed_ip, vertical_ip  # noqa: E402
from steerflow import learn  # noqa: E402
from steerflow.script_args import bounded, folder, require_campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=folder, default=time.strftime("runs/al-ip-%Y%m%d-%H%M%S"),
                        help="campaign directory (default: a new runs/al-ip-DATE-TIME; give it with --resume)")
    parser.add_argument("--candidates", type=bounded(int, 2), default=None, help="molecules in the pool (default: all in the file)")
    parser.add_argument("--budget", type=bounded(int, 1), default=400, help="xTB simulations the learner may run")
    parser.add_argument("--first", type=bounded(int, 2), default=48, help="random simulations before the first model")
    parser.add_argument("--retrain-after", type=bounded(int, 1), default=24, help="new results between two models")
    parser.add_argument("--kappa", type=bounded(float, 0), default=1.0, help="UCB exploration weight (mean - kappa * std)")
    parser.add_argument("--error-bound", type=bounded(float, 0, above=True), default=0.3, help="surrogate's mean error bound (eV)")
    parser.add_argument("--verify-margin", type=bounded(float, 0), default=1.0,
                        help="surrogate answers within this many eV of the current top list are simulated anyway")
    parser.add_argument("--top", type=bounded(float, 0, 1, above=True), default=0.01, help="the goal: the lowest fraction of the pool ...")
    parser.add_argument("--find", type=bounded(float, 0, 1, above=True), default=0.5, help="... of which this fraction must be found")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its journal")
    parser.add_argument("--replay", action="store_true", help="look IPs up in the ground-truth file (0.16 s "
                        "each) instead of running xTB: for trying knobs fast; its timings are not measurements")
    args = parser.parse_args()
    require_campaign(parser, args.resume, os.path.join(args.dir, "journal.db"))

    smiles, truth = load_pool(args.candidates, seed=args.seed)
    x, desc = features(smiles)
    row = {s: i for i, s in enumerate(smiles)}
    cores = sf.Allocation.detect().total_cores
    # One core beyond the machine's for training and inference: they are short next to the
    # simulations, which keep every real core (the OS shares the extra one).
    allocation = sf.Allocation.declare(nodes=1, cores=cores + 1)
    pools = {"simulate": {"cores": cores}, "train": {"cores": 1}, "infer": {"cores": 1}}
    camp = sf.Campaign(args.dir, allocation=allocation, pools=pools, resume=args.resume or None)
    args.dir = str(camp.directory)  # where it really is: under `steerflow resume DIR`, DIR (not a new time stamp)
    print(f"campaign directory: {args.dir}  (continue a killed run with `steerflow resume {args.dir}`)")

    # ML-in: the simulation behind a surrogate; it answers with the learner's newest model
    ip = learn.Surrogate(replayed_ip if args.replay else vertical_ip, featurize=lambda s: x[row[s]],
                         error_bound=args.error_bound, min_points=args.first, domain_points=args.first,
                         retrain_every=0, audit_fraction=0.2,
                         seed=args.seed, name="xtb-ip")
    ip.attach(camp, train_pool="train", pool="simulate", timeout=300, retries=1)
    # ML-about + ML-out: the learner retrains beside the simulations; UCB chooses the next ones
    learner = camp.add_agent(learn.ActiveLearner(
        smiles, x, ip, budget=args.budget, goal="min", acquisition=learn.acquisition.UCB(args.kappa),
        model=learn.Forest(n_estimators=64, max_features=0.2, seed=args.seed), slots=cores,
        retrain_after=args.retrain_after, min_train=args.first, name="ip-forest", seed=args.seed,
        verify_top=max(2, round(args.top * len(smiles))), verify_margin=args.verify_margin))
    summary = camp.run()
    report = evaluate(args, camp.directory, smiles, truth, desc, learner, ip, summary)
    with open(os.path.join(args.dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2, default=float)
    print(f"\nReport: {os.path.join(args.dir, 'report.json')} and learning-curves.png; models: "
          f"steerflow.learn.load({args.dir!r}, 'ip-forest', version=N)")


def evaluate(args, directory, smiles, truth, d, learner, ip, summary) -> dict:
    """Effective performance from the journal, against random order and label-free rankings."""
    values = {i: truth[s] for i, s in enumerate(smiles)}
    count = max(2, round(args.top * len(smiles)))
    goal = learn.Goal.top(values, count=count, needed=max(1, round(args.find * count)), goal="min")
    trace = learn.Trace.from_journal(directory, pool="simulate")
    fixed = learn.Heuristic("fewest H per heavy atom (chosen in advance: it won on QM9)",
                            scores=dict(enumerate(d[:, 0])), goal="min")
    fixed.how = "the pool ranked by the rule, lowest first (needs no label), checked against the true values"
    candidates = []
    for k, name in enumerate(DESCRIPTORS):
        for goal_word in ("min", "max"):
            h = learn.Heuristic(name, scores=dict(enumerate(d[:, k])), goal=goal_word)
            candidates.append((h.simulations(goal, len(smiles)) or len(smiles), h))
    best_sims, best = min(candidates, key=lambda t: t[0])
    best.name = (f"{'lowest' if best.goal == 'min' else 'highest'} {best.name} (the best of "
                 f"{len(candidates)} descriptor rules, chosen AFTER the fact with every label)")
    best.how = "label-free ranking; choosing which one used the labels, so it flatters this baseline"
    result = learn.effective_performance(trace, goal, len(smiles), [learn.RandomOrder(), fixed, best])
    print("\n" + result.text())

    stats = ip.stats
    speed = learn.surrogate_speedup(stats.as_dict())
    audit = stats.mean_audit_error
    print(f"\nSurrogate (ML-in): {stats.calls} calls, {stats.surrogate_calls} answered by the model "
          f"({100 * stats.substitution_rate:.0f} %), {stats.audits} audits with mean error "
          f"{'n/a' if audit is None else f'{audit:.3f}'} eV against the bound {stats.error_bound} eV; "
          f"fallbacks {stats.fallbacks or 'none'}; {stats.retrains} retrains; "
          f"{speed['speedup'] or 0:.2f}x faster than calling xTB every time ({speed['how']}).")
    simulated = [(e.candidate, e.value) for e in trace.evaluations if e.source == "simulation" and e.ok]
    drift = max((abs(v - values[c]) for c, v in simulated), default=0.0)
    print(f"Learner (ML-about): {learner.models} models registered, {learner.rankings} re-rankings of the pool; "
          f"{len(simulated)} simulations matched the ground-truth file within {drift:.4f} eV. "
          f"Campaign wall time {summary['campaign_elapsed_s']:.1f} s on {trace.slots} simulation slots"
          + (f" (resumed: {summary['drivers']} drivers, summed; this one {summary['elapsed_s']:.1f} s)."
             if summary["drivers"] > 1 else "."))
    best_found = min((values[c] for c, _ in simulated), default=float("nan"))
    from steerflow.observe.report import build

    metrics = build(str(directory), os.path.join(str(directory), "report"))
    util = metrics["utilization_mean_pct"]["cores"]
    # (the allocation declares one core beyond the machine's for training and inference, idle most of the
    # time by design: the simulation cores' own share says whether the campaign kept the machine busy)
    sim_util = (metrics["utilization_mean_pct_by_pool"].get("simulate", {}).get("cores", 0.0)
                * metrics["capacity"]["cores"] / max(1, trace.slots))
    print(f"Utilisation over the run: the {trace.slots} simulation cores {sim_util:.0f} % busy; all "
          f"{metrics['capacity']['cores']} declared cores (one extra for training and inference) {util:.0f} % "
          f"(steerflow report {directory}).")
    _plot(args.dir, trace, values, goal, [fixed, best])
    return {"effective_performance": result.as_dict(), "surrogate": stats.as_dict(), "surrogate_speedup": speed,
            "models": learner.models, "rankings": learner.rankings, "ground_truth_max_deviation_ev": drift,
            "best_simulated_ip_ev": best_found, "pool_minimum_ev": min(values.values()),
            "candidates": len(smiles), "simulations": len(simulated), "elapsed_s": summary["campaign_elapsed_s"],
            "drivers": summary["drivers"], "this_driver_elapsed_s": summary["elapsed_s"],
            "heuristic_after_the_fact_simulations": best_sims, "mean_core_utilisation_pct": util,
            "simulation_core_utilisation_pct": sim_util}


def _plot(directory: str, trace, values: dict, goal, heuristics) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4))
    found, curve = set(), []
    for e in trace.evaluations:
        if e.source == "simulation":
            if e.ok and e.candidate in goal.hits:
                found.add(e.candidate)
            curve.append(len(found))
    ax.plot(range(1, len(curve) + 1), curve, label="steerflow: surrogate + learner + UCB")
    n, h = len(values), len(goal.hits)
    xs = np.arange(1, n + 1)
    ax.plot(xs, xs * h / n, "--", label="random order (expected)")
    for heuristic in heuristics:
        order = heuristic.order()
        ax.plot(xs, np.cumsum([c in goal.hits for c in order]), ":", label=heuristic.name.split(" (")[0])
    ax.axhline(goal.needed, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("xTB simulations (log scale)")
    ax.set_ylabel(f"molecules found of the {h} lowest IPs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "learning-curves.png"), dpi=120)


if __name__ == "__main__":
    main()
