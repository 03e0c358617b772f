def vertical_ip_smiles(smiles: str, seed: int = 42) -> float:
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
    pos = mol.GetConformer().GetPositions()
    elements = [a.GetSymbol() for a in mol.GetAtoms()]
    neutral = Atoms(elements, positions=pos)
    neutral.calc = TBLite(method="GFN2-xTB", verbosity=0)
    cation = Atoms(elements, positions=pos)
    cation.calc = TBLite(method="GFN2-xTB", charge=1, multiplicity=2, verbosity=0)
    return float(cation.get_potential_energy() - neutral.get_potential_energy())
