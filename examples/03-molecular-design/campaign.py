"""Molecular design: find the MOSES molecules with the LOWEST vertical ionisation potential (GFN2-xTB).

Every simulation is real: tblite's GFN2-xTB on the neutral, cation and anion at an RDKit
ETKDG + MMFF94 geometry (0.2-0.6 s on one core), one core per task (OMP_NUM_THREADS=1).
The learning policy runs beside them as tasks of its own:
- featurize (pool `learn`, once, in one chunk per core so the first model comes early): cheap RDKit
  descriptors (+ Morgan counts with --bits) of the whole pool, to .npy files;
- fit_and_rank (pool `learn`, after every batch of results): steerflow.learn's Forest on the
  results so far (on the residual of a line on the QM9 prior, transfer.py), registered in the
  model registry, scores the pool (mean, per-tree std);
- the agent submits the next batch by UCB (steerflow.learn.select), pipelined: batch k+2 is chosen
  while batch k+1 runs, so simulation cores never wait for the model.
The ground truth (data/moses5000_gfn2.csv.gz, made by sweep.py through steerflow) is used only
afterwards: to say which molecules are the pool's top 1 %, for the random-order and heuristic
baselines, and for the discovery accounting. See analysis.py for what is reported.

Run: python examples/03-molecular-design/campaign.py                    (5,000 molecules, 1,000 simulations)
     python examples/03-molecular-design/campaign.py --size 300 --budget 96    (tiny: ~30 s)
Kill it at any moment and run the same command with --resume --dir DIR: no finished simulation runs again.
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
from steerflow import learn  # noqa: E402
from steerflow.script_args import bounded, folder, require_campaign  # noqa: E402

from analysis import analyse  # noqa: E402
from features import surrogate_features  # noqa: E402
from policy import PolicyConfig, fit_and_rank, pick  # noqa: E402
from science import GROUND_TRUTH, read_ground_truth, xtb_properties  # noqa: E402

FEATURIZE, FIT = "featurize", "fit"
TARGETS = {"ip_ev": "vertical IP", "gap_ev": "HOMO-LUMO gap"}  # searched for the lowest values
MODEL_NAMES = {"ip_ev": "ip-forest", "gap_ev": "gap-forest"}


class Designer(sf.Agent):
    """Batch active learning for the lowest IP, with training and inference as tasks beside the simulations.

    Deterministic in the events it sees (seeded picks; models come back from the journal on
    resume), as steerflow's replay-based resume requires.
    """

    def __init__(self, smiles: list[str], config: PolicyConfig, budget: int, seed: int, directory: str,
                 cores: int = 1, target: str = "ip_ev") -> None:
        self.smiles, self.config, self.budget, self.seed = smiles, config, min(budget, len(smiles)), seed
        self.target = target                    # the simulation's output searched for its LOWEST values
        self.cores = cores
        chunks = max(1, min(cores, len(smiles)))  # featurize on every core at once: the first model comes sooner
        self.features_paths = tuple(os.path.join(directory, f"features-{k}.npy") for k in range(chunks))
        self.featurized_parts = 0
        self.registry_dir = directory
        self.submitted: list[int] = []
        self.values: dict[int, float] = {}      # pool index -> IP (eV), in completion order
        self.failed: list[int] = []
        self.features_ready = False
        self.training = False
        self.trained_on = 0                     # results the newest model has seen
        self.models: list[dict] = []            # n_train, version, fit_s, score_s per model
        self.ranking: np.ndarray | None = None  # the newest model's order of the pool (best first)
        self.top_ups = 0                        # simulations submitted from a stale ranking while a model trained
        self.last_progress = 0

    # ---- submitting ----------------------------------------------------------------------
    def _simulate(self, ctx: sf.Context, indices: list[int]) -> None:
        for i in indices[:self.budget - len(self.submitted)]:
            self.submitted.append(i)
            ctx.submit(sf.Function(xtb_properties, args=(self.smiles[i],), pool="simulate", cores=1,
                                   timeout=600, retries=1, tags=(learn.candidate_tag(i),)))

    def _done(self) -> int:
        return len(self.values) + len(self.failed)

    def _maybe_train(self, ctx: sf.Context) -> None:
        """Retrain once a batch of new results is in (or when nothing else would ever trigger it)."""
        if not self.features_ready or self.training or len(self.submitted) >= self.budget:
            return
        new = len(self.values) - self.trained_on
        idle_soon = self._done() == len(self.submitted)
        if new >= self.config.batch or (idle_soon and new > 0):
            self.training = True
            self.trained_on = len(self.values)
            idx = list(self.values)
            ctx.submit(sf.Function(fit_and_rank, args=(self.features_paths, idx, [self.values[i] for i in idx],
                                                       self.config, self.seed + len(idx), self.registry_dir,
                                                       MODEL_NAMES[self.target]),
                                   pool="learn", cores=1, priority=10, timeout=1800, tags=(FIT,)))
        elif idle_soon and new == 0:  # every result failed since the last model: keep the cores busy anyway
            self._top_up(ctx, self.config.batch)

    def _top_up(self, ctx: sf.Context, k: int) -> None:
        """A few more from the newest ranking (random before the first): cores never wait for a slow model."""
        taken = set(self.submitted)
        ranking = self.ranking if self.ranking is not None else \
            np.random.default_rng(self.seed + self._done()).permutation(len(self.smiles))
        self._simulate(ctx, [int(i) for i in ranking if int(i) not in taken][:k])

    # ---- handlers ------------------------------------------------------------------------
    @sf.on_start
    def begin(self, ctx: sf.Context) -> None:
        bounds = np.linspace(0, len(self.smiles), len(self.features_paths) + 1).astype(int)
        for path, lo, hi in zip(self.features_paths, bounds[:-1], bounds[1:]):
            ctx.submit(sf.Function(surrogate_features, args=(self.smiles[lo:hi], path, self.config.bits,
                                                             self.config.descriptors),
                                   pool="learn", cores=1, priority=10, timeout=1800, tags=(FEATURIZE,)))
        first = np.random.default_rng(self.seed).permutation(len(self.smiles))[:self.config.initial]
        self._simulate(ctx, [int(i) for i in first])  # before any model: random picks

    @sf.on_result(pool="simulate")
    def simulated(self, result: sf.Result, ctx: sf.Context) -> None:
        i = learn.performance.candidate_from_tags(result.tags)
        if result.ok:
            self.values[int(i)] = float(result.value[self.target])
        else:
            self.failed.append(int(i))
        if not ctx.replaying and self._done() - self.last_progress >= 100:
            self.last_progress = self._done()
            best = min(self.values.values()) if self.values else float("nan")
            print(f"[design] {self._done()}/{self.budget} simulations, {len(self.models)} models, "
                  f"lowest {TARGETS[self.target]} so far {best:.3f} eV, {ctx.elapsed:.0f} s", flush=True)
        in_flight = len(self.submitted) - self._done()
        if (self.training or not self.features_ready) and in_flight < self.cores and len(self.submitted) < self.budget:
            self.top_ups += self.cores - in_flight
            self._top_up(ctx, self.cores - in_flight)
        self._maybe_train(ctx)

    @sf.on_result(pool="learn", tag=FEATURIZE)
    def featurized(self, result: sf.Result, ctx: sf.Context) -> None:
        result.get()  # a featurization error stops the campaign with its message
        self.featurized_parts += 1
        self.features_ready = self.featurized_parts == len(self.features_paths)
        self._maybe_train(ctx)

    @sf.on_result(pool="learn", tag=FIT)
    def ranked(self, result: sf.Result, ctx: sf.Context) -> None:
        out = result.get()
        self.training = False
        self.models.append({k: out[k] for k in ("n_train", "version", "fit_s", "score_s")})
        mean, std = np.asarray(out["mean"], dtype=float), np.asarray(out["std"], dtype=float)
        self.ranking = np.argsort(mean - self.config.kappa * std, kind="stable")
        self._simulate(ctx, pick(self.config, mean, std, self.submitted, self.config.batch, self.seed + out["n_train"]))
        self._maybe_train(ctx)


def load_pool(size: int, truth: str = GROUND_TRUTH) -> list[dict]:
    """A fixed random subset of ``size`` molecules of the cached pool (all 5,000 by default), in pool order."""
    rows = [r for r in read_ground_truth(truth) if np.isfinite(r["ip_ev"]) and np.isfinite(r["gap_ev"])]
    if size < len(rows):
        keep = sorted(np.random.default_rng(12345).permutation(len(rows))[:size])
        rows = [rows[int(i)] for i in keep]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=folder, default=None, help="campaign directory (default: a new runs/design-DATE-TIME)")
    parser.add_argument("--size", type=bounded(int, 1), default=5000, help="molecules in the pool (a fixed subset of the 5,000)")
    parser.add_argument("--budget", type=bounded(int, 1), default=1000, help="simulations the learning policy may run")
    parser.add_argument("--seed", type=int, default=1, help="seed of the policy (first random batch, forest)")
    parser.add_argument("--batch", type=bounded(int, 1), default=PolicyConfig.batch, help="simulations per model")
    parser.add_argument("--kappa", type=bounded(float, 0), default=PolicyConfig.kappa, help="UCB exploration weight")
    parser.add_argument("--bits", type=bounded(int, 0), default=PolicyConfig.bits,
                        help="Morgan count bits in the surrogate's features (0: RDKit descriptors only)")
    parser.add_argument("--transfer", type=int, choices=[0, 1], default=int(PolicyConfig.transfer),
                        help="1: the QM9 HOMO model (transfer.py, data/qm9_homo_ridge.json) is the surrogate's prior "
                             "mean; 0: none (the configuration of the earlier runs and of the gap runs)")
    parser.add_argument("--target", default="ip_ev", choices=sorted(TARGETS),
                        help="what to search for the lowest values of: the vertical IP (the issue's target) or the gap")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its journal")
    parser.add_argument("--truth", default=GROUND_TRUTH, help="the cached ground truth (made by sweep.py)")
    parser.add_argument("--report-only", action="store_true",
                        help="only analyse DIR's journal as it is (e.g. a run stopped early), without running anything")
    parser.add_argument("--cache", default="runs/03-cache",
                        help="where the analysis keeps the pool's RDKit descriptors (for the heuristic baselines)")
    args = parser.parse_args()
    if (args.resume or args.report_only) and args.dir is None:
        parser.error(f"{'--resume' if args.resume else '--report-only'} needs --dir DIR: the directory of the run "
                     "(it was printed when that run started).")
    directory = args.dir or time.strftime("runs/design-%Y%m%d-%H%M%S")
    journal = os.path.join(directory, "campaign", "journal.db")
    require_campaign(parser, args.resume, journal)
    if args.report_only and not os.path.exists(journal):
        parser.error(f"--report-only: {journal} does not exist; give the directory of a run with --dir.")
    print(f"campaign directory: {directory}  (after a kill: same command with --resume --dir {directory})",
          flush=True)

    rows = load_pool(args.size, args.truth)
    config = PolicyConfig(batch=args.batch, kappa=args.kappa, initial=2 * args.batch, bits=args.bits,
                          transfer=bool(args.transfer))
    if args.report_only:
        analyse(directory, rows, None, config, args)
        return
    camp_dir = os.path.join(directory, "campaign")
    cores = sf.Allocation.detect().total_cores
    # `learn` may use every core only while the pool is featurized (one chunk per core); after that
    # one training task runs at a time, so it never holds more than one core.
    camp = sf.Campaign(camp_dir, pools={"simulate": {"cores": cores}, "learn": {"cores": cores}},
                       resume=args.resume or None, progress=False)
    designer = camp.add_agent(Designer([r["smiles"] for r in rows], config, args.budget, args.seed, camp_dir, cores,
                                         args.target))
    if not camp.resumed:
        with open(os.path.join(directory, "settings.json"), "w") as f:
            json.dump({**vars(args), "dir": directory, "policy": config.as_dict()}, f, indent=2)
    camp.run()
    summary = analyse(directory, rows, designer, config, args)
    print(json.dumps({k: summary[k] for k in ("pool_size", "sims_to_top1pct", "baseline_sims_to_top1pct",
                                              "heuristic_sims_to_top1pct", "effective_performance", "wall_s",
                                              "utilization_pct")}, indent=1))


if __name__ == "__main__":
    main()
