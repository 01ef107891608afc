"""ASE calculator for compot models.

    from compot.calculator import CompotCalculator
    atoms.calc = CompotCalculator("model.params")      # or a Model
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()

Stress follows ASE: σ = (1/V) ∂E/∂ε [eV/Å³], tensile positive.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .model import Model

__all__ = ["CompotCalculator"]


class CompotCalculator(Calculator):
    """ASE calculator evaluating a compot :class:`~compot.model.Model`.

    Parameters
    ----------
    model : Model or path of a parameter file (format v1)

    grade : bool
        Also compute the extrapolation grade on every calculation (otherwise only when
        ``grade`` or ``grade_normalised`` is asked for).

    Implemented properties: energy [eV], free_energy, energies (site energies
    [eV]), forces [eV/Å], stress [eV/Å³] (periodic cells only), and the format v2
    extrapolation grade (MODEL_SPEC §10, :meth:`compot.safety.SafetyLayer.grade`):
    ``grade`` γ_i = |U_Z (f_i − μ_Z)|², shape (n_atoms,) [-], and ``grade_normalised``
    γ_i / γ_lo(Z_i) [-] (≤ 1 for every atom of the fitted data; the fitted energy is
    switched off from γ_hi/γ_lo on). A format v1 model has γ = 0.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "grade",
                              "grade_normalised"]

    def __init__(self, model, grade: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(model, Model):
            from .io import read_model
            model = read_model(model)
        self.model = model
        self.grade = bool(grade)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        sysm = self.model.system([self.atoms])
        want_stress = "stress" in properties and self.atoms.pbc.all()
        p = self.model.evaluate(sysm, forces=True, virial=want_stress)
        e = float(p.energy_m[0])
        self.results.update(energy=e, free_energy=e, energies=p.energies_n.copy(), forces=p.forces_nc.copy())
        if want_stress:
            W = p.virial_mcc[0]
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (W + W.T) / self.atoms.get_volume())
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError
            raise PropertyNotImplementedError("stress needs a periodic cell in all three directions")
        if self.grade or "grade" in properties or "grade_normalised" in properties:
            self.results.update(self._grade(sysm))
        if not np.isfinite(e):
            from .errors import CompotError
            raise CompotError(f"model {self.model.expression} gave a non-finite energy ({e}) for {self.atoms}")

    def _grade(self, sysm) -> dict:
        """``grade`` and ``grade_normalised`` of the atoms of ``sysm``."""
        n = sysm.n_atoms
        if self.model.version < 2:
            return {"grade": np.zeros(n), "grade_normalised": np.zeros(n)}
        gamma = self.model.context(sysm).grade().gamma_n.copy()
        return {"grade": gamma, "grade_normalised": gamma / self.model.params["g.gamma_lo"][sysm.species_n]}
