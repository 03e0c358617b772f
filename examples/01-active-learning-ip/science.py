"""The science of the demo: QM9 molecules, GFN2-xTB ionisation potentials, a forest surrogate.

These functions run as steerflow tasks in worker processes, so they import their heavy
libraries inside (a warm worker keeps them imported) and use the cores they were given.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random

import numpy as np

HARTREE_EV = 27.211386


def load_qm9(n: int, seed: int = 2024) -> list[dict]:
    """``n`` molecules drawn from QM9 as shipped inside the qm9pack package (no download)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The demo needs qm9pack: run `bash scripts/bootstrap.sh demo` first.")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "qm9_part1.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    rows = [r for r in rows if int(r["N_atoms"]) >= 6]
    random.Random(seed).shuffle(rows)
    return [{"smiles": r["SMILES"], "elements": json.loads(r["Elements"].replace("'", '"')),
             "xyz": json.loads(r["XYZ_Ang"]), "homo_ev": float(r["HOMO_au"]) * HARTREE_EV} for r in rows[:n]]


def fingerprints(smiles: list[str], bits: int = 1024) -> np.ndarray:
    """Morgan count fingerprints (radius 2): the surrogate's features."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    out = np.zeros((len(smiles), bits), dtype=np.float32)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        if mol is not None:
            out[i] = generator.GetCountFingerprintAsNumPy(mol)
    return out


def vertical_ip(elements: list[str], xyz: list[list[float]]) -> float:
    """GFN2-xTB vertical ionisation potential (eV): E(cation) - E(neutral) at the QM9 geometry."""
    from ase import Atoms
    from tblite.ase import TBLite

    neutral = Atoms(elements, positions=xyz)
    neutral.calc = TBLite(method="GFN2-xTB", verbosity=0)
    cation = Atoms(elements, positions=xyz)
    cation.calc = TBLite(method="GFN2-xTB", charge=1, multiplicity=2, verbosity=0)
    return float(cation.get_potential_energy() - neutral.get_potential_energy())


def fit_forest(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """A random forest whose per-tree spread is the uncertainty (cheap and it tracks the error)."""
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=100, min_samples_leaf=1, random_state=seed,
                                  n_jobs=int(os.environ.get("OMP_NUM_THREADS", "1")))
    return model.fit(x, y)


def predict_with_std(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    per_tree = np.stack([tree.predict(x) for tree in model.estimators_])
    return per_tree.mean(axis=0), per_tree.std(axis=0)
