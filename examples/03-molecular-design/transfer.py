"""Transfer from public data: a QM9 HOMO model as the prior mean of the campaign's surrogate.

QM9 (130,831 small molecules with B3LYP HOMO energies) ships inside the ``qm9pack`` package, so
no download is needed and no label of this pool is used. A forest fitted on a random sample of
QM9, on the same cheap RDKit descriptors the policy uses, predicts each pool molecule's HOMO; the
campaign's surrogate then fits a line IP ~ a * HOMO + b on its own results and the forest learns
what the line misses (``policy.fit_and_rank``). By Koopmans' theorem the IP is roughly -HOMO, but
the QM9 model alone ranks this pool poorly (Spearman -0.5; it extrapolates from molecules of at
most 9 heavy atoms to drug-like ones), so it is a prior, not an answer. For honesty the ranking by
this model also joins the label-free heuristics the policy is compared with (analysis.py).

It runs as a task of the campaign (pool ``learn``), so its cost (reading QM9, featurizing the
sample, fitting) is in the wall time.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import time

import numpy as np

HARTREE_EV = 27.211386245988
PRIOR_NAME = "QM9-model HOMO (transfer)"


QM9_COLUMN = {"ip_ev": "HOMO_au", "gap_ev": "HOMO_LUMO_gap_au"}  # the QM9 property that stands in for each target


def qm9_rows(column: str = "HOMO_au") -> tuple[list[str], np.ndarray]:
    """QM9's SMILES and one B3LYP property in eV (``column``: HOMO by default), from the qm9pack package's csv files."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The QM9 prior needs `pip install --no-deps qm9pack` (or `bash scripts/bootstrap.sh demo`); "
                         "or run without it: --transfer 0.")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    csv.field_size_limit(1 << 30)  # the XYZ and frequency columns are long
    smiles, homo = [], []
    for part in (1, 2, 3):
        with open(os.path.join(folder, f"qm9_part{part}.csv"), newline="") as f:
            for row in csv.DictReader(f):
                smiles.append(row["SMILES"])
                homo.append(float(row[column]) * HARTREE_EV)
    return smiles, np.array(homo)


def qm9_prior(features_paths: str | tuple[str, ...], n: int, path: str, target: str = "ip_ev", bits: int = 0,
              seed: int = 0) -> dict:
    """Task body: fit a forest on ``n`` random QM9 molecules (HOMO from descriptors; the gap for ``gap_ev``),
    predict the pool, save to ``path``. The sample and the forest have a fixed seed: every run gets the same prior."""
    from features import surrogate_matrix
    from policy import load_features
    from steerflow import learn

    start = time.perf_counter()
    smiles, homo = qm9_rows(QM9_COLUMN[target])
    pick = np.random.default_rng(seed).permutation(len(smiles))[:n]
    x = surrogate_matrix([smiles[i] for i in pick], bits)  # the same features as the pool's (``bits``: Morgan counts)
    read = time.perf_counter()
    model = learn.Forest(n_estimators=100, max_features=0.3, min_samples_leaf=2, seed=seed).fit(x, homo[pick])
    prediction, _ = model.predict(np.asarray(load_features(features_paths)))
    tmp = path + ".tmp.npy"
    np.save(tmp, prediction.astype(np.float32))
    os.replace(tmp, path)
    return {"path": path, "n_qm9": int(n), "featurize_s": read - start, "seconds": time.perf_counter() - start}
