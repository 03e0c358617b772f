"""What example 03 reports, from its journal and the cached ground truth.

- simulations to find half and 90 % of the pool's top 1 % (lowest IP): the learning policy (its
  journal, in completion order), random order (exact expected value, steerflow.learn.RandomOrder),
  and the best label-free heuristic: every RDKit descriptor (+ H per heavy atom), both directions,
  ranks the pool; ties are broken at random (mean over 32 tie-breaks); the best is chosen AFTER the
  fact on the ground truth, which favours the heuristic;
- effective performance in simulations and in wall time (steerflow.learn.effective_performance:
  a baseline's time is its simulations x this run's mean simulation cost / the simulation slots,
  an ideal schedule that favours the baseline; ours is wall clock from the campaign's start,
  featurization, training and inference included);
- utilisation of the cores over the whole campaign (busy core-seconds of every task from the
  journal over cores x wall time), and per pool;
- discovery.png (three curves) and summary.json in the run directory.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from steerflow import learn
from transfer import PRIOR_NAME

TIE_BREAKS = 32


def _at_their_cost(secs: float | None, how: str, factor: float) -> tuple[float | None, str]:
    if secs is None:
        return secs, how
    return secs * factor, (f"{how}, x {factor:.3f}: the mean cost of the molecules this baseline would simulate "
                           "relative to the ones this run simulated (the sweep's per-molecule seconds)")


@dataclass
class RandomAtPoolCost(learn.RandomOrder):
    """Random order, timed at the pool's mean simulation cost rather than at this run's.

    The policy picks molecules larger than average (low IPs are large conjugated molecules: 20-28 %
    dearer to simulate here), so timing random order at this run's mean cost would flatter us.
    """

    cost_factor: float = 1.0

    def seconds(self, goal: learn.Goal, pool_size: int, trace: learn.Trace) -> tuple[float | None, str]:
        return _at_their_cost(*super().seconds(goal, pool_size, trace), self.cost_factor)


@dataclass
class ExpectedHeuristic(learn.performance.Baseline):
    """A descriptor ranking with ties broken at random: the mean simulations over many tie-breaks."""

    half: float = math.nan
    ninety: float = math.nan
    needed_half: int = 1
    cost_factor_half: float = 1.0
    cost_factor_ninety: float = 1.0

    def simulations(self, goal: learn.Goal, pool_size: int) -> float | None:
        return self.half if goal.needed == self.needed_half else self.ninety

    def seconds(self, goal: learn.Goal, pool_size: int, trace: learn.Trace) -> tuple[float | None, str]:
        factor = self.cost_factor_half if goal.needed == self.needed_half else self.cost_factor_ninety
        return _at_their_cost(*super().seconds(goal, pool_size, trace), factor)


def sims_to(order: np.ndarray, is_hit: np.ndarray, needed: int) -> int:
    found = np.cumsum(is_hit[order])
    return int(np.searchsorted(found, needed) + 1)


def heuristic_table(names: list[str], table: np.ndarray, y: np.ndarray, hits: np.ndarray, half: int, ninety: int,
                    seed: int = 7, cost: np.ndarray | None = None) -> list[dict]:
    """Every (descriptor, direction) ranking: mean simulations to half / 90 % of the hits, its mean curve, and
    the mean relative cost (``cost``: per-molecule seconds of the sweep) of the molecules it simulates to get there."""
    cost = np.ones(len(y)) if cost is None else cost
    rng = np.random.default_rng(seed)
    is_hit = np.zeros(len(y), dtype=bool)
    is_hit[hits] = True
    out = []
    ties = [rng.random(len(y)) for _ in range(TIE_BREAKS)]
    for j, name in enumerate(names):
        col = table[:, j]
        if not np.all(np.isfinite(col)) or np.ptp(col) == 0:
            col = np.nan_to_num(col, nan=np.nanmedian(col) if np.isfinite(col).any() else 0.0)
            if np.ptp(col) == 0:
                continue
        for direction, sign in (("lowest", 1.0), ("highest", -1.0)):
            halves, ninetys, curve, costs = [], [], np.zeros(len(y)), np.zeros(2)
            for tie in ties:
                order = np.lexsort((tie, sign * col))
                halves.append(sims_to(order, is_hit, half))
                ninetys.append(sims_to(order, is_hit, ninety))
                curve += np.cumsum(is_hit[order])
                costs += (cost[order[:halves[-1]]].mean(), cost[order[:ninetys[-1]]].mean())
            out.append({"name": f"{name} ({direction} first)", "half": float(np.mean(halves)),
                        "ninety": float(np.mean(ninetys)), "curve": curve / len(ties),
                        "cost_half": costs[0] / len(ties), "cost_ninety": costs[1] / len(ties)})
    return out


def pool_descriptors(cache: str, smiles: list[str]) -> tuple[list[str], np.ndarray]:
    """All RDKit descriptors of the pool (about 15 ms a molecule), cached in ``cache`` by the pool's SMILES."""
    from features import descriptors

    key = hashlib.sha1("\n".join(smiles).encode()).hexdigest()[:16]
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"descriptors-{key}.npz")
    if os.path.exists(path):
        data = np.load(path, allow_pickle=False)
        if data["table"].shape[0] == len(smiles):
            return [str(n) for n in data["names"]], data["table"]
    start = time.time()
    print(f"[analysis] computing every RDKit descriptor of {len(smiles)} molecules for the heuristic baselines "
          "(not part of the campaign's time) ...", flush=True)
    names, table = descriptors(smiles, cheap_only=False)
    np.savez_compressed(path + ".tmp.npz", names=np.array(names), table=table)
    os.replace(path + ".tmp.npz", path)
    print(f"[analysis] descriptors done in {time.time() - start:.0f} s", flush=True)
    return names, table


def qm9_prior_of_pool(camp_dir: str, smiles: list[str]) -> np.ndarray:
    """The QM9 model's HOMO of each pool molecule, from the run's own feature files (or computed, if the run has none)."""
    from features import surrogate_matrix
    from transfer import prior

    paths = sorted(glob.glob(os.path.join(camp_dir, "features-*.npy")), key=lambda p: int(p.rsplit("-", 1)[1][:-4]))
    x = np.concatenate([np.load(p) for p in paths]) if paths else np.zeros((0, 0))
    if len(x) != len(smiles):
        x = surrogate_matrix(smiles, bits=0)
    return prior(x).astype(float)


def core_seconds(camp_dir: str) -> dict[str, Any]:
    """Busy core-seconds per pool (every task's holds, steerflow.observe.timeline) and the wall time of all drivers."""
    from steerflow.observe import timeline

    from steerflow import journal_files

    tl = timeline.read(camp_dir)
    conn = sqlite3.connect(f"file:{os.path.join(camp_dir, 'journal.db')}?mode=ro", uri=True, timeout=30)
    try:  # (a driver killed with -9 wrote no end: its last journaled state change is its end)
        drivers, wall = journal_files.drivers_wall(conn)
    finally:
        conn.close()
    by_pool: dict[str, float] = {}
    count: dict[str, int] = {}
    for hold in tl.holds:
        by_pool[hold.pool] = by_pool.get(hold.pool, 0.0) + hold.cores * (hold.end - hold.start)
        count[hold.pool] = count.get(hold.pool, 0) + 1
    busy = sum(by_pool.values())
    return {"wall_s": wall, "cores": tl.cores, "core_s_by_pool": by_pool, "tasks_by_pool": count,
            "utilization_pct": 100.0 * busy / (tl.cores * wall) if wall > 0 else 0.0, "driver_starts": drivers}


def analyse(directory: str, rows: list[dict], designer: Any, config: Any, args: Any) -> dict[str, Any]:
    camp_dir = os.path.join(directory, "campaign")
    target = getattr(args, "target", "ip_ev")
    label = {"ip_ev": "vertical IP", "gap_ev": "HOMO-LUMO gap"}[target]
    y = np.array([r[target] for r in rows])
    n = len(y)
    count = max(1, int(round(0.01 * n)))
    truth = {i: float(v) for i, v in enumerate(y)}
    goal_half = learn.Goal.top(truth, count=count, goal="min")
    goal_ninety = learn.Goal.top(truth, count=count, needed=math.ceil(0.9 * count), goal="min")
    hits = np.array(sorted(goal_half.hits))

    trace = learn.Trace.from_journal(camp_dir, pool="simulate")
    ours = [e.candidate for e in trace.evaluations if e.ok]
    is_hit = np.zeros(n, dtype=bool)
    is_hit[hits] = True
    our_curve = np.cumsum(is_hit[np.array(ours, dtype=int)]) if ours else np.zeros(0)
    fresh = {e.candidate: e.value[target] for e in trace.evaluations if e.ok}
    cached_ip = {i: r["ip_ev"] for i, r in enumerate(rows)}
    drift = max((abs(e.value[k] - (cached_ip if k == "ip_ev" else truth)[e.candidate])
                 for e in trace.evaluations if e.ok for k in {"ip_ev", target}), default=0.0)

    names, table = pool_descriptors(args.cache, [r["smiles"] for r in rows])
    # honesty: the QM9 model (transfer.py) is a label-free ranking too, whether or not this run's policy used it
    qm9 = qm9_prior_of_pool(camp_dir, [r["smiles"] for r in rows])
    names, table = [*names, PRIOR_NAME], np.hstack([table, qm9[:, None]])
    sweep_cost = np.array([r["seconds"] for r in rows])  # relative cost of each molecule (the sweep's own seconds)
    ours_cost = float(sweep_cost[np.array(ours, dtype=int)].mean()) if ours else float(sweep_cost.mean())
    heuristics = heuristic_table(names, table, y, hits, goal_half.needed, goal_ninety.needed, cost=sweep_cost)
    best = min(heuristics, key=lambda h: (h["half"], h["ninety"]))
    best90 = min(heuristics, key=lambda h: (h["ninety"], h["half"]))
    heuristic = ExpectedHeuristic(name=f"best heuristic: {best['name']}", half=best["half"], ninety=best["ninety"],
                                  needed_half=goal_half.needed, cost_factor_half=best["cost_half"] / ours_cost,
                                  cost_factor_ninety=best["cost_ninety"] / ours_cost,
                                  how=f"best of {len(heuristics)} label-free rankings (RDKit descriptors and the QM9 model), chosen after "
                                      f"the fact on the ground truth (mean over {TIE_BREAKS} random tie-breaks)")
    baselines = [RandomAtPoolCost(cost_factor=float(sweep_cost.mean()) / ours_cost), heuristic]
    reports = {"half": learn.effective_performance(trace, goal_half, n, baselines),
               "ninety": learn.effective_performance(trace, goal_ninety, n, baselines)}
    usage = core_seconds(camp_dir)

    def row(report: Any, i: int, key: str) -> Any:
        return report.rows[i][key]

    half, ninety = reports["half"], reports["ninety"]
    summary: dict[str, Any] = {
        "pool_size": n, "top1pct_count": count, "target": f"lowest {label}, GFN2-xTB (tblite), eV", "target_key": target,
        "simulation": "real: every simulation task ran tblite GFN2-xTB (neutral, cation, anion) at an RDKit "
                      "ETKDG+MMFF94 geometry; the cached ground truth is used only for the baselines and accounting",
        "sims_to_top1pct": half.run_simulations, "sims_to_top1pct_90": ninety.run_simulations,
        "baseline_sims_to_top1pct": row(half, 0, "simulations"),
        "baseline_sims_to_top1pct_90": row(ninety, 0, "simulations"),
        "heuristic_sims_to_top1pct": best["half"], "heuristic_sims_to_top1pct_90": best["ninety"],
        "heuristic": best["name"], "heuristic_best_at_90pct": {"name": best90["name"], "sims": best90["ninety"]},
        "heuristics_tried": len(heuristics),
        "heuristic_qm9_model": {k: min(h[k] for h in heuristics if h["name"].startswith(PRIOR_NAME))
                                for k in ("half", "ninety")},
        "effective_performance": row(half, 0, "effective_performance"),
        "effective_performance_sims": row(half, 0, "simulations_ratio"),
        "effective_performance_vs_heuristic": row(half, 1, "effective_performance"),
        "effective_performance_sims_vs_heuristic": row(half, 1, "simulations_ratio"),
        "effective_performance_90": row(ninety, 0, "effective_performance"),
        "effective_performance_sims_90": row(ninety, 0, "simulations_ratio"),
        "effective_performance_vs_heuristic_90": row(ninety, 1, "effective_performance"),
        "effective_performance_sims_vs_heuristic_90": row(ninety, 1, "simulations_ratio"),
        "time_to_top1pct_s": half.run_seconds, "time_to_top1pct_90_s": ninety.run_seconds,
        "wall_s": usage["wall_s"], "utilization_pct": usage["utilization_pct"], "cores": usage["cores"],
        "core_s_by_pool": usage["core_s_by_pool"], "tasks_by_pool": usage["tasks_by_pool"],
        "driver_starts": usage["driver_starts"], "simulations": len(trace.evaluations),
        "failed_simulations": sum(not e.ok for e in trace.evaluations),
        "mean_simulation_s": trace.mean_cost(),
        "models": len(designer.models) if designer else len(glob.glob(os.path.join(camp_dir, "models", "*", "*.pkl"))),
        "top_ups": designer.top_ups if designer else None,
        "mean_fit_s": float(np.mean([m["fit_s"] for m in designer.models])) if designer and designer.models else None,
        "max_abs_ip_difference_vs_cache_ev": drift, "lowest_found_ev": min(fresh.values()) if fresh else None,
        "pool_lowest_ev": float(y.min()), "seed": args.seed, "budget": args.budget, "policy": config.as_dict(),
        "cost_factor_random": float(sweep_cost.mean()) / ours_cost,
        "cost_factor_heuristic": best["cost_half"] / ours_cost,
        "reports": {k: r.as_dict() for k, r in reports.items()},
    }
    with open(os.path.join(directory, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    plot(os.path.join(directory, "discovery.png"), our_curve, best, count, n, goal_half.needed, goal_ninety.needed,
         label)
    print(text(summary, half, ninety))
    print(f"summary: {os.path.join(directory, 'summary.json')}; curves: {os.path.join(directory, 'discovery.png')}")
    return summary


def _fmt(x: Any, spec: str = ".0f") -> str:
    return "not reached" if x is None else format(x, spec)


def _secs(x: float | None) -> str:
    return "never (not within the budget)" if x is None else f"{x:.1f} s"


def text(s: dict[str, Any], half: Any, ninety: Any) -> str:
    lines = [f"\nPool {s['pool_size']} MOSES molecules, top 1 % = {s['top1pct_count']} lowest values of "
             f"{s['target'].split(',')[0][len('lowest '):]} "
             f"({s['simulations']} real xTB simulations run, {s['failed_simulations']} failed).",
             f"{'simulations to find':<34}{'half of top 1 %':>16}{'90 % of top 1 %':>17}",
             f"{'learning policy (this run)':<34}{_fmt(s['sims_to_top1pct']):>16}{_fmt(s['sims_to_top1pct_90']):>17}",
             f"{'random order (expected)':<34}{_fmt(s['baseline_sims_to_top1pct']):>16}"
             f"{_fmt(s['baseline_sims_to_top1pct_90']):>17}",
             f"{'best heuristic (after the fact)':<34}{_fmt(s['heuristic_sims_to_top1pct']):>16}"
             f"{_fmt(s['heuristic_sims_to_top1pct_90']):>17}",
             f"  the best heuristic at half: {s['heuristic']} (of {s['heuristics_tried']} rankings); "
             f"at 90 %: {s['heuristic_best_at_90pct']['name']} ({s['heuristic_best_at_90pct']['sims']:.0f})",
             f"Wall time {s['wall_s']:.0f} s on {s['cores']} cores, utilisation {s['utilization_pct']:.1f} % "
             f"(core-seconds: " + ", ".join(f"{p} {v:.0f}" for p, v in s["core_s_by_pool"].items()) + ")",
             f"Half of the top 1 % found after {_secs(s['time_to_top1pct_s'])}, 90 % after "
             f"{_secs(s['time_to_top1pct_90_s'])} (wall clock, featurization/training/inference included).",
             "Effective performance (half of the top 1 %):", half.text(),
             "Effective performance (90 % of the top 1 %):", ninety.text(),
             f"Largest |IP or target this run - cached value|: {s['max_abs_ip_difference_vs_cache_ev']:.4f} eV."]
    return "\n".join(lines)


def plot(path: str, ours: np.ndarray, best: dict, count: int, n: int, half: int, ninety: int,
         label: str = "vertical IP") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    k = np.arange(1, n + 1)
    ax.plot(np.arange(1, len(ours) + 1), ours, label="learning policy (RF + UCB, steerflow)", linewidth=2)
    ax.plot(k, best["curve"], label=f"best heuristic: {best['name']}")
    ax.plot(k, k * count / n, label="random order (expected)", linestyle="--")
    for level in (half, ninety):
        ax.axhline(level, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlim(1, n)
    ax.set_xlabel("simulations (log scale)")
    ax.set_ylabel(f"found of the top 1 % ({count} molecules)")
    ax.set_title(f"Lowest {label} (GFN2-xTB) in {n} MOSES molecules")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
