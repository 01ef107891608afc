"""Temperature of the hottest configurations of the data, from generalised equipartition [1].

For a coordinate x of the canonical ensemble, ⟨(∂U/∂x)²⟩ = k_B T ⟨∂²U/∂x²⟩ (the
"configurational temperature"); :func:`temperature_estimates` evaluates it per
configuration with the forces of the data and curvatures of a model, and
:func:`hottest_temperature` takes a high quantile. Temperature in K.

References
----------
[1] R. C. Tolman, "The Principles of Statistical Mechanics" (1938); O. G. Jepps,
    G. Ayton, D. J. Evans, Phys. Rev. E 62, 4757 (2000), doi:10.1103/PhysRevE.62.4757.
"""

from __future__ import annotations

import logging

import numpy as np
from ase.units import kB as _KB

from .records import DeriveError, records

__all__ = ["temperature_estimates", "hottest_temperature"]

log = logging.getLogger(__name__)


def _force_fn(model):
    """A function list[Atoms] → list of (n, 3) force arrays for a compot Model or an ASE calculator."""
    if hasattr(model, "evaluate") and hasattr(model, "system"):
        def forces(atoms_list):
            p = model.evaluate(model.system(atoms_list), forces=True, virial=False)
            counts = np.cumsum([0] + [len(a) for a in atoms_list])
            return [p.forces_nc[counts[k]:counts[k + 1]] for k in range(len(atoms_list))]
        return forces

    def forces_calc(atoms_list):
        out = []
        for a in atoms_list:
            b = a.copy()
            b.calc = model
            out.append(b.get_forces())
        return out
    return forces_calc


def temperature_estimates(configs, model, n_probes: int = 2, h: float = 0.01, seed: int = 0,
                          min_participation: float = 0.3, batch: int = 16,
                          max_configs: int | None = 1000) -> list[dict]:
    """Per-configuration temperature from the equipartition identity.

    For a canonical ensemble, integrating ∂/∂x (e^(−U/kT)) by parts gives,
    for every Cartesian coordinate x ([2]),

        ⟨F_x²⟩ = k_B T ⟨∂²U/∂x²⟩,

    with no harmonic approximation. Per configuration the estimate is
    T = Σ_{i,α} F_iα² / (k_B tr H), with the DFT forces F and the trace of
    the Hessian H of the fitted ``model`` over all 3N coordinates. The trace
    comes from Hutchinson's estimator, tr H = E[sᵀ H s] for random ±1
    vectors s, with sᵀ H s = −sᵀ [F(x + h s) − F(x − h s)]/(2h) by central
    differences of the model's forces (step ``h`` [Å], ``n_probes`` vectors,
    2 ``n_probes`` force evaluations per configuration). On nb-mvl (54
    atoms) one configuration gives T to ±15 % (the scatter of Σ F² itself;
    two probes add no visible noise to it).

    Configurations are skipped when their forces are all zero (relaxed or
    symmetric cells) or concentrated on few atoms (participation ratio
    (Σ|F_i|²)² / (N Σ|F_i|⁴) < ``min_participation``: an unrelaxed defect or
    surface, not a thermal state). An explicit ``temperature`` (or ``T``)
    in ``atoms.info`` is used as it is (``method`` "info").

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms
    model : compot Model (``evaluate``/``system``) or an ASE calculator
    n_probes, h, seed : Hutchinson probes, finite-difference step [Å], random seed
    min_participation : float
    batch : int — configurations evaluated together (Model only)
    max_configs : int or None
        At most this many configurations (a random subset, ``seed``) get a
        curvature; quantiles of the estimates stay unbiased, at a fraction of
        the cost (None: all). The configurations are taken in the order of
        their ``source`` whatever the order given, so the same set of
        configurations gives the same estimates (a fit's training and
        validation sets and ``compot validate`` on the same files). On the
        NbMoTaW data a subset of 120 of an element's 334 configurations moved
        its hottest temperature by up to ±7 % between seeds.

    Returns
    -------
    list of dict
        One per configuration used, in the order of ``source``: ``source``, ``temperature`` [K],
        ``method`` ("equipartition" | "info"), ``mean_force2`` [eV²/Å²],
        ``mean_curvature`` (tr H / 3N) [eV/Å²].
    """
    rng = np.random.default_rng(seed)
    force = _force_fn(model)
    out = []
    jobs = []
    for r in records(configs):
        if r.temperature is not None:
            out.append({"source": r.source, "temperature": float(r.temperature), "method": "info"})
            continue
        if r.forces is None or r.energy is None:
            continue
        f2 = np.sum(r.forces ** 2, axis=1)
        if f2.sum() <= 1e-12:
            continue
        if f2.sum() ** 2 / (r.n_atoms * np.sum(f2 ** 2)) < min_participation:
            continue
        jobs.append(r)
    jobs.sort(key=lambda r: r.source)
    if max_configs is not None and len(jobs) > max_configs:
        keep = np.sort(rng.choice(len(jobs), size=max_configs, replace=False))
        jobs = [jobs[k] for k in keep]
    jobs = [(r, rng.choice([-1.0, 1.0], size=(n_probes, r.n_atoms, 3))) for r in jobs]
    for start in range(0, len(jobs), max(1, batch)):
        chunk = jobs[start:start + batch]
        displaced = []
        for r, probes in chunk:
            base = r.atoms()
            for s in probes:
                for sign in (1.0, -1.0):
                    at = base.copy()
                    at.positions += sign * h * s
                    displaced.append(at)
        fs = force(displaced)
        k = 0
        for r, probes in chunk:
            quad = []
            for s in probes:
                quad.append(-float(np.sum(s * (fs[k] - fs[k + 1]))) / (2 * h))
                k += 2
            c = float(np.mean(quad)) / (3 * r.n_atoms)
            mf2 = float(np.sum(r.forces ** 2) / (3 * r.n_atoms))
            if c <= 0:
                log.debug("temperature_estimates: %s: non-positive mean curvature %.3g eV/Å²; skipped", r.source, c)
                continue
            out.append({"source": r.source, "temperature": mf2 / (_KB * c), "method": "equipartition",
                        "mean_force2": mf2, "mean_curvature": c})
    return out


def hottest_temperature(configs, model, quantile: float = 0.9, **kwargs) -> float:
    """Temperature of the hottest configurations of the data [K].

    The ``quantile`` (default 0.9) of the per-configuration estimates of
    :func:`temperature_estimates` (equipartition: ⟨F_x²⟩ = k_B T ⟨∂²U/∂x²⟩,
    DFT forces, Hessian diagonal of the fitted ``model``). A high quantile
    rather than the maximum: a single estimate scatters by ~±15 % for 54
    atoms, and the maximum over hundreds of configurations would be an
    outlier of that scatter. On nb-mvl (AIMD at 300, 1000 and 3000 K, a
    third of its thermal configurations at 3000 K) it gives 2980 K (all
    334 configurations, a model of examples/nb/config.yaml).

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms
    model : compot Model or ASE calculator
        Any model fitted to the data (its curvature, not its energy, is used).
    quantile : float in (0, 1]
    **kwargs : passed to :func:`temperature_estimates`

    Raises
    ------
    DeriveError
        No configuration with thermal forces (nor a temperature in its info).
    """
    est = temperature_estimates(configs, model, **kwargs)
    if not est:
        raise DeriveError("hottest_temperature: no configuration with thermal forces (or an info "
                          "'temperature') in the data; give the temperature explicitly")
    t = np.array([e["temperature"] for e in est])
    value = float(np.quantile(t, quantile))
    if value < 100.0:
        log.warning("hottest_temperature: %.0f K; the data has no thermal (MD) configurations to speak of", value)
    log.info("hottest_temperature: %d configurations, median %.0f K, %.0f %% quantile %.0f K, max %.0f K",
             len(t), np.median(t), 100 * quantile, value, t.max())
    return value
