"""Physics derived from the training data (MODEL_SPEC §10).

Everything a safe model needs to know about its material that is not a fitted
parameter — the ground-state lattice, the equation of state, the shortest
pair distances, the cutoff, the inner and ZBL windows and the temperature of
the hottest configurations — is derived here from the DFT data itself, so
that no number is typed in by hand for a new element. Every function is a
pure function of a list of configurations: :class:`compot.data.Configuration`
(as :func:`compot.data.read_dataset` returns them) or :class:`ase.Atoms`
carrying a total energy (a ``SinglePointCalculator``, as the extended-XYZ
reader attaches, or ``info["energy"]``) and, where needed, forces.

Units: energy eV, length Å, volume Å³, bulk modulus GPa, temperature K.

The package has five modules, whose public names are importable from
``compot.derive``: :mod:`~compot.derive.records` (what is read of a
configuration), :mod:`~compot.derive.lattice` (lattice, cutoff, windows),
:mod:`~compot.derive.eos` (equation of state), :mod:`~compot.derive.mixing` (alloy formation energies) and
:mod:`~compot.derive.temperature`.

Functions
---------
detect_lattice(configs, species)
    ground-state lattice (bcc, fcc, hcp, diamond) and its lattice constant;
equation_of_state(configs, species, lattice)
    a0, E0, B, B' of a Vinet equation of state fitted to the data;
shortest_pair_distances(configs, species)
    d_min per species pair;
default_cutoff(lattice)
    r_c between the 2nd and 3rd neighbour shells;
default_windows(d_min, d_nn)
    inner window (r_a, r_b) per species pair and the ZBL window (r_in, r_out);
hottest_temperature(configs, model)
    temperature of the hottest configurations from the equipartition identity;
mixing_parameters(configs), mixing_floor(composition, omega)
    the regular-solution floor of an alloy's formation energy from the data's
    most negative binary formation energies (:mod:`~compot.derive.mixing`).

References
----------
[1] P. Vinet, J. Ferrante, J. H. Rose, J. R. Smith, "Compressibility of
    solids", J. Geophys. Res. 92, 9319 (1987), doi:10.1029/JB092iB09p09319;
    P. Vinet et al., J. Phys. C 19, L467 (1986), doi:10.1088/0022-3719/19/20/001.
[2] R. C. Tolman, "The Principles of Statistical Mechanics" (1938):
    generalised equipartition ⟨x_k ∂H/∂x_l⟩ = δ_kl k_B T; for a coordinate
    x, an integration by parts over the canonical density gives
    ⟨(∂U/∂x)²⟩ = k_B T ⟨∂²U/∂x²⟩, the "configurational temperature" of
    O. G. Jepps, G. Ayton, D. J. Evans, Phys. Rev. E 62, 4757 (2000),
    doi:10.1103/PhysRevE.62.4757.
"""

from .eos import EV_PER_A3_TO_GPA, EquationOfState, equation_of_state, vinet_energy, vinet_pressure
from .lattice import LATTICES, Lattice, classify, default_cutoff, default_windows, detect_lattice, shortest_pair_distances
from .mixing import element_references, mixing_floor, mixing_parameters
from .records import DeriveError, records, single_species
from .temperature import hottest_temperature, temperature_estimates

__all__ = [
    "DeriveError", "Lattice", "EquationOfState", "LATTICES", "EV_PER_A3_TO_GPA", "classify",
    "detect_lattice", "equation_of_state", "shortest_pair_distances", "default_cutoff",
    "default_windows", "hottest_temperature", "temperature_estimates", "vinet_energy", "vinet_pressure",
    "records", "single_species", "element_references", "mixing_parameters", "mixing_floor",
]
