"""Recompute data/moses-vertical-ip.csv: GFN2-xTB vertical IPs of MOSES training molecules (slow: ~0.2 s each).

Needs the MOSES data files: ``pip install --no-deps molsets`` (its declared torch is not needed).
Run under ``nice``: ``nice -n 19 python make_ground_truth.py --n 4500`` (~15 min on one core).
The demo only reads the CSV; it never needs this script.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from science import DATA, vertical_ip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4500)
    parser.add_argument("--seed", type=int, default=7, help="shuffle of the MOSES training set")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Install the MOSES data first: pip install --no-deps molsets")
    path = os.path.join(list(spec.submodule_search_locations)[0], "dataset", "data", "train.csv.gz")
    with gzip.open(path, "rt") as f:
        smiles = [r["SMILES"] for r in csv.DictReader(f)]
    random.Random(args.seed).shuffle(smiles)
    with open(DATA, "w") as out:
        out.write("smiles,ip_ev\n")
        for s in smiles[:args.n]:
            try:
                ip = vertical_ip(s)
            except Exception:  # noqa: BLE001 - a molecule RDKit cannot embed: kept as nan, skipped by the demo
                ip = float("nan")
            out.write(f"{s},{ip:.4f}\n")
            out.flush()


if __name__ == "__main__":
    main()
