"""The science of example 03: MOSES molecules, GFN2-xTB vertical IP/EA and HOMO-LUMO gap, RDKit features.

The simulation (``xtb_properties``) runs as a steerflow task in a worker process: it imports its
heavy libraries inside (a warm worker keeps them imported) and runs with the one core it was given
(steerflow sets ``OMP_NUM_THREADS`` to the task's cores; tblite is 10-100x slower when threads
oversubscribe the cores).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import random
import time

import numpy as np

HARTREE_EV = 27.211386245988
BOHR_PER_ANGSTROM = 1.0 / 0.52917721092
EMBED_SEED = 0xF00D  # ETKDG's random seed: the same geometry for a molecule on every run
HERE = os.path.dirname(os.path.abspath(__file__))
GROUND_TRUTH = os.path.join(HERE, "data", "moses5000_gfn2.csv.gz")
GROUND_TRUTH_FIELDS = ("index", "smiles", "ip_ev", "ea_ev", "gap_ev", "n_atoms", "seconds")


def moses_smiles() -> list[str]:
    """The 1.58 M SMILES of MOSES' training set, read from the molsets package (no download, no `import moses`)."""
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("This example needs the molsets data: `pip install --no-deps molsets` "
                         "(or `bash scripts/bootstrap.sh demo`).")
    path = os.path.join(list(spec.submodule_search_locations)[0], "dataset", "data", "train.csv.gz")
    with gzip.open(path, "rt") as f:
        reader = csv.reader(f)
        header = next(reader)
        column = header.index("SMILES")
        return [row[column] for row in reader]


def sample_pool(n: int = 5000, seed: int = 2026) -> list[str]:
    """``n`` MOSES molecules drawn with a fixed seed: the campaign's pool (sorted by position in MOSES)."""
    everything = moses_smiles()
    picks = sorted(random.Random(seed).sample(range(len(everything)), n))
    return [everything[i] for i in picks]


def geometry(smiles: str) -> tuple[list[int], np.ndarray]:
    """Atomic numbers and coordinates (Å) from RDKit: ETKDG embedding, then MMFF94 minimisation."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse the SMILES {smiles!r}.")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = EMBED_SEED
    params.numThreads = 1
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError(f"RDKit could not embed {smiles!r} in 3D.")
    AllChem.MMFFOptimizeMolecule(mol, mmffVariant="MMFF94", maxIters=2000)
    numbers = [atom.GetAtomicNum() for atom in mol.GetAtoms()]
    return numbers, np.array(mol.GetConformer().GetPositions(), dtype=float)


def _single_point(numbers: np.ndarray, positions_bohr: np.ndarray, charge: int, uhf: int):
    from tblite.interface import Calculator

    calc = Calculator("GFN2-xTB", numbers, positions_bohr, charge=float(charge), uhf=uhf)
    calc.set("verbosity", 0)
    return calc.singlepoint()


def xtb_properties(smiles: str) -> dict[str, float]:
    """GFN2-xTB (tblite) at the RDKit geometry: vertical IP and EA (eV), HOMO-LUMO gap of the neutral (eV).

    Three single points: neutral, cation (doublet), anion (doublet). IP = E(+) - E(0) and
    EA = E(0) - E(-), without the empirical shift the xtb program adds in its --vipea mode
    (a constant shift, so rankings are the same). ``seconds`` is this call's own cost.
    """
    start = time.perf_counter()
    numbers, xyz = geometry(smiles)
    z = np.array(numbers, dtype=int)
    pos = xyz * BOHR_PER_ANGSTROM
    neutral = _single_point(z, pos, 0, 0)
    energy0 = float(neutral.get("energy"))
    orbitals = np.asarray(neutral.get("orbital-energies"))
    occupations = np.asarray(neutral.get("orbital-occupations"))
    homo = float(orbitals[occupations > 1e-6].max())
    lumo = float(orbitals[occupations <= 1e-6].min())
    cation = float(_single_point(z, pos, 1, 1).get("energy"))
    anion = float(_single_point(z, pos, -1, 1).get("energy"))
    return {"ip_ev": (cation - energy0) * HARTREE_EV, "ea_ev": (energy0 - anion) * HARTREE_EV,
            "gap_ev": (lumo - homo) * HARTREE_EV, "n_atoms": len(numbers),
            "seconds": time.perf_counter() - start}


def read_ground_truth(path: str = GROUND_TRUTH) -> list[dict]:
    """The cached sweep, one dict per pool molecule in pool order (see sweep.py for how it was made)."""
    if not os.path.exists(path):
        raise SystemExit(f"{path} does not exist yet: run `python {os.path.join(HERE, 'sweep.py')}` to compute it.")
    with gzip.open(path, "rt") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({"index": int(r["index"]), "smiles": r["smiles"], "ip_ev": float(r["ip_ev"]),
                    "ea_ev": float(r["ea_ev"]), "gap_ev": float(r["gap_ev"]), "n_atoms": int(r["n_atoms"]),
                    "seconds": float(r["seconds"])})
    return out


def write_ground_truth(rows: list[dict], path: str = GROUND_TRUTH) -> None:
    """Write the sweep compactly (4 decimals for energies, 3 for seconds); ``mtime=0`` keeps the bytes reproducible."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        text = [",".join(GROUND_TRUTH_FIELDS)]
        for r in rows:
            text.append(f"{r['index']},{r['smiles']},{r['ip_ev']:.4f},{r['ea_ev']:.4f},{r['gap_ev']:.4f},"
                        f"{r['n_atoms']},{r['seconds']:.3f}")
        gz.write(("\n".join(text) + "\n").encode())
    os.replace(tmp, path)
