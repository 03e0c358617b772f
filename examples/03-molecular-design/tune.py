"""Offline replay of the learning policy on the cached ground truth (no xTB, no campaign): for tuning.

It replays exactly the campaign's pipelined schedule (batch k+2 chosen by the model trained on
batches 0..k) with the labels from data/moses5000_gfn2.csv.gz, and prints the simulations needed
to find half and 90 % of the pool's top 1 % (lowest IP) per seed, with their median and range.

Run: python examples/03-molecular-design/tune.py --seeds 1 2 3 --kappa 1.0
     python examples/03-molecular-design/tune.py --seeds 1 2 3 --acquisition greedy
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from features import surrogate_matrix  # noqa: E402
from policy import PolicyConfig, make_forest, pick, prior_line  # noqa: E402
from transfer import prior as qm9_prior  # noqa: E402
from science import GROUND_TRUTH, read_ground_truth  # noqa: E402


def top_set(values: np.ndarray, fraction: float = 0.01) -> set[int]:
    count = max(1, int(round(fraction * len(values))))
    return set(np.argsort(values, kind="stable")[:count].tolist())


def sims_to(order: list[int], hits: set[int], needed: int) -> int | None:
    found = 0
    for n, i in enumerate(order, 1):
        found += i in hits
        if found >= needed:
            return n
    return None


def replay(x: np.ndarray, y: np.ndarray, config: PolicyConfig, seed: int, budget: int,
           stop_after: tuple[set[int], int] | None = None) -> list[int]:
    """The order in which the campaign's policy would simulate the pool (the campaign's own schedule)."""
    prior = qm9_prior(x) if config.transfer else None
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(y))[:config.initial]]
    trained_on = 0
    while len(order) < min(budget, len(y)):
        trained_on += config.batch  # the model sees the results that are in when the previous batch ends
        train = order[:trained_on]
        line = prior_line(prior, train, y[train])
        residual = y[train] - (line[train] if isinstance(line, np.ndarray) else line)
        model = make_forest(config, seed + trained_on).fit(x[train], residual)
        mean, std = model.predict(x)
        mean = mean + line
        order += pick(config, mean, std, order, min(config.batch, budget - len(order)), seed + trained_on)
        if stop_after is not None and sims_to(order[:trained_on + config.batch], *stop_after) is not None:
            break
    return order


def cached_features(smiles: list[str], config: PolicyConfig, cache: str) -> np.ndarray:
    key = hashlib.sha1(json.dumps([smiles, config.bits, config.descriptors]).encode()).hexdigest()[:12]
    path = os.path.join(cache, f"features-{key}.npy")
    if os.path.exists(path):
        return np.load(path)
    x = surrogate_matrix(smiles, config.bits, config.descriptors)
    os.makedirs(cache, exist_ok=True)
    np.save(path, x)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--target", default="ip_ev", choices=["ip_ev", "gap_ev"])
    parser.add_argument("--cache", default="runs/03-cache")
    parser.add_argument("--truth", default=GROUND_TRUTH, help="the cached ground truth (made by sweep.py)")
    parser.add_argument("--json", help="append one JSON line with the result to this file")
    parser.add_argument("--until", choices=["half", "ninety"], default="ninety",
                        help="stop a replay once half (cheaper) or 90 %% of the top 1 %% is found")
    for field in dataclasses.fields(PolicyConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default) if field.type != "bool"
                            else lambda s: s.lower() in ("1", "true", "yes"), default=field.default)
    args = parser.parse_args()
    config = PolicyConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PolicyConfig)})
    rows = [r for r in read_ground_truth(args.truth) if np.isfinite(r[args.target])]
    y = np.array([r[args.target] for r in rows])
    x = cached_features([r["smiles"] for r in rows], config, args.cache)
    hits = top_set(y)
    half, ninety = max(1, len(hits) // 2), int(np.ceil(0.9 * len(hits)))
    random_half = half * (len(y) + 1) / (len(hits) + 1)
    random_ninety = ninety * (len(y) + 1) / (len(hits) + 1)
    print(f"pool {len(y)}, top 1 % = {len(hits)}; random order expects {random_half:.0f} (half) and "
          f"{random_ninety:.0f} (90 %) simulations; config {config}", flush=True)
    results = []
    for seed in args.seeds:
        start = time.time()
        order = replay(x, y, config, seed, args.budget, stop_after=(hits, half if args.until == "half" else ninety))
        a, b = sims_to(order, hits, half), sims_to(order, hits, ninety)
        results.append((a, b))
        print(f"  seed {seed}: half at {a}, 90 % at {b}  ({time.time() - start:.0f} s)", flush=True)
    halves = [a if a is not None else np.inf for a, _ in results]
    ninetys = [b if b is not None else np.inf for _, b in results]
    print(f"median: half {np.median(halves):.0f} (range {min(halves):.0f}-{max(halves):.0f}), "
          f"90 % {np.median(ninetys):.0f} (range {min(ninetys):.0f}-{max(ninetys):.0f}); "
          f"vs random {random_half / np.median(halves):.1f}x and {random_ninety / np.median(ninetys):.1f}x")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"config": config.as_dict(), "target": args.target, "seeds": args.seeds,
                                "half": halves, "ninety": ninetys}) + "\n")


if __name__ == "__main__":
    main()
