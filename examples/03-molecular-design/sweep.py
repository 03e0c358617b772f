"""Ground truth for example 03: GFN2-xTB on every molecule of the pool, as a steerflow campaign of its own.

One task per molecule (one core each, ``OMP_NUM_THREADS=1``), as many at once as the machine has
cores. Kill it at any moment and run the same command again: it resumes from its journal, and no
molecule finished before the kill is computed again. When every molecule is done it writes
``data/moses5000_gfn2.csv.gz`` (or ``--out``).

Run: python examples/03-molecular-design/sweep.py               (5,000 molecules: ~25 min on 2 idle cores)
     python examples/03-molecular-design/sweep.py --size 20 --dir /tmp/s --out /tmp/s/gt.csv.gz
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import steerflow as sf  # noqa: E402
from science import GROUND_TRUTH, sample_pool, write_ground_truth, xtb_properties  # noqa: E402

POOL_SEED = 2026


class Sweep(sf.Agent):
    """Submit every molecule once; keep what comes back (failures as NaN, so the file says which failed)."""

    def __init__(self, pool: list[str]) -> None:
        self.pool = pool
        self.values: dict[int, dict] = {}
        self.failed: dict[int, str] = {}
        self.started = time.time()

    @sf.on_start
    def begin(self, ctx: sf.Context) -> None:
        for i, smiles in enumerate(self.pool):
            ctx.submit(sf.Function(xtb_properties, args=(smiles,), pool="simulate", cores=1, timeout=600,
                                   retries=1, tags=(str(i),)))

    @sf.on_result(pool="simulate")
    def simulated(self, result: sf.Result, ctx: sf.Context) -> None:
        i = int(result.tags[0])
        if result.ok:
            self.values[i] = result.value
        else:
            self.failed[i] = str(result.error)
        done = len(self.values) + len(self.failed)
        if done % 250 == 0 and not ctx.replaying:
            rate = done / max(time.time() - self.started, 1e-9)
            print(f"[sweep] {done}/{len(self.pool)} molecules ({len(self.failed)} failed), "
                  f"{rate:.2f}/s since this start", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=5000, help="molecules in the pool (drawn from MOSES' train set)")
    parser.add_argument("--seed", type=int, default=POOL_SEED, help="seed of the pool's draw from MOSES")
    parser.add_argument("--dir", default="runs/moses-sweep", help="the sweep's campaign directory (resumable)")
    parser.add_argument("--out", default=GROUND_TRUTH, help="where the compressed ground truth goes")
    args = parser.parse_args()

    pool = sample_pool(args.size, seed=args.seed)
    cores = sf.Allocation.detect().total_cores
    resume = os.path.exists(os.path.join(args.dir, "journal.db"))
    print(f"[sweep] {args.size} molecules on {cores} cores in {args.dir}"
          f"{' (resuming)' if resume else ''}", flush=True)
    camp = sf.Campaign(args.dir, pools={"simulate": {"cores": cores}}, resume=resume)
    sweep = camp.add_agent(Sweep(pool))
    summary = camp.run()
    nan = {"ip_ev": math.nan, "ea_ev": math.nan, "gap_ev": math.nan, "n_atoms": 0, "seconds": math.nan}
    rows = [{"index": i, "smiles": s, **sweep.values.get(i, nan)} for i, s in enumerate(pool)]
    missing = len(pool) - len(sweep.values) - len(sweep.failed)
    if missing:
        raise SystemExit(f"{missing} molecules have no result yet: run the same command again to finish.")
    write_ground_truth(rows, args.out)
    print(f"[sweep] wrote {args.out}: {len(sweep.values)} molecules, {len(sweep.failed)} failed, "
          f"{summary['elapsed_s']:.0f} s this run", flush=True)


if __name__ == "__main__":
    main()
