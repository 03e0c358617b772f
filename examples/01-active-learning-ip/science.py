"""The science of the demo: MOSES drug-like molecules, GFN2-xTB vertical ionisation potentials, features.

``vertical_ip`` runs as a steerflow task in a warm worker, so it imports its heavy libraries
inside (the worker keeps them imported) and uses the one core it was given. The ground truth is
the sweep that example 03 ships (``examples/03-molecular-design/data/moses5000_gfn2.csv.gz``,
5,000 MOSES molecules, made by its ``sweep.py``); ``vertical_ip`` uses the same geometry recipe
(ETKDG seed 0xF00D, then MMFF94) and the same two single points, and the campaign checks that
what it simulates matches the file.
"""

from __future__ import annotations

import csv
import gzip
import os
import time

import numpy as np

HARTREE_EV = 27.211386245988
BOHR_PER_ANGSTROM = 1.0 / 0.52917721092
EMBED_SEED = 0xF00D
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "03-molecular-design", "data", "moses5000_gfn2.csv.gz")


def vertical_ip(smiles: str) -> float:
    """GFN2-xTB vertical IP (eV) = E(cation) - E(neutral) at an RDKit ETKDG + MMFF94 geometry (no IPEA shift)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem
    from tblite.interface import Calculator

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = EMBED_SEED
    params.numThreads = 1
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError(f"RDKit could not embed {smiles!r} in 3D.")
    AllChem.MMFFOptimizeMolecule(mol, mmffVariant="MMFF94", maxIters=2000)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=int)
    positions = np.array(mol.GetConformer().GetPositions(), dtype=float) * BOHR_PER_ANGSTROM
    energies = []
    for charge, uhf in ((0, 0), (1, 1)):
        calc = Calculator("GFN2-xTB", numbers, positions, charge=float(charge), uhf=uhf)
        calc.set("verbosity", 0)
        energies.append(float(calc.singlepoint().get("energy")))
    return (energies[1] - energies[0]) * HARTREE_EV


_TABLE: dict[str, float] = {}


def replayed_ip(smiles: str, seconds: float = 0.2) -> float:
    """The ground-truth file's value after ``seconds`` of sleep: for trying the knobs fast (``--replay``)."""
    if not _TABLE:
        _TABLE.update(load_pool()[1])
    time.sleep(seconds)
    return _TABLE[smiles]


def load_pool(n: int | None = None, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """The candidate SMILES (``n`` drawn at random, default all 5,000) and their ground-truth IPs."""
    if not os.path.exists(DATA):
        raise SystemExit(f"The ground truth {os.path.normpath(DATA)} is missing; it ships with example 03 "
                         "(regenerate it with examples/03-molecular-design/sweep.py).")
    with gzip.open(DATA, "rt") as f:
        rows = [r for r in csv.DictReader(f) if r["ip_ev"] not in ("", "nan")]
    if n is not None and n < len(rows):
        rows = [rows[i] for i in sorted(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
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


def features(smiles: list[str], bits: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The models' features (Morgan count fingerprints, radius 2, and the descriptors) and the descriptors alone."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    fps = np.stack([generator.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles]).astype(float)
    desc = descriptors(smiles)
    return np.hstack([fps, desc]), desc
