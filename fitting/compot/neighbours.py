"""Neighbour lists of a batch of configurations, flattened into one system.

Several configurations are concatenated so that every model quantity is a
vectorised NumPy operation over all atoms (suffix ``_n``) or all neighbour
pairs (suffix ``_p``) of the batch. Periodic images are mapped back to their
original atoms (index ``j_p``), so per-atom cluster functions of neighbours,
φ(j), are those of the original atom, as periodicity requires; cells smaller
than the cutoff are handled by the neighbour-list library.

Neighbour lists come from matscipy (periodic cells) or ASE (otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from .errors import SpeciesError
from .functions import cutoff_fdf

__all__ = ["System", "neighbour_pairs"]


#: Voigt order of stress and virial components (ASE): xx, yy, zz, yz, xz, xy, as
#: (row, column) index pairs of the 3×3 tensor.
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_to_matrix(v: np.ndarray) -> np.ndarray:
    """Symmetric 3×3 tensors from Voigt vectors.

    Parameters
    ----------
    v : ndarray, shape (..., 6) — components in :data:`VOIGT_PAIRS` order (any unit)

    Returns
    -------
    ndarray, shape (..., 3, 3) — the same unit
    """
    v = np.asarray(v, dtype=float)
    out = np.zeros(v.shape[:-1] + (3, 3))
    for k, (a, b) in enumerate(VOIGT_PAIRS):
        out[..., a, b] = v[..., k]
        out[..., b, a] = v[..., k]
    return out


def neighbour_pairs(atoms: Atoms, cutoff: float):
    """Full neighbour list (both directions) of one configuration.

    Parameters
    ----------
    atoms : ase.Atoms
    cutoff : float [Å]

    Returns
    -------
    i_p, j_p : ndarray of int, shape (n_pairs,)
        centre and neighbour atom (original index; images map back).
    D_pc : ndarray, shape (n_pairs, 3) [Å]
        vector r_j − r_i including the periodic shift.
    """
    if atoms.pbc.all() and abs(atoms.cell.volume) > 1e-12:
        from matscipy.neighbours import neighbour_list
        i, j, D = neighbour_list("ijD", atoms, cutoff)
    else:
        from ase.neighborlist import neighbor_list
        i, j, D = neighbor_list("ijD", atoms, cutoff, self_interaction=False)
    return i.astype(np.int64), j.astype(np.int64), np.asarray(D, dtype=float)


@dataclass
class System:
    """A batch of configurations with their neighbour pairs.

    Attributes (n = atoms of the batch, p = neighbour pairs, m = configurations)
    ----------
    species_n : int array (n,) — species index into the model's species
    config_n : int array (n,) — configuration of each atom
    i_p, j_p : int arrays (p,) — centre and neighbour atoms (batch indices)
    D_pc : (p, 3) [Å]; r_p : (p,) [Å]; u_pc : (p, 3) unit vectors r̂_ij
    fc_p, dfc_p : (p,) cutoff and its derivative
    volume_m : (m,) [Å³] (0 for non-periodic configurations)
    n_atoms_m : (m,)
    """

    species_n: np.ndarray
    config_n: np.ndarray
    i_p: np.ndarray
    j_p: np.ndarray
    D_pc: np.ndarray
    r_p: np.ndarray
    u_pc: np.ndarray
    fc_p: np.ndarray
    dfc_p: np.ndarray
    volume_m: np.ndarray
    n_atoms_m: np.ndarray
    cutoff: float
    n_species: int

    @classmethod
    def from_atoms(cls, atoms_list, species: tuple[str, ...], cutoff: float, sources=None) -> "System":
        """Build a batch from ase.Atoms objects (or compot Configurations).

        Parameters
        ----------
        atoms_list : sequence of ase.Atoms or objects with ``to_atoms()``
        species : tuple of str — the model's species, in order
        cutoff : float [Å]
        sources : optional sequence of str naming each configuration in errors

        Raises
        ------
        SpeciesError
            If a configuration contains a species the model does not have
            (naming the configuration, the species and the allowed ones).
        """
        index = {s: k for k, s in enumerate(species)}
        spec, conf, ii, jj, DD, vol, nat = [], [], [], [], [], [], []
        offset = 0
        for m, at in enumerate(atoms_list):
            if not isinstance(at, Atoms):
                at = at.to_atoms()
            syms = at.get_chemical_symbols()
            bad = sorted(set(syms) - set(index))
            if bad:
                name = sources[m] if sources is not None else f"configuration {m}"
                raise SpeciesError(f"{name}: species {', '.join(bad)} not supported by the model; "
                                   f"expected only {', '.join(species)}")
            spec.append(np.fromiter((index[s] for s in syms), dtype=np.int64, count=len(syms)))
            conf.append(np.full(len(at), m, dtype=np.int64))
            i, j, D = neighbour_pairs(at, cutoff)
            ii.append(i + offset)
            jj.append(j + offset)
            DD.append(D)
            vol.append(abs(at.cell.volume) if at.pbc.any() else 0.0)
            nat.append(len(at))
            offset += len(at)
        D_pc = np.concatenate(DD) if DD else np.zeros((0, 3))
        r_p = np.sqrt(np.einsum("pc,pc->p", D_pc, D_pc))
        fc, dfc = cutoff_fdf(r_p, cutoff)
        return cls(np.concatenate(spec), np.concatenate(conf), np.concatenate(ii), np.concatenate(jj),
                   D_pc, r_p, D_pc / r_p[:, None], fc, dfc, np.array(vol), np.array(nat), float(cutoff),
                   len(species))

    def subset_pairs(self, sel: np.ndarray) -> "System":
        """The same atoms and configurations with only the pairs ``sel`` (indices into
        this system's pairs), e.g. those a term with a shorter cutoff sees (issue 13)."""
        return System(self.species_n, self.config_n, self.i_p[sel], self.j_p[sel], self.D_pc[sel],
                      self.r_p[sel], self.u_pc[sel], self.fc_p[sel], self.dfc_p[sel], self.volume_m,
                      self.n_atoms_m, self.cutoff, self.n_species)

    # ----------------------------------------------------------- derived maps
    @property
    def n_atoms(self) -> int:
        return int(self.species_n.shape[0])

    @property
    def n_pairs(self) -> int:
        return int(self.i_p.shape[0])

    @property
    def n_configs(self) -> int:
        return int(self.n_atoms_m.shape[0])

    def _cached(self, key, make):
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    @property
    def channel_p(self) -> np.ndarray:
        """Neighbour species of each pair, shape (p,)."""
        return self._cached("channel", lambda: self.species_n[self.j_p])

    @property
    def gather_centre(self) -> sp.csr_matrix:
        """Sparse (n·S, p) map summing pair values into (centre atom, neighbour species)."""
        S = self.n_species

        def make():
            rows = self.i_p * S + self.channel_p
            return sp.csr_matrix((np.ones(self.n_pairs), (rows, np.arange(self.n_pairs))),
                                 shape=(self.n_atoms * S, self.n_pairs))
        return self._cached("gather_centre", make)

    @property
    def sum_centre(self) -> sp.csr_matrix:
        """Sparse (n, p) map summing pair values onto their centre atom."""
        return self._cached("sum_centre", lambda: sp.csr_matrix(
            (np.ones(self.n_pairs), (self.i_p, np.arange(self.n_pairs))), shape=(self.n_atoms, self.n_pairs)))

    @property
    def sum_neighbour(self) -> sp.csr_matrix:
        """Sparse (n, p) map summing pair values onto their neighbour atom."""
        return self._cached("sum_neighbour", lambda: sp.csr_matrix(
            (np.ones(self.n_pairs), (self.j_p, np.arange(self.n_pairs))), shape=(self.n_atoms, self.n_pairs)))

    @property
    def incidence(self) -> sp.csr_matrix:
        """Sparse (n, p) map from pair gradients ∂E/∂D_p to forces:
        F = incidence @ G (+1 at the centre atom, −1 at the neighbour atom)."""
        return self._cached("incidence", lambda: (self.sum_centre - self.sum_neighbour).tocsr())

    @property
    def sum_config(self) -> sp.csr_matrix:
        """Sparse (m, n) map summing per-atom values per configuration."""
        return self._cached("sum_config", lambda: sp.csr_matrix(
            (np.ones(self.n_atoms), (self.config_n, np.arange(self.n_atoms))),
            shape=(self.n_configs, self.n_atoms)))

    @property
    def config_p(self) -> np.ndarray:
        return self._cached("config_p", lambda: self.config_n[self.i_p])

    def forces(self, G_pc: np.ndarray) -> np.ndarray:
        """Forces from pair gradients G_p = ∂E/∂D_p.

        Parameters
        ----------
        G_pc : ndarray, shape (p, 3) or (p, 3, k) [eV/Å]

        Returns
        -------
        ndarray, shape (n, 3) or (n, 3, k) [eV/Å] — F = −∂E/∂r
        """
        if G_pc.ndim == 2:
            return self.incidence @ G_pc
        p, c, k = G_pc.shape
        return (self.incidence @ G_pc.reshape(p, c * k)).reshape(self.n_atoms, c, k)

    def virials(self, G_pc: np.ndarray) -> np.ndarray:
        """Per-configuration virial W = Σ_p G_p ⊗ D_p = V σ (ASE sign: tensile positive).

        Parameters
        ----------
        G_pc : ndarray, shape (p, 3) [eV/Å]

        Returns
        -------
        ndarray, shape (m, 3, 3) [eV]
        """
        W = np.einsum("pa,pb->pab", G_pc, self.D_pc)
        out = np.zeros((self.n_configs, 3, 3))
        np.add.at(out, self.config_p, W)
        return out
