"""The most negative mixing energy the data show for each pair of elements.

A hot run of an alloy has no perfect-lattice energy to be bounded by: ordering lowers
a random alloy's energy, by up to the formation energy of the cell's ground state.
The data bound that ground state from above only (a lower one may exist), so the
bound used here is a regular-solution estimate built from the data's most negative
binary formation energies:

    e_form(x) ≥ Σ_{i<j} x_i x_j Ω_ij,   Ω_ij = min over the i–j configurations of
                                              e_form / (x_i x_j)  (and ≤ 0),

with e_form = E/N − Σ_s x_s e_s the formation energy per atom of a periodic
configuration relative to each element's lowest energy per atom in the data (its
relaxed crystal, e_s). A pair the data never mix gets Ω = 0 (ideal mixing).

On the NbMoTaW data (nb-mvl, nbmo-mvl, nbmotaw-mvl) the most negative formation
energies are −0.194 (MoTa), −0.116 (NbMo), −0.104 (TaW), −0.061 (NbW), −0.010
(MoW) and −0.004 eV/atom (NbTa); the equiatomic quaternary's estimate is
Σ Ω_ij / 16 ≈ −0.13 eV/atom.

Reference: regular-solution (Bragg–Williams) mixing, e.g. D. A. Porter,
K. E. Easterling, "Phase Transformations in Metals and Alloys", ch. 1.3.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from .records import DeriveError, records, single_species

__all__ = ["element_references", "mixing_parameters", "mixing_floor"]


def element_references(recs) -> dict:
    """{symbol: lowest energy per atom [eV/atom]} of each element's periodic
    configurations with an energy (its relaxed crystal in the data)."""
    species = {s for r in recs for s in r.symbols}
    return {s: min(r.energy / r.n_atoms for r in alone) for s in species if (alone := single_species(recs, s))}


def mixing_parameters(configs) -> dict:
    """Regular-solution interaction parameters from the data's binaries.

    Parameters
    ----------
    configs : list of compot.data.Configuration or ase.Atoms carrying energies

    Returns
    -------
    dict {(a, b): Ω_ab [eV/atom]}, a < b alphabetically, Ω ≤ 0, for every pair of
    elements that both have a periodic single-element configuration and appear
    together in a periodic configuration of exactly those two species (module
    docstring).
    """
    recs = records(configs)
    ref = element_references(recs)
    omega: dict = {}
    for r in recs:
        count = Counter(r.symbols)
        if len(count) != 2 or not r.periodic or r.energy is None or any(s not in ref for s in count):
            continue
        a, b = sorted(count)
        xa, xb = count[a] / r.n_atoms, count[b] / r.n_atoms
        e_form = r.energy / r.n_atoms - xa * ref[a] - xb * ref[b]
        omega[(a, b)] = min(omega.get((a, b), 0.0), e_form / (xa * xb))
    return omega


def mixing_floor(composition: dict, omega: dict) -> float:
    """Σ_{i<j} x_i x_j Ω_ij [eV/atom] for ``composition`` {symbol: count or fraction}
    and ``omega`` (:func:`mixing_parameters`; a missing pair counts 0).

    Raises
    ------
    DeriveError
        An empty composition.
    """
    total = float(sum(composition.values()))
    if total <= 0:
        raise DeriveError(f"mixing floor: expected a composition with atoms, found {composition!r}")
    x = {s: n / total for s, n in composition.items()}
    return float(sum(x[a] * x[b] * omega.get(tuple(sorted((a, b))), 0.0) for a, b in combinations(sorted(x), 2)))
