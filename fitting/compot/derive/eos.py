"""Equation of state of an element from the data: a Vinet fit of a0, E0, B and B′ [1].

:func:`equation_of_state` takes the near-equilibrium crystals of the ground-state
lattice (cells whose atoms are nearly all in that local structure), corrects each
energy to its static perfect-lattice value where forces and stresses allow, and
fits the Vinet form. Energy eV, volume Å³, bulk modulus GPa.

References
----------
[1] P. Vinet, J. Ferrante, J. H. Rose, J. R. Smith, J. Geophys. Res. 92, 9319
    (1987), doi:10.1029/JB092iB09p09319; P. Vinet et al., J. Phys. C 19, L467
    (1986), doi:10.1088/0022-3719/19/20/001.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
from ase.units import GPa as _EV_PER_A3_PER_GPA

from .lattice import ATOMS_PER_CELL, Lattice, classify, detect_lattice
from .records import DeriveError, Record, neighbour_list, records, single_species

__all__ = ["EquationOfState", "equation_of_state", "vinet_energy", "vinet_pressure", "EV_PER_A3_TO_GPA"]

log = logging.getLogger(__name__)

#: 1 eV/Å³ in GPa.
EV_PER_A3_TO_GPA = 1.0 / _EV_PER_A3_PER_GPA

#: Smallest fraction of atoms of a cell in the lattice's local structure for the
#: cell to be used as it is in an equation of state: nearly all.
_MIN_FRACTION_EOS = 0.9


def vinet_energy(v, v0: float, e0: float, bulk_modulus: float, b_prime: float):
    """Vinet energy per atom [eV/atom] at volume per atom ``v`` [Å³] (the integral of [1]'s P(V)).

    E(V) = E0 + 2 B0 V0/(B'−1)² {2 − [5 + 3B'(x−1) − 3x] exp(−3(B'−1)(x−1)/2)},
    x = (V/V0)^(1/3); B0 in GPa.
    """
    b = bulk_modulus / EV_PER_A3_TO_GPA
    x = np.cbrt(np.asarray(v, dtype=float) / v0)
    k = b_prime - 1.0
    return e0 + 2 * b * v0 / k ** 2 * (2 - (5 + 3 * b_prime * (x - 1) - 3 * x) * np.exp(-1.5 * k * (x - 1)))


def vinet_pressure(v, v0: float, bulk_modulus: float, b_prime: float):
    """Vinet pressure [GPa] at volume per atom ``v`` [Å³] ([1]):
    P = 3 B0 (1 − x)/x² exp(3(B'−1)(1 − x)/2)."""
    x = np.cbrt(np.asarray(v, dtype=float) / v0)
    return 3 * bulk_modulus * (1 - x) / x ** 2 * np.exp(1.5 * (b_prime - 1) * (1 - x))


@dataclass
class EquationOfState:
    """Equation of state of a ground-state lattice, derived from the data.

    Attributes
    ----------
    lattice : Lattice
        The ground-state lattice at the fitted a0.
    a0 : float — equilibrium lattice constant [Å]
    e0 : float — energy per atom at a0 [eV/atom] (the DFT total-energy reference)
    bulk_modulus : float — B0 [GPa]
    b_prime : float — B0' = dB/dP [-]
    v0 : float — volume per atom at a0 [Å³]
    sources : dict {quantity: str}
        How each of a0, e0, bulk_modulus and b_prime was obtained.
    uncertainty : dict {quantity: float}
        One standard deviation from the fit's covariance (same units).
    n_configs : int — configurations in the fit
    rms_residual : float — of the energies in the fit [eV/atom]
    points : dict
        Data of the fit for a plot: ``volume`` [Å³/atom], ``energy`` (static
        energy per atom, thermal and shear corrections applied) [eV/atom],
        ``kind`` ("static" | "thermal"), and, where stresses were used,
        ``pressure_volume``, ``pressure`` [GPa].
    """

    lattice: Lattice
    a0: float
    e0: float
    bulk_modulus: float
    b_prime: float
    v0: float
    sources: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)
    n_configs: int = 0
    rms_residual: float = math.nan
    points: dict = field(default_factory=dict)

    def energy(self, v):
        """Energy per atom [eV/atom] at volume per atom ``v`` [Å³]."""
        return vinet_energy(v, self.v0, self.e0, self.bulk_modulus, self.b_prime)

    def energy_at(self, a):
        """Energy per atom [eV/atom] of the lattice at lattice constant ``a`` [Å]."""
        a = np.asarray(a, dtype=float)
        return self.energy(self.lattice.volume_per_atom(1.0) * a ** 3)

    def pressure(self, v):
        """Pressure [GPa] at volume per atom ``v`` [Å³]."""
        return vinet_pressure(v, self.v0, self.bulk_modulus, self.b_prime)

    def as_anchor(self, weight: float = 1.0) -> dict:
        """The ``fit.eos_anchor`` mapping of the trainer (a0, e0, bulk_modulus, b_prime, lattice, weight)."""
        return {"a0": self.a0, "e0": self.e0, "bulk_modulus": self.bulk_modulus, "b_prime": self.b_prime,
                "lattice": self.lattice.kind, "weight": weight}


#: First-shell vectors of the Bravais lattices, in units of the cubic edge a.
def _first_shell(kind: str) -> np.ndarray:
    if kind == "bcc":
        return 0.5 * np.array(list(itertools.product((-1.0, 1.0), repeat=3)))
    if kind == "fcc":
        v = []
        for zero in range(3):
            for s1, s2 in itertools.product((-1.0, 1.0), repeat=2):
                x = [s1, s2]
                x.insert(zero, 0.0)
                v.append(x)
        return 0.5 * np.array(v)
    raise DeriveError(f"no Bravais first shell for {kind}")


_TRIPLES: dict = {}


def _ideal_triples(kind: str):
    """Ordered triples of first-shell vectors that span a primitive cell: (T, 3, 3), and their Gram matrices."""
    if kind not in _TRIPLES:
        q = _first_shell(kind)
        prim = 1.0 / ATOMS_PER_CELL[kind]
        idx = np.array(list(itertools.permutations(range(len(q)), 3)))
        Q = q[idx]
        det = np.linalg.det(Q)
        Q = Q[np.abs(np.abs(det) - prim) < 1e-9]
        _TRIPLES[kind] = (Q, Q @ Q.transpose(0, 2, 1))
    return _TRIPLES[kind]


@dataclass
class _CrystalState:
    volume: float          # per atom [Å³]
    energy: float          # per atom [eV/atom], as in the data
    correction: float      # harmonic thermal correction ½ Σ F·u / N [eV/atom] (≤ 0)
    e_dev: np.ndarray      # (3, 3) deviatoric Green strain in the crystal frame
    max_force: float       # [eV/Å]
    pressure: float | None  # −tr σ / 3 [GPa]
    source: str


def _crystal_state(r: Record, kind: str) -> _CrystalState | None:
    """Map a periodic configuration onto a strained, thermally displaced crystal of a Bravais lattice.

    The first-shell neighbour vectors of all atoms are pooled and clustered
    (each atom contributes one to each cluster); the cluster means are the
    first-shell vectors of the strained lattice, free of thermal noise. Three
    of them that span the primitive cell (volume V/N) give the lattice basis
    P; the cell must be an integer combination of it with N sites. Then

    * displacements u_i from the lattice sites (mean removed) give the
      harmonic estimate of the thermal part of the energy, −½ Σ F_i·u_i
      (exact for a harmonic crystal, where F = −K u), so
      E_static = E + ½ Σ F_i·u_i;
    * the metric G = P Pᵀ against the ideal basis Q of the same shape gives
      the right Cauchy–Green tensor in the crystal frame, C = Q⁻¹ G Q⁻ᵀ,
      whatever the orientation of the cell; its isochoric part gives the
      deviatoric strain ê = ½ (C / det(C)^(1/3) − I).

    Returns None when the configuration is not such a crystal (slab,
    vacancy, another lattice, melt).
    """
    n = r.n_atoms
    shell = _first_shell(kind)
    n1 = len(shell)
    vpa = r.volume_per_atom
    a_est = (vpa * ATOMS_PER_CELL[kind]) ** (1.0 / 3.0)
    d1 = a_est * np.linalg.norm(shell[0])
    atoms = r.atoms()
    i, D, d = neighbour_list("iDd", atoms, 1.45 * d1)
    counts = np.bincount(i, minlength=n)
    if counts.min() < n1:
        return None
    o = np.lexsort((d, i))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vecs = D[o][start[:, None] + np.arange(n1)[None, :]]          # (n, n1, 3)
    centres = vecs[0].copy()
    for _ in range(3):
        dist = np.linalg.norm(vecs[:, :, None, :] - centres[None, None, :, :], axis=3)
        assign = np.argmin(dist, axis=2)                               # (n, n1)
        if np.any(np.sort(assign, axis=1) != np.arange(n1)[None, :]):
            return None
        new = np.zeros_like(centres)
        np.add.at(new, assign.ravel(), vecs.reshape(-1, 3))
        centres = new / n
    spread = np.linalg.norm(vecs - centres[assign], axis=2).max()
    if spread > 0.35 * d1:
        return None
    triples = np.array(list(itertools.combinations(range(n1), 3)))
    dets = np.abs(np.linalg.det(centres[triples]))
    k = int(np.argmin(np.abs(dets / vpa - 1)))
    if abs(dets[k] / vpa - 1) > 0.05:
        return None
    P = centres[triples[k]]
    Pinv = np.linalg.inv(P)
    M = r.cell @ Pinv
    Mr = np.round(M)
    if np.abs(M - Mr).max() > 0.1 or round(abs(np.linalg.det(Mr))) != n:
        return None
    f = r.positions @ Pinv
    rel = f - f[0]
    site = np.round(rel)
    uf = rel - site
    uf -= uf.mean(axis=0)
    u = uf @ P
    if np.linalg.norm(u, axis=1).max() > 0.35 * d1:
        return None
    # sites must be distinct modulo the supercell
    frac = np.mod(site @ np.linalg.inv(Mr), 1.0)
    frac = np.round(frac * 1e6).astype(np.int64) % 1000000
    if len(np.unique(frac, axis=0)) != n:
        return None
    correction = 0.0
    max_force = 0.0
    if r.forces is not None:
        correction = 0.5 * float(np.sum(r.forces * u)) / n
        max_force = float(np.abs(r.forces).max())
    Q, G0 = _ideal_triples(kind)
    G = P @ P.T
    scale = np.trace(G) / np.trace(G0[0])
    t = int(np.argmin(np.linalg.norm(G[None] / scale - G0, axis=(1, 2))))
    Qi = np.linalg.inv(Q[t])
    C = Qi @ G @ Qi.T
    Cbar = C / np.linalg.det(C) ** (1.0 / 3.0)
    e_dev = 0.5 * (Cbar - np.eye(3))
    pressure = None
    if r.stress is not None:
        pressure = -float(np.mean(r.stress[:3])) * EV_PER_A3_TO_GPA
    return _CrystalState(vpa, r.energy / n, correction, e_dev, max_force, pressure, r.source)


def _static_state(r: Record) -> _CrystalState:
    """A configuration taken as it is (non-Bravais lattices): no thermal or shear correction."""
    pressure = None if r.stress is None else -float(np.mean(r.stress[:3])) * EV_PER_A3_TO_GPA
    mf = 0.0 if r.forces is None else float(np.abs(r.forces).max())
    return _CrystalState(r.volume_per_atom, r.energy / r.n_atoms, 0.0, np.zeros((3, 3)), mf, pressure, r.source)


def equation_of_state(configs, species: str, lattice: Lattice | str | None = None, *,
                      max_shear: float = 0.03, max_correction: float = 0.2, volume_range: float = 0.2,
                      static_force: float = 0.05, use_stress: bool = True,
                      bulk_modulus: float | None = None) -> EquationOfState:
    """Vinet equation of state of the ground-state lattice, fitted to the data.

    Configurations used: periodic cells of ``species`` alone that are
    crystals of the ground-state lattice (:func:`_crystal_state`: strained
    and/or thermally displaced, any orientation, any supercell), with
    deviatoric strain |ê| ≤ ``max_shear``, volume per atom within
    ``volume_range`` (relative) of the lowest-energy one, and a harmonic
    thermal correction of at most ``max_correction`` eV/atom (≈ 1500 K;
    beyond, anharmonicity makes it unreliable). For hcp and diamond (not
    Bravais lattices) only cells with forces below ``static_force`` eV/Å are
    used, as they are (no thermal or shear correction).

    Model fitted (weighted nonlinear least squares, ``scipy.optimize.least_squares``
    with a soft-L1 loss), per configuration k:

        E_k = E_Vinet(V_k; E0, V0, B0, B') + V_k [C' Σ_i ê_ii² + 2 C44 Σ_{i<j} ê_ij²]

    E_k is the static energy per atom (DFT energy + ½ Σ F·u / N), E_Vinet is
    :func:`vinet_energy` [1], and the second term is the harmonic shear energy of a cubic
    crystal (C' = (C11 − C12)/2 and C44, fitted along; zero for hcp and
    diamond), so that the strained cells of an elastic set count at their
    volume. Thermal configurations are averaged per volume (0.2 %) and
    strain, with σ = 1 meV/atom + [their standard error² + (0.1 × the mean
    thermal correction)²]^½: the anharmonic error of the correction is
    systematic and does not shrink with their number; static cells (thermal
    correction below 5 meV/atom) count one by one with σ = 1 meV/atom, and
    every σ grows by 0.2 × the shear energy. With ``use_stress``, the mean
    stress of static cells is fitted too, P_k = P_Vinet(V_k) with
    σ = 0.5 GPa: for a cubic crystal −tr σ/3 = B tr ε to first order
    for any strain, so uniaxially strained cells determine B, which their
    energies alone cannot separate from C' (E = ½ (B + 4C'/3) ε²).

    B' is bounded to 3–7 (elemental metals lie in about 3.5–6) and kept if
    the fit determines it to ±0.5; otherwise it is held at 4.5, the middle of
    that range, and ``sources["b_prime"]`` says so. B is accepted when the
    fit determines it to 15 %. Otherwise a warning is logged and B comes,
    in this order, from ``bulk_modulus`` if given (``sources`` says
    "given"), or else a :class:`DeriveError` names what the data lacks
    (never a silent constant).

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms (with energies; forces and
        stresses are used when present)
    species : str
    lattice : Lattice or str, optional
        Ground-state lattice (default: :func:`detect_lattice`); a string
        names the kind, a0 is then detected.
    max_shear, max_correction, volume_range, static_force : float
        Selection of configurations (above).
    use_stress : bool
        Fit the mean stress of static cells too.
    bulk_modulus : float, optional
        B0 [GPa] to use if the data do not determine it.

    Returns
    -------
    EquationOfState

    Raises
    ------
    DeriveError
        No usable configuration, or B not determined by the data and not given.
    """
    from scipy.optimize import least_squares

    recs = single_species(records(configs), species)
    if lattice is None or isinstance(lattice, str):
        det = detect_lattice(recs, species)
        if isinstance(lattice, str) and lattice != det.kind:
            log.warning("equation_of_state %s: lattice %s given, the data's lowest-energy crystal is %s",
                        species, lattice, det.kind)
            det = Lattice(lattice, det.a0, species)
        lattice = det
    kind = lattice.kind
    cubic = kind in ("bcc", "fcc")
    states = []
    for r in recs:
        if cubic:
            s = _crystal_state(r, kind)
        else:
            ck, cq, frac = classify(r.atoms())
            s = _static_state(r) if ck == kind and frac >= _MIN_FRACTION_EOS else None
            if s is not None and s.max_force > static_force:
                s = None
        if s is not None:
            states.append(s)
    if not states:
        raise DeriveError(f"equation_of_state {species}: no configuration of the data is a {kind} crystal")
    e_static = np.array([s.energy + s.correction for s in states])
    v_ref = states[int(np.argmin(e_static))].volume
    keep = [s for s in states
            if abs(s.volume / v_ref - 1) <= volume_range and -s.correction <= max_correction
            and np.abs(s.e_dev).max() <= max_shear]
    if len(keep) < 2:
        raise DeriveError(f"equation_of_state {species}: only {len(keep)} {kind} configuration(s) near "
                          f"equilibrium; expected several volumes")
    static_states = [s for s in keep if abs(s.correction) <= 0.005]
    sp = [(s.volume, s.pressure) for s in static_states if use_stress and s.pressure is not None]
    Vp = np.array([v for v, _ in sp])
    Pp = np.array([p for _, p in sp])
    # thermal states: one point per volume (0.2 %) and shear; their error is mostly systematic
    # (anharmonicity of the harmonic correction), so it does not shrink with their number
    groups: list[list[_CrystalState]] = []
    for s in sorted((s for s in keep if abs(s.correction) > 0.005), key=lambda s: s.volume):
        g = groups[-1] if groups else None
        if g and s.volume <= g[0].volume * 1.002 and np.abs(s.e_dev - g[0].e_dev).max() < 1e-3:
            g.append(s)
        else:
            groups.append([s])
    V = np.array([s.volume for s in static_states] + [np.mean([s.volume for s in g]) for g in groups])
    E = np.array([s.energy + s.correction for s in static_states]
                 + [np.mean([s.energy + s.correction for s in g]) for g in groups])
    ed = np.array([s.e_dev for s in static_states] + [np.mean([s.e_dev for s in g], axis=0) for g in groups])
    sig_e = np.array([1e-3] * len(static_states)
                     + [1e-3 + math.hypot(np.std([s.energy + s.correction for s in g]) / math.sqrt(len(g)),
                                          0.1 * abs(np.mean([s.correction for s in g]))) for g in groups])
    static = np.array([True] * len(static_states) + [False] * len(groups))
    counts = [1] * len(static_states) + [len(g) for g in groups]
    normal = np.sum(np.diagonal(ed, axis1=1, axis2=2) ** 2, axis=1)
    shear = ed[:, 0, 1] ** 2 + ed[:, 0, 2] ** 2 + ed[:, 1, 2] ** 2
    sig_p = 0.5
    i0 = int(np.argmin(E))

    def unpack(x, bp_fixed):
        e0, v0, b = x[0], x[1], x[2]
        k = 3
        bp = bp_fixed
        if bp_fixed is None:
            bp, k = x[3], 4
        cp = x[k] if cubic else 0.0
        c44 = x[k + 1] if cubic else 0.0
        return e0, v0, b, bp, cp, c44

    def shear_energy(cp, c44):
        return V * (cp * normal + 2 * c44 * shear) / EV_PER_A3_TO_GPA

    def residuals(x, bp_fixed):
        e0, v0, b, bp, cp, c44 = unpack(x, bp_fixed)
        w_dev = shear_energy(cp, c44)
        out = [(vinet_energy(V, v0, e0, b, bp) + w_dev - E) / (sig_e + 0.2 * np.abs(w_dev))]
        if len(Vp):
            out.append((vinet_pressure(Vp, v0, b, bp) - Pp) / sig_p)
        return np.concatenate(out)

    def solve(bp_fixed):
        free_bp = bp_fixed is None
        x0 = [E[i0], V[i0], 150.0] + ([4.5] if free_bp else []) + ([50.0, 50.0] if cubic else [])
        lo = [-np.inf, 0.5 * V.min(), 1.0] + ([3.0] if free_bp else []) + ([0.0, 0.0] if cubic else [])
        hi = [np.inf, 2.0 * V.max(), 3000.0] + ([7.0] if free_bp else []) + ([3000.0, 3000.0] if cubic else [])
        res = least_squares(residuals, x0, bounds=(lo, hi), args=(bp_fixed,), x_scale="jac", loss="soft_l1",
                            f_scale=2.0, max_nfev=5000)
        dof = max(1, len(res.fun) - len(res.x))
        cov = np.linalg.pinv(res.jac.T @ res.jac) * max(1.0, 2 * res.cost / dof)
        return res, np.sqrt(np.clip(np.diag(cov), 0, None))

    res, err = solve(None)
    n_thermal = len(keep) - len(static_states)
    sources = {"a0": f"Vinet fit to {len(keep)} {kind} configurations ({len(static_states)} static, "
                     f"{n_thermal} thermal with harmonic correction, averaged at {len(groups)} volumes)"
                     + (f" and {len(Vp)} static pressures" if len(Vp) else ""),
               "e0": "Vinet fit (static energy per atom at V0)"}
    bp_fit, bp_err = res.x[3], err[3]
    at_bound = min(bp_fit - 3.0, 7.0 - bp_fit) < 1e-3
    if bp_err <= 0.5 and not at_bound:
        bp_fixed = None
        sources["b_prime"] = "Vinet fit"
    else:
        bp_fixed = 4.5
        why = "at the bound of 3–7" if at_bound else f"± {bp_err:.2f}"
        log.warning("equation_of_state %s: B' = %.2f (%s) is not determined by the data; held at 4.5",
                    species, bp_fit, why)
        res, err = solve(bp_fixed)
        sources["b_prime"] = (f"not determined by the data (fit: {bp_fit:.2f}, {why}); 4.5, the middle of the "
                              "range of elemental metals")
    e0, v0, b, bp, cp, c44 = unpack(res.x, bp_fixed)
    b_err = float(err[2])
    sources["bulk_modulus"] = sources["a0"].replace("Vinet fit to", "Vinet fit (± %.1f GPa) to" % b_err)
    if not b_err <= 0.15 * b:
        msg = (f"equation_of_state {species}: the data do not determine the bulk modulus (fit: {b:.0f} ± "
               f"{b_err:.0f} GPa from {len(keep)} configurations at {len(np.unique(np.round(V, 2)))} volumes, "
               f"{len(Vp)} static pressures); expected energies at 3 or more hydrostatic volumes, or stresses "
               "of strained cells")
        if bulk_modulus is None:
            raise DeriveError(msg + "; give bulk_modulus explicitly")
        log.warning("%s; using the given %.1f GPa", msg, bulk_modulus)
        b = float(bulk_modulus)
        b_err = math.nan
        sources["bulk_modulus"] = "given (the data do not determine it)"

        def refit(x):
            return residuals(np.concatenate([x[:2], [b], x[2:]]), bp_fixed)

        x0 = np.delete(res.x, 2)
        r2 = least_squares(refit, x0, x_scale="jac", loss="soft_l1", f_scale=2.0, max_nfev=5000)
        e0, v0, _, bp, cp, c44 = unpack(np.concatenate([r2.x[:2], [b], r2.x[2:]]), bp_fixed)
    lat = lattice.with_a0(lattice.a_of_volume(v0))
    unc = {"v0": float(err[1]), "e0": float(err[0]), "bulk_modulus": b_err,
           "a0": float(lat.a0 * err[1] / (3 * v0))}
    if bp_fixed is None:
        unc["b_prime"] = float(err[3])
    w_dev = shear_energy(cp, c44)
    rms = float(np.sqrt(np.mean((vinet_energy(V, v0, e0, b, bp) + w_dev - E) ** 2)))
    points = {"volume": V.tolist(), "energy": (E - w_dev).tolist(), "sigma": sig_e.tolist(), "count": counts,
              "kind": ["static" if t else "thermal" for t in static]}
    if len(Vp):
        points.update(pressure_volume=Vp.tolist(), pressure=Pp.tolist())
    eos = EquationOfState(lat, lat.a0, float(e0), float(b), float(bp), float(v0), sources, unc, len(keep), rms, points)
    if cubic:
        eos.sources["shear"] = f"C' = {cp:.0f} GPa, C44 = {c44:.0f} GPa (harmonic shear energy, fitted along)"
    log.info("equation_of_state %s (%s): a0 %.4f Å, E0 %.4f eV/atom, B %.1f ± %.1f GPa, B' %.2f; %d configurations, "
             "rms %.2g eV/atom", species, kind, eos.a0, eos.e0, eos.bulk_modulus, b_err, eos.b_prime, len(keep), rms)
    return eos
