"""Label-free features of molecules: what the surrogate learns from and what the heuristics rank by.

- ``surrogate_features``: Morgan count fingerprints (radius 2) next to a set of cheap RDKit
  descriptors. It runs as a task inside the campaign (its cost is part of the ML's wall time)
  and writes a ``.npy`` file that training tasks read, so the matrix never travels by message.
- ``all_descriptors``: every RDKit descriptor (~217) plus hydrogens per heavy atom, for the
  label-free baseline: each one, in both directions, is a heuristic ranking of the pool, and the
  best of them is chosen after the fact on the ground truth (which favours the heuristic).
"""

from __future__ import annotations

import os
import time

import numpy as np

# RDKit descriptors that cost more than ~0.3 ms per molecule are left out of the surrogate's features
# (qed alone is 3.6 ms: on 5,000 molecules, the cost of ~60 simulations). The heuristics use them all.
EXPENSIVE = {"qed", "BCUT2D_MWHI", "BCUT2D_MWLOW", "BCUT2D_CHGHI", "BCUT2D_CHGLO", "BCUT2D_LOGPHI",
             "BCUT2D_LOGPLOW", "BCUT2D_MRHI", "BCUT2D_MRLOW", "BertzCT", "AvgIpc", "Ipc", "SPS",
             "MinEStateIndex", "MaxAbsEStateIndex", "MinAbsEStateIndex", "MaxEStateIndex", "MolLogP",
             "BalabanJ", "Chi4v", "Chi4n", "Chi3n", "Chi3v", "Chi2n", "Chi2v", "SMR_VSA1"}


def _mols(smiles: list[str]) -> list:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return [Chem.MolFromSmiles(s) for s in smiles]


def h_per_heavy(mol) -> float:
    """Hydrogens per heavy atom: the label-free rule that won on QM9's lowest IP (SCIENCE.md)."""
    heavy = mol.GetNumHeavyAtoms()
    return sum(a.GetTotalNumHs() for a in mol.GetAtoms()) / max(1, heavy)


def descriptor_names(cheap_only: bool) -> list[str]:
    from rdkit.Chem import Descriptors

    return [n for n, _ in Descriptors._descList if not (cheap_only and n in EXPENSIVE)]


def descriptors(smiles: list[str], cheap_only: bool) -> tuple[list[str], np.ndarray]:
    """RDKit descriptors of each molecule (NaN where RDKit fails), plus ``H_per_heavy``."""
    from rdkit.Chem import Descriptors

    table = dict(Descriptors._descList)
    names = descriptor_names(cheap_only)
    out = np.full((len(smiles), len(names) + 1), np.nan, dtype=np.float64)
    for i, mol in enumerate(_mols(smiles)):
        if mol is None:
            continue
        for j, name in enumerate(names):
            try:
                out[i, j] = table[name](mol)
            except Exception:  # noqa: BLE001 - a descriptor RDKit cannot compute for this molecule stays NaN
                pass
        out[i, -1] = h_per_heavy(mol)
    return [*names, "H_per_heavy"], out


def morgan_counts(smiles: list[str], bits: int = 2048, radius: int = 2) -> np.ndarray:
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(smiles), bits), dtype=np.float32)
    for i, mol in enumerate(_mols(smiles)):
        if mol is not None:
            out[i] = generator.GetCountFingerprintAsNumPy(mol)
    return out


def surrogate_matrix(smiles: list[str], bits: int = 2048, use_descriptors: bool = True) -> np.ndarray:
    """The surrogate's input: Morgan counts, then the cheap descriptors (float32, NaN/inf replaced by 0)."""
    parts = [morgan_counts(smiles, bits)] if bits > 0 else []  # bits=0: descriptors only
    if use_descriptors:
        parts.append(descriptors(smiles, cheap_only=True)[1].astype(np.float32))
    x = np.hstack(parts)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def surrogate_features(smiles: list[str], path: str, bits: int = 2048, use_descriptors: bool = True) -> dict:
    """Task body: compute the surrogate's features and save them to ``path`` (``.npy``); returns the shape and cost."""
    start = time.perf_counter()
    x = surrogate_matrix(smiles, bits, use_descriptors)
    tmp = path + ".tmp.npy"
    np.save(tmp, x)
    os.replace(tmp, path)
    return {"path": path, "shape": list(x.shape), "seconds": time.perf_counter() - start}
