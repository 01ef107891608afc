"""One KIM portable model driven through kimpy, the KIM way (no test collection here).

Used by tests/test_kim.py and tests/c/kim/check_kim.py. Importing this module
needs kimpy (and so the KIM API); callers skip before importing it.
"""

from __future__ import annotations

import numpy as np

import kimpy
from kimpy import neighlist as nl


class KimRunner:
    """A KIM model with one set of compute arguments: periodic cells get padding
    atoms (non-contributing particles, with neighbour lists when the model asks
    for them), clusters none; energy, site energies, forces (padding forces
    folded back onto their masters) and virial.

    Parameters
    ----------
    name : str
        An installed KIM portable model (metal units: Å, eV).
    """

    def __init__(self, name: str):
        accepted, self.model = kimpy.model.create(
            kimpy.numbering.zeroBased, kimpy.length_unit.A, kimpy.energy_unit.eV,
            kimpy.charge_unit.e, kimpy.temperature_unit.K, kimpy.time_unit.ps, name)
        assert accepted, f"{name}: units not accepted"
        self.ca = self.model.compute_arguments_create()
        self.neigh = nl.create()
        self.codes: dict[str, int] = {}

    def code(self, symbol: str) -> int:
        """The model's species code of ``symbol``; AssertionError if it has none."""
        if symbol not in self.codes:
            ok, code = self.model.get_species_support_and_code(getattr(kimpy.species_name, symbol))
            assert ok, f"the KIM model does not support species {symbol}"
            self.codes[symbol] = code
        return self.codes[symbol]

    def params(self) -> dict[str, tuple[int, int, str]]:
        """KIM parameter name → (index, extent, description)."""
        out = {}
        for i in range(self.model.get_number_of_parameters()):
            _, extent, pname, descr = self.model.get_parameter_metadata(i)
            out[pname] = (i, extent, descr)
        return out

    def compute(self, atoms):
        """(energy [eV], site energies shape (n,) [eV], forces shape (n, 3) [eV/Å],
        virial shape (6,) [eV], KIM's partialVirial Σ r ⊗ ∂E/∂r, xx yy zz yz xz xy)."""
        infl = self.model.get_influence_distance()
        cutoffs, hints = self.model.get_neighbor_list_cutoffs_and_hints()
        n = len(atoms)
        x = np.ascontiguousarray(atoms.positions, dtype=np.double)
        spc = np.ascontiguousarray([self.code(s) for s in atoms.get_chemical_symbols()], dtype=np.intc)
        if atoms.pbc.any():
            cell = np.ascontiguousarray(atoms.cell[:], dtype=np.double)
            pbc = np.ascontiguousarray(atoms.pbc, dtype=np.intc)
            px, ps, pimage = nl.create_paddings(infl, cell, pbc, x, spc)
            px = np.asarray(px).reshape(-1, 3)
        else:
            px, ps, pimage = np.zeros((0, 3)), np.zeros(0, np.intc), np.zeros(0, int)
        npad = len(px)
        self.x = np.ascontiguousarray(np.vstack([x, px]), dtype=np.double)
        self.species = np.ascontiguousarray(np.concatenate([spc, ps]), dtype=np.intc)
        self.contrib = np.ascontiguousarray(np.r_[np.ones(n), np.zeros(npad)], dtype=np.intc)
        need = np.ones(n + npad, dtype=np.intc)
        if hints[0] == 1:
            need[n:] = 0
        self.n_total = np.array([n + npad], dtype=np.intc)
        self.energy = np.zeros(1)
        self.pe = np.zeros(n + npad)
        self.forces = np.zeros((n + npad, 3))
        self.virial = np.zeros(6)
        CAN = kimpy.compute_argument_name
        self.ca.set_argument_pointer(CAN.numberOfParticles, self.n_total)
        self.ca.set_argument_pointer(CAN.particleSpeciesCodes, self.species)
        self.ca.set_argument_pointer(CAN.particleContributing, self.contrib)
        self.ca.set_argument_pointer(CAN.coordinates, self.x)
        self.ca.set_argument_pointer(CAN.partialEnergy, self.energy)
        self.ca.set_argument_pointer(CAN.partialParticleEnergy, self.pe)
        self.ca.set_argument_pointer(CAN.partialForces, self.forces)
        self.ca.set_argument_pointer(CAN.partialVirial, self.virial)
        self.neigh.build(self.x, infl, np.asarray(cutoffs, dtype=np.double), need)
        self.ca.set_callback_pointer(kimpy.compute_callback_name.GetNeighborList, nl.get_neigh_kim(), self.neigh)
        self.model.compute(self.ca)
        F = self.forces[:n].copy()
        np.add.at(F, np.asarray(pimage, dtype=int), self.forces[n:])
        return float(self.energy[0]), self.pe[:n].copy(), F, self.virial.copy()

    def energy_of(self, atoms) -> float:
        return self.compute(atoms)[0]
