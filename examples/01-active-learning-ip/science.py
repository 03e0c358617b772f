"""The science of the demo: MOSES drug-like molecules, GFN2-xTB vertical ionisation potentials, features.

``vertical_ip`` runs as a steerflow task in a warm worker, so it imports its heavy libraries
inside (the worker keeps them imported) and uses the one core it was given. The ground truth
in ``data/moses-vertical-ip.csv`` was computed with this same function by
``make_ground_truth.py``; the campaign checks that what it simulates matches it.
"""

from __future__ import annotations

import csv
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "moses-vertical-ip.csv")


def vertical_ip(smiles: str, seed: int = 42) -> float:
    """GFN2-xTB vertical IP (eV) = E(cation) - E(neutral) at an RDKit ETKDG + MMFF94 geometry (no IPEA shift)."""
    from ase import Atoms
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from tblite.ase import TBLite

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise ValueError(f"RDKit could not embed {smiles}")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    positions = mol.GetConformer().GetPositions()
    elements = [a.GetSymbol() for a in mol.GetAtoms()]
    neutral = Atoms(elements, positions=positions)
    neutral.calc = TBLite(method="GFN2-xTB", verbosity=0)
    cation = Atoms(elements, positions=positions)
    cation.calc = TBLite(method="GFN2-xTB", charge=1, multiplicity=2, verbosity=0)
    return float(cation.get_potential_energy() - neutral.get_potential_energy())


_TABLE: dict[str, float] = {}


def replayed_ip(smiles: str, seconds: float = 0.16) -> float:
    """The ground-truth file's value after ``seconds`` of sleep: for trying the knobs fast (``--replay``)."""
    import time

    if not _TABLE:
        _TABLE.update(load_pool()[1])
    time.sleep(seconds)
    return _TABLE[smiles]


def load_pool(n: int | None = None, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """The candidate SMILES (``n`` drawn at random, default all) and their ground-truth IPs from the data file."""
    with open(DATA) as f:
        rows = [r for r in csv.DictReader(f) if not r["smiles"].startswith("#") and r["ip_ev"] != "nan"]
    if n is not None and n < len(rows):
        rows = [rows[i] for i in np.random.default_rng(seed).choice(len(rows), n, replace=False)]
    return [r["smiles"] for r in rows], {r["smiles"]: float(r["ip_ev"]) for r in rows}


DESCRIPTORS = ("H per heavy atom", "heavy atoms", "aromatic rings", "molar refractivity", "TPSA", "logP",
               "fraction sp3", "H-bond donors", "Bertz complexity")


def descriptors(smiles: list[str]) -> np.ndarray:
    """Cheap label-free RDKit descriptors, one row per molecule (columns: DESCRIPTORS)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors, rdMolDescriptors

    RDLogger.DisableLog("rdApp.*")
    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        heavy = m.GetNumHeavyAtoms()
        hydrogens = sum(a.GetTotalNumHs() for a in m.GetAtoms())
        out.append([hydrogens / heavy, heavy, rdMolDescriptors.CalcNumAromaticRings(m), Descriptors.MolMR(m),
                    Descriptors.TPSA(m), Descriptors.MolLogP(m), rdMolDescriptors.CalcFractionCSP3(m),
                    rdMolDescriptors.CalcNumHBD(m), Descriptors.BertzCT(m)])
    return np.asarray(out, dtype=float)


def features(smiles: list[str], bits: int = 1024) -> np.ndarray:
    """The models' features: Morgan count fingerprints (radius 2) and the descriptors."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    fps = np.stack([generator.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles]).astype(float)
    return np.hstack([fps, descriptors(smiles)])
