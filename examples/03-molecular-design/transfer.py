"""Transfer from public data: a QM9 HOMO model as the prior mean of the campaign's surrogate.

QM9 (130,831 small molecules with B3LYP HOMO energies) ships inside the ``qm9pack`` package: no
download, and no label of this pool. ``python transfer.py`` fits, once, a ridge regression of the
HOMO (eV) on the policy's cheap RDKit descriptors of 20,000 random QM9 molecules and writes its
coefficients to ``data/qm9_homo_ridge.json`` (13 kB; 170 s on one core of the loaded dev
machine, mostly featurizing the 20,000 molecules). Like any pretrained model, its training is not part of a campaign; using it is a dot
product with the pool's descriptors, which the campaign computes anyway.

The campaign's surrogate fits a line IP ~ a * prior + b on its own results, and the forest learns
what the line misses (``policy.fit_and_rank``): by Koopmans' theorem the IP is roughly -HOMO. A
linear model, rather than a forest, because it extrapolates from QM9's molecules (at most 9 heavy
atoms) to drug-like ones; a forest's prior helped less in replays. For honesty the ranking by this
model also joins the label-free heuristics the policy is compared with (analysis.py) — and it is
a good one on its own: it needs fewer simulations than any RDKit descriptor, so it raises the bar.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
import time

import numpy as np

HARTREE_EV = 27.211386245988
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "data", "qm9_homo_ridge.json")
PRIOR_NAME = "QM9-model HOMO (transfer)"


def qm9_rows(column: str = "HOMO_au") -> tuple[list[str], np.ndarray]:
    """QM9's SMILES and one B3LYP property in eV (``column``: HOMO by default), from the qm9pack package's csv files."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Making the QM9 prior needs `pip install --no-deps qm9pack` (or `bash scripts/bootstrap.sh demo`).")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    csv.field_size_limit(1 << 30)  # the XYZ and frequency columns are long
    smiles, values = [], []
    for part in (1, 2, 3):
        with open(os.path.join(folder, f"qm9_part{part}.csv"), newline="") as f:
            for row in csv.DictReader(f):
                smiles.append(row["SMILES"])
                values.append(float(row[column]) * HARTREE_EV)
    return smiles, np.array(values)


_LOADED: dict[str, dict] = {}


def load_model(path: str = MODEL) -> dict:
    model = _LOADED.get(path)
    if model is None:
        if not os.path.exists(path):
            raise SystemExit(f"{path} does not exist: run `python {os.path.join(HERE, 'transfer.py')}` to make it, "
                             "or run the campaign with --transfer 0.")
        with open(path) as f:
            model = _LOADED[path] = json.load(f)
    return model


def prior(features: np.ndarray, path: str = MODEL) -> np.ndarray:
    """The QM9 model's HOMO (eV) for each row of the surrogate's features (its last columns are the cheap descriptors)."""
    model = load_model(path)
    coef = np.asarray(model["coef"])
    x = np.asarray(features, dtype=float)[:, -len(coef):]
    z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
    return np.clip(z @ coef + model["intercept"], *model["clip"])


def make(n: int = 20000, seed: int = 0, path: str = MODEL) -> dict:
    """Fit the ridge model on ``n`` random QM9 molecules and write it to ``path`` (run once; the file is in the repo)."""
    from sklearn.linear_model import RidgeCV

    from features import descriptor_names, surrogate_matrix

    start = time.time()
    smiles, homo = qm9_rows()
    pick = np.random.default_rng(seed).permutation(len(smiles))[:n]
    x = surrogate_matrix([smiles[i] for i in pick], bits=0).astype(float)
    y = homo[pick]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    ridge = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit((x - mean) / scale, y)
    model = {"what": "ridge regression of QM9's B3LYP HOMO (eV) on example 03's cheap RDKit descriptors "
                     "(features.surrogate_matrix, bits=0), standardized",
             "source": "qm9pack (QM9, 130,831 molecules)", "n_train": int(n), "sample_seed": seed,
             "alpha": float(ridge.alpha_), "features": [*descriptor_names(cheap_only=True), "H_per_heavy"],
             "mean": mean.tolist(), "scale": scale.tolist(), "coef": ridge.coef_.tolist(),
             "intercept": float(ridge.intercept_), "clip": [float(y.min() - 2.0), float(y.max() + 2.0)],
             "seconds": round(time.time() - start, 1)}
    with open(path + ".tmp", "w") as f:
        json.dump(model, f)
    os.replace(path + ".tmp", path)
    return model


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    made = make()
    print(f"wrote {MODEL}: ridge (alpha {made['alpha']:.3g}) on {made['n_train']} QM9 molecules in {made['seconds']} s")
