"""Shared test helpers: random models and structures (no test collection here)."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from compot.functions import inner_window_fdf
from compot.model import Model


def random_model(expression: str, species=("Nb",), cutoff: float = 4.5, seed: int = 0,
                 structures=(), window=None, version: int = 2) -> Model:
    """A model with random but sensible parameters (α 0.15–0.5 Å⁻², β 1.2–1.9,
    γ ±1, coefficients and shifts ±0.5 eV).

    With ``structures`` the scales φ_max, ρ_max (and q_max) are computed from them
    and then multiplied by 0.6–1.2, so that |u| > 1 (the continuation of x(γ, u)
    and the saturation of the A invariants) occurs too. ``window`` (r_a, r_b) [Å]
    sets the inner window of every species pair (format v2).
    """
    rng = np.random.default_rng(seed)
    m = Model(expression, species, cutoff, version=version)
    if window is not None:
        m.params["w.r_a"] = np.full(m.params["w.r_a"].shape, float(window[0]))
        m.params["w.r_b"] = np.full(m.params["w.r_b"].shape, float(window[1]))
    for b in m.layout.blocks:
        leaf = b.name.split(".")[-1]
        if leaf == "alpha":
            m.params[b.name] = np.array(rng.uniform(0.15, 0.5))
        elif leaf == "beta":
            m.params[b.name] = np.array(rng.uniform(1.2, 1.9))
        elif leaf == "gamma":
            m.params[b.name] = rng.uniform(-1, 1, b.shape)
        elif b.role == "linear":
            m.params[b.name] = rng.uniform(-0.5, 0.5, b.shape)
    if len(structures):
        m.compute_scales([m.system(list(structures))])
        for b in m.layout.blocks:
            if b.name.endswith("_max"):
                m.params[b.name] = m.params[b.name] * rng.uniform(0.6, 1.2, b.shape)
    return m


def switched_model(expression: str, species, structures, seed: int = 0, window=(2.3, 2.85),
                   cutoff: float = 4.5) -> Model:
    """A random format v2 model (:func:`random_model`) whose atom switch acts on
    ``structures``: the inner window ``window`` holds their shortest pairs, the
    grade is fitted (``Model.compute_grade``) to them and four rattled copies of
    each, then γ_lo/γ_hi of every species are moved to the 30 %/75 % quantiles
    of the structures' grades, so that some atoms are in the switch's
    transition and some switched off; E_ref random in [-8, -2] eV."""
    rng = np.random.default_rng(seed)
    m = random_model(expression, species, cutoff, seed=seed, structures=structures, window=window)
    m.params["w.e_ref"] = rng.uniform(-8.0, -2.0, len(species))
    data = []
    for at in structures:
        for k in range(5):
            b = at.copy()
            if k:
                b.positions += rng.uniform(-0.08, 0.08, b.positions.shape)
            data.append(m.system([b]))
    m.compute_grade(data)
    system = m.system(list(structures))
    gamma = m.context(system).grade()[0]
    for z in range(len(species)):
        g = gamma[system.species_n == z]
        if len(g) >= 3:
            lo, hi = np.quantile(g, [0.3, 0.75])
            if lo > 0 and hi > 1.2 * lo:
                m.params["g.gamma_lo"][z], m.params["g.gamma_hi"][z] = lo, hi
    return m


def switch_census(model: Model, atoms) -> tuple[int, int, int]:
    """Atoms of ``atoms`` with a pair inside the inner window (S_pair < 1), in the
    grade's transition (0 < S_grade < 1) and switched off by the grade."""
    system = model.system([atoms])
    _, S_g, _ = model.context(system).grade()
    S = len(model.species)
    a = np.minimum(system.species_n[system.i_p], system.channel_p)
    b = np.maximum(system.species_n[system.i_p], system.channel_p)
    pair = a * S - a * (a - 1) // 2 + (b - a)
    s_in, _ = inner_window_fdf(system.r_p, model.params["w.r_a"][pair], model.params["w.r_b"][pair])
    S_pair = np.ones(system.n_atoms)
    np.multiply.at(S_pair, system.i_p, s_in)
    return int(np.sum(S_pair < 1)), int(np.sum((S_g > 0) & (S_g < 1))), int(np.sum(S_g == 0))


def random_structure(kind: str = "triclinic", species=("Nb",), seed: int = 1):
    """Perturbed bcc structures: 'triclinic' (16 atoms, sheared cell), 'small'
    (1-atom primitive cell, smaller than the cutoff), 'cluster' (non-periodic)."""
    rng = np.random.default_rng(seed)
    if kind == "small":
        at = bulk("Nb", "bcc", a=3.3)
        at.set_cell(at.cell.array + rng.uniform(-0.1, 0.1, (3, 3)), scale_atoms=True)
        return at
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    at.rattle(0.12, seed=seed)
    if kind == "triclinic":
        at.set_cell(at.cell.array + rng.uniform(-0.25, 0.25, (3, 3)), scale_atoms=True)
    if kind == "cluster":
        at.pbc = False
        at.cell = [0, 0, 0]
    if len(species) > 1:
        idx = rng.choice(len(at), size=len(at) // 3, replace=False)
        syms = np.array(at.get_chemical_symbols(), dtype=object)
        syms[idx] = species[1]
        at.set_chemical_symbols(list(syms))
    return at


def energy(model: Model, atoms) -> float:
    return float(model.evaluate(model.system([atoms]), forces=False, virial=False).energy_m[0])
